//! `cargo xtask …`: the project's tasks in one place.
//!
//! - `cargo xtask test`: every check the project has: format, clippy, Rust tests (with a PostgreSQL
//!   cluster from `scripts/postgres.sh` for the server's tests), binding generation, and the Kotlin
//!   tests on the JVM against the generated bindings (`scripts/kotlin-tests.sh`: the Android shell's
//!   layer and view models in `android/weldguard-kotlin`, its flows against the real server), and
//!   the Swift package's tests on Linux (`scripts/swift.sh test`, the iOS shell in ios/), then the
//!   web dashboard's browser tests in headless Chromium (`scripts/browser.sh`).
//! - `cargo xtask browser`: only the browser tests (the server and `wg-dash-world`, then
//!   `scripts/browser.sh`).
//! - `cargo xtask bindings [--out DIR]`: Kotlin and Swift bindings from the built core library.
//! - `cargo xtask swift`: only the Swift step (bindings, the optimised phone library, the server
//!   and the bureau's desk tool, then `scripts/swift.sh test`).
//! - `cargo xtask bench NAME [ARGS…]`: a benchmark binary from `core/benches/NAME.rs`, release build,
//!   with ARGS passed through (for example `cargo xtask bench scan --photos ../shared/qr-photos`);
//!   `cargo xtask bench ffi`: the FFI's share of a scan and a decision, Kotlin against Rust.

mod bench_ffi;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bindings") => bindings(&args[1..]).map(|_| ()),
        Some("bench") => bench(&args[1..]),
        Some("swift") => shell_inputs()
            .and_then(|out| swift_tests(&out))
            .map(|swift| println!("{}", swift.summary())),
        Some("browser") => browser_inputs()
            .and_then(|()| browser_tests())
            .map(|browser| println!("{}", browser.summary())),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: cargo xtask test | bindings [--out DIR] | swift | browser | bench NAME [ARGS…]"
        .to_owned()
}

/// The workspace root (the parent of this crate's folder).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root());
    command
}

/// Run a command, echoing it; fail with its description when it fails.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: failed ({status})"))
    }
}

/// Tests that passed, failed and were skipped.
#[derive(Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    /// Add the counts a result line states in parts such as `5 passed`, `0 failed`, `1 ignored`,
    /// split at `separators`.
    fn add_from(&mut self, line: &str, separators: &[char]) {
        for part in line.split(separators) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next()) {
                let n: u64 = n.parse().unwrap_or(0);
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        }
    }

    fn summary(self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

/// Run `cargo test`, echoing its output, and add up every test binary's `test result:` line
/// (cargo's own last line is often a doc-test run with nothing in it).
fn run_tests(mut command: Command) -> Result<Counts, String> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: cargo test --workspace");
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test: cannot start: {e}"))?;
    let mut counts = Counts::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.trim().strip_prefix("test result: ") {
                counts.add_from(rest, &[';', '.']);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    if status.success() && counts.failed == 0 {
        Ok(counts)
    } else {
        println!("{}", counts.summary());
        Err(format!("cargo test: failed ({status})"))
    }
}

/// Run `scripts/kotlin-tests.sh` (the Kotlin tests on the JVM against the generated bindings and
/// the built core library, the flows against the server and wg-shell-world in `bin_dir`; it
/// installs what they need when missing) and read its closing
/// `kotlin tests: P passed, F failed` line.
fn kotlin_tests(bindings: &Path, library_dir: &Path, bin_dir: &Path) -> Result<Counts, String> {
    let script = root().join("scripts").join("kotlin-tests.sh");
    eprintln!("xtask: Kotlin tests on the JVM ({})", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .arg(bindings)
        .arg(library_dir)
        .arg(bin_dir)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let mut counts = Counts::default();
    if let Some(last) = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("kotlin tests: "))
    {
        counts.add_from(last, &[',']);
    }
    if output.status.success() && counts.failed == 0 && counts.passed > 0 {
        Ok(counts)
    } else {
        Err(format!(
            "{} failed ({}): {} Kotlin tests passed, {} failed",
            script.display(),
            output.status,
            counts.passed,
            counts.failed
        ))
    }
}

fn test() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt, "cargo fmt --check")?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy, "cargo clippy -D warnings")?;
    // The phone library alone, with its own feature set (no issuing keys, no admin client, no test
    // helpers: docs/adr/0015): what the workspace build unifies away is linted too.
    let mut phone = cargo();
    phone.args(["clippy", "-p", "weldguard-ffi", "--", "-D", "warnings"]);
    run(phone, "cargo clippy -p weldguard-ffi (the phone build)")?;

    // The server's PostgreSQL tests need a cluster: start it (installing it when missing) and make
    // a missing database a failure rather than a skip.
    let postgres_url = start_postgres()?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    tests.env("WG_TEST_POSTGRES_URL", &postgres_url);
    tests.env("WG_REQUIRE_POSTGRES", "1");
    let rust = run_tests(tests)?;

    let out = shell_inputs()?;
    let kotlin = kotlin_tests(
        &out,
        &target_dir().join("release"),
        &target_dir().join("debug"),
    )?;
    let swift = swift_tests(&out)?;
    // shell_inputs built the server and wg-dash-world too.
    let browser = browser_tests()?;
    let all = Counts {
        passed: rust.passed + kotlin.passed + swift.passed + browser.passed,
        failed: rust.failed + kotlin.failed + swift.failed + browser.failed,
        ignored: rust.ignored + kotlin.ignored + swift.ignored + browser.ignored,
    };
    println!("{}", all.summary());
    Ok(())
}

