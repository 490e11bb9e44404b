//! `weldguard-server`: the reference platform server (see the library's documentation).

fn main() -> std::process::ExitCode {
    weldguard_server::main_from_env()
}
