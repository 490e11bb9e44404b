//! The real `weldguard-server` main, built inside the tests crate so end-to-end tests can start it
//! as a child process through `CARGO_BIN_EXE_wg-server-e2e`.

fn main() -> std::process::ExitCode {
    weldguard_server::main_from_env()
}