/// Cargo's target folder (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        })
        .unwrap_or_else(|| root().join("target"))
}

/// What the shells' tests (Kotlin and Swift) run against: the bindings (returned: their folder),
/// the optimised phone library, and the binaries their flow tests start: the platform's server,
/// the bureau's desk tool `wg-shell-world` and the CLI it renders labels with
/// (docs/shell-tests.md); and the dashboard's world tool `wg-dash-world` for the browser tests.
fn shell_inputs() -> Result<PathBuf, String> {
    let out = target_dir().join("bindings");
    bindings(&["--out".to_owned(), out.display().to_string()])?;
    // The shells load the optimised phone library, as phones do: the scanner's time budgets
    // (live 40 ms, photo 120 ms) are for optimised code, and an unoptimised build under a busy
    // machine's load would miss them and make the scan tests flaky (the bindings are the same).
    let mut release = cargo();
    release.args(["build", "--release", "-p", "weldguard-ffi", "--lib"]);
    run(release, "build the optimised phone library for the shells")?;
    let mut tools = cargo();
    tools.args([
        "build",
        "-p",
        "weldguard-server",
        "--bin",
        "weldguard-server",
        "-p",
        "weldguard-tests",
        "--bin",
        "wg-shell-world",
        "--bin",
        "wg-dash-world",
        "-p",
        "weldguard-cli",
        "--bin",
        "weldguard",
    ]);
    run(
        tools,
        "build the server, wg-shell-world, wg-dash-world and the CLI for the shells' and browser tests",
    )?;
    Ok(out)
}

/// `scripts/swift.sh test` on the shells' inputs (it builds the Swift toolchain chroot once on
/// Linux) and its closing `swift tests: P passed, F failed` line.
fn swift_tests(out: &Path) -> Result<Counts, String> {
    let script = root().join("scripts").join("swift.sh");
    eprintln!("xtask: Swift tests ({} test)", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .arg("test")
        .arg(out)
        .arg(target_dir().join("release"))
        .arg(target_dir().join("debug"))
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let counts = swift_counts(&stdout);
    if output.status.success() && counts.failed == 0 && counts.passed > 0 {
        Ok(counts)
    } else {
        Err(format!(
            "{} test failed ({}): {} Swift tests passed, {} failed",
            script.display(),
            output.status,
            counts.passed,
            counts.failed
        ))
    }
}

/// The counts of the last `swift tests: P passed, F failed` line.
fn swift_counts(stdout: &str) -> Counts {
    last_counts(stdout, "swift tests: ")
}

/// The counts of the last line starting with `prefix` (`P passed, F failed` after it).
fn last_counts(stdout: &str, prefix: &str) -> Counts {
    let mut counts = Counts::default();
    if let Some(last) = stdout.lines().rev().find_map(|l| l.strip_prefix(prefix)) {
        counts.add_from(last, &[',']);
    }
    counts
}

/// The browser tests' binaries alone: the server and the dashboard's world tool.
fn browser_inputs() -> Result<(), String> {
    let mut tools = cargo();
    tools.args([
        "build",
        "-p",
        "weldguard-server",
        "--bin",
        "weldguard-server",
        "-p",
        "weldguard-tests",
        "--bin",
        "wg-dash-world",
    ]);
    run(
        tools,
        "build the server and wg-dash-world for the browser tests",
    )
}

/// `scripts/browser.sh` (installs Debian's chromium and playwright-core once, then runs the
/// dashboard's browser tests against the debug server) and its closing
/// `browser tests: P passed, F failed` line. Its screenshots go to `target/dashboard-screenshots`
/// (the committed ones in docs/dashboard/ are refreshed by running the script by hand).
fn browser_tests() -> Result<Counts, String> {
    let script = root().join("scripts").join("browser.sh");
    eprintln!("xtask: browser tests ({})", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(root())
        .env("WG_TARGET_DIR", target_dir())
        .env(
            "WG_BROWSER_SHOTS",
            target_dir().join("dashboard-screenshots"),
        )
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let counts = last_counts(&stdout, "browser tests: ");
    if output.status.success() && counts.failed == 0 && counts.passed > 0 {
        Ok(counts)
    } else {
        Err(format!(
            "{} failed ({}): {} browser tests passed, {} failed",
            script.display(),
            output.status,
            counts.passed,
            counts.failed
        ))
    }
}

/// Run `scripts/postgres.sh` (install when missing, start when stopped) and return the URL it
/// prints.
fn start_postgres() -> Result<String, String> {
    let script = root().join("scripts").join("postgres.sh");
    eprintln!(
        "xtask: start PostgreSQL for the tests ({})",
        script.display()
    );
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", script.display()))?;
    let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !url.starts_with("postgres://") {
        return Err(format!(
            "{} failed ({}); the PostgreSQL tests need it",
            script.display(),
            output.status
        ));
    }
    eprintln!("xtask: PostgreSQL at {url}");
    Ok(url)
}

/// Build the phone library (`weldguard-ffi`) and generate Kotlin and Swift bindings from it
/// (library mode).
fn bindings(args: &[String]) -> Result<PathBuf, String> {
    let out = match args {
        [] => target_dir().join("bindings"),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => return Err(usage()),
    };
    let mut build = cargo();
    build.args(["build", "-p", "weldguard-ffi", "--lib"]);
    run(build, "build the phone library")?;

    let library = target_dir().join("debug").join(format!(
        "{}weldguard_ffi.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    if !library.exists() {
        return Err(format!(
            "the phone library is missing at {}",
            library.display()
        ));
    }
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    let mut generate = cargo();
    generate.args([
        "run",
        "--quiet",
        "-p",
        "uniffi-bindgen",
        "--",
        "generate",
        "--library",
    ]);
    generate.arg(&library);
    generate.args(["-l", "kotlin", "-l", "swift", "--no-format", "--config"]);
    generate.arg(root().join("uniffi.toml"));
    generate.arg("--out-dir").arg(&out);
    run(generate, "generate Kotlin and Swift bindings")?;

    for expected in [
        "org/weldguard/core/weldguard_core.kt",
        "WeldGuardCore.swift",
        "WeldGuardFFI.h",
    ] {
        if !out.join(expected).exists() {
            return Err(format!(
                "binding generation did not write {expected} under {}",
                out.display()
            ));
        }
    }
    check_hostile_coverage(&out.join("WeldGuardFFI.h"))?;
    eprintln!("xtask: bindings written to {}", out.display());
    Ok(out)
}

/// Methods of the traits the shells implement (callbacks into Kotlin or Swift): not exports a
/// hostile caller can reach.
const FOREIGN_TRAITS: [&str; 3] = ["devicekey_", "synclistener_", "personsigner_"];

/// Every function, constructor and method the generated header exports must be called by the
/// hostile-input test (`ffi/tests/hostile.rs`, its `COVERED` list): a new export without a hostile
/// test fails the build.
fn check_hostile_coverage(header: &Path) -> Result<(), String> {
    let header = std::fs::read_to_string(header)
        .map_err(|e| format!("cannot read {}: {e}", header.display()))?;
    let test = root().join("ffi").join("tests").join("hostile.rs");
    let test = std::fs::read_to_string(&test)
        .map_err(|e| format!("cannot read {}: {e}", test.display()))?;
    let uncovered = uncovered_exports(&header, &covered_names(&test));
    if uncovered.is_empty() {
        eprintln!("xtask: every export is called by ffi/tests/hostile.rs");
        Ok(())
    } else {
        Err(format!(
            "exports without a hostile-input test (add them to COVERED in ffi/tests/hostile.rs \
             and call them there): {}",
            uncovered.join(", ")
        ))
    }
}

/// The names in the test's `const COVERED: &[&str] = &[ … ];`.
fn covered_names(test: &str) -> Vec<String> {
    let Some(start) = test.find("const COVERED") else {
        return Vec::new();
    };
    let rest = &test[start..];
    let body = rest
        .find("&[")
        .and_then(|open| {
            rest[open..]
                .find("];")
                .map(|close| &rest[open..open + close])
        })
        .unwrap_or("");
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The exported `uniffi_weldguard_ffi_fn_{func,constructor,method}_*` symbols of the header
/// (callback trait methods excepted) not in `covered`, sorted.
fn uncovered_exports(header: &str, covered: &[String]) -> Vec<String> {
    const PREFIX: &str = "uniffi_weldguard_ffi_fn_";
    let mut found = std::collections::BTreeSet::new();
    for (at, _) in header.match_indices(PREFIX) {
        let name: String = header[at + PREFIX.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let exported = ["func_", "constructor_", "method_"]
            .iter()
            .any(|kind| name.starts_with(kind));
        let foreign = name
            .strip_prefix("method_")
            .is_some_and(|m| FOREIGN_TRAITS.iter().any(|t| m.starts_with(t)));
        if exported && !foreign && !covered.contains(&name) {
            found.insert(name);
        }
    }
    found.into_iter().collect()
}

fn bench(args: &[String]) -> Result<(), String> {
    let Some((name, rest)) = args.split_first() else {
        return Err(usage());
    };
    if name == "ffi" {
        return bench_ffi::bench_ffi(rest);
    }
    let source = root()
        .join("core")
        .join("benches")
        .join(format!("{name}.rs"));
    if !source.exists() {
        return Err(format!(
            "no benchmark named {name:?} (looked for {})",
            source.display()
        ));
    }
    let mut command = cargo();
    if name == "sync" || name == "platform" {
        // These benchmarks run the real server binary next to them.
        let mut server = cargo();
        server.args(["build", "--release", "-p", "weldguard-server"]);
        run(server, "build the server (release)")?;
    }
    command.args(["bench", "-p", "weldguard-core", "--bench", name, "--"]);
    command.args(rest);
    run(command, &format!("benchmark {name}"))
}

#[cfg(test)]
mod tests {
    use super::{Counts, covered_names, last_counts, swift_counts, uncovered_exports};

    #[test]
    fn an_export_missing_from_covered_is_reported() {
        let header = "void uniffi_weldguard_ffi_fn_func_scan_frame(int a);\n\
                      void uniffi_weldguard_ffi_fn_method_device_sync(void* p);\n\
                      void uniffi_weldguard_ffi_fn_method_devicekey_sign(void* p);\n\
                      void uniffi_weldguard_ffi_fn_method_personsigner_sign(void* p);\n\
                      void uniffi_weldguard_ffi_fn_constructor_device_open(void* p);\n\
                      void uniffi_weldguard_ffi_fn_init_callback_vtable_devicekey(void* p);\n";
        let test = "const X: &[&str] = &[\"method_device_sync\"];\n\
                    const COVERED: &[&str] = &[\n    \"func_scan_frame\",\n    \"constructor_device_open\",\n];";
        let covered = covered_names(test);
        assert_eq!(covered, vec!["func_scan_frame", "constructor_device_open"]);
        assert_eq!(
            uncovered_exports(header, &covered),
            vec!["method_device_sync".to_owned()]
        );
        assert!(uncovered_exports(header, &[]).contains(&"func_scan_frame".to_owned()));
        assert!(covered_names("no list here").is_empty());
    }

    #[test]
    fn result_lines_of_cargo_and_the_kotlin_script_add_up() {
        let mut counts = Counts::default();
        counts.add_from(
            "ok. 9 passed; 1 failed; 2 ignored; 0 measured; 258 filtered out; finished in 0.08s",
            &[';', '.'],
        );
        counts.add_from("5 passed, 0 failed", &[',']);
        assert_eq!((counts.passed, counts.failed, counts.ignored), (14, 1, 2));
        assert_eq!(counts.summary(), "tests: 14 passed, 1 failed, 2 skipped");
    }

    #[test]
    fn the_swift_scripts_last_result_line_counts() {
        let out = "swift tests: 1 passed, 0 failed\nnoise\nswift tests: 17 passed, 2 failed\n";
        let counts = swift_counts(out);
        assert_eq!((counts.passed, counts.failed), (17, 2));
        assert_eq!(swift_counts("no result line").passed, 0);
        let browser = last_counts(
            "browser tests: 3 passed, 1 failed\nbrowser tests: 9 passed, 0 failed\n",
            "browser tests: ",
        );
        assert_eq!((browser.passed, browser.failed), (9, 0));
    }
}
