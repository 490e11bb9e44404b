//! `cargo xtask bench ffi [--iterations N]`: the FFI's share of a camera-frame scan and of a
//! scan-to-start decision, Kotlin against Rust in one run.
//!
//! - The Rust half (`ffi/benches/ffi.rs`, release build) makes the inputs (a 1280×720 camera frame
//!   with padded rows, a profile database per half, a machine label and a credential) and times
//!   the core's own calls on them, without the FFI.
//! - The Kotlin half (`android/weldguard-kotlin/src/bench/kotlin`, `scripts/kotlin-bench.sh`) times
//!   the same calls through the generated bindings, JNA and the optimised phone library.
//!
//! Both halves stay running and serve requests on standard input: `scan N` or `decide N` times N
//! calls and answers one line, `scan HITS NS NS …` (HITS: calls that read a code). This task
//! alternates blocks of 20 calls between the halves, so a change in the machine's load (other
//! builds on a shared machine) falls on both alike; before them each half makes 500 calls that are
//! not counted (the JVM compiles the binding code once it is hot).
//!
//! The FFI's share is (Kotlin − Rust) / Kotlin of the medians; the goal (issue 16) is under 10 % of
//! the scan's time, for the scan the Android analyzer makes: the camera's direct ByteBuffer lent to
//! `scan_frame_buffer`. The copying path (`scan_frame_with`, a ByteArray: UniFFI copies it into a
//! RustBuffer and lifts it byte by byte) and the decision's share are reported beside it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::{bindings, cargo, root, run};

/// Under this share of the scan's time the goal is met.
const GOAL: f64 = 0.10;
/// Calls per block.
const BLOCK: usize = 20;
/// Calls each half makes before the timed blocks of a request: the JVM compiles the binding code
/// once it is hot (a phone's runtime compiles it ahead of time or from a profile).
const WARM_UP: usize = 500;

pub fn bench_ffi(args: &[String]) -> Result<(), String> {
    let iterations: usize = match args {
        [] => 300,
        [flag, n] if flag == "--iterations" => n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("--iterations takes a positive number")?,
        _ => return Err("usage: cargo xtask bench ffi [--iterations N]".to_owned()),
    };
    let dir = super::target_dir().join("bench-ffi");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let mut release = cargo();
    release.args([
        "build",
        "--release",
        "-p",
        "weldguard-ffi",
        "--lib",
        "--benches",
    ]);
    run(
        release,
        "build the optimised phone library and the Rust half",
    )?;
    let generated = bindings(&[
        "--out".to_owned(),
        dir.join("bindings").display().to_string(),
    ])?;

    let mut rust = cargo();
    rust.args(["bench", "-q", "-p", "weldguard-ffi", "--bench", "ffi", "--"]);
    rust.arg("--fixtures").arg(&dir);
    let mut rust = Half::start(rust, "Rust")?;
    let mut kotlin = Command::new("bash");
    kotlin
        .arg(root().join("scripts").join("kotlin-bench.sh"))
        .arg(&generated)
        .arg(super::target_dir().join("release"))
        .arg(&dir);
    let mut kotlin = Half::start(kotlin, "Kotlin")?;

    println!(
        "\nFFI bench: blocks of {BLOCK} calls alternating between the halves, {iterations} calls each"
    );
    for (what, request) in [
        (
            "scan of a 1280×720 camera frame (live budget, one code), the frame in a direct \
             ByteBuffer as CameraX hands it over (scan_frame_buffer: lent, no copy)",
            "scanbuf",
        ),
        (
            "the same scan, the frame in a ByteArray (scan_frame_with: copied)",
            "scan",
        ),
        ("scan-to-start decision (recorded)", "decide"),
    ] {
        rust.block(request, WARM_UP)?;
        kotlin.block(request, WARM_UP)?;
        let (mut r, mut k) = (Timings::default(), Timings::default());
        while r.ns.len() < iterations {
            r.add(rust.block(request, BLOCK)?);
            k.add(kotlin.block(request, BLOCK)?);
        }
        let (rm, km) = (r.median_us(), k.median_us());
        let share = if km > 0.0 { (km - rm) / km } else { 0.0 };
        println!(
            "  {what}: median Rust {rm:.0} µs, Kotlin {km:.0} µs (p10 {:.0} / {:.0} µs): \
             the FFI's share {:.1} %",
            r.p10_us(),
            k.p10_us(),
            share * 100.0
        );
        if request != "decide" {
            println!(
                "    codes read: Rust {} of {}, Kotlin {} of {}",
                r.hits,
                r.ns.len(),
                k.hits,
                k.ns.len()
            );
        }
        if request == "scanbuf" {
            println!(
                "  goal: the FFI's share of the scan the Android analyzer makes under {:.0} %: {}",
                GOAL * 100.0,
                if share < GOAL { "met" } else { "NOT met" }
            );
        }
    }
    rust.stop()?;
    kotlin.stop()
}

/// One half, running, with its requests and answers piped.
struct Half {
    name: &'static str,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Half {
    fn start(mut command: Command, name: &'static str) -> Result<Self, String> {
        eprintln!("xtask: start the {name} half of the FFI bench");
        let mut child = command
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {name} half: {e}"))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("the {name} half has no pipes"));
        };
        let mut half = Half {
            name,
            child,
            input,
            output: BufReader::new(output),
        };
        let ready = half.line()?;
        if ready.trim() != "ready" {
            return Err(format!("the {name} half said {ready:?} instead of ready"));
        }
        Ok(half)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = self
            .output
            .read_line(&mut line)
            .map_err(|e| format!("the {} half: {e}", self.name))?;
        if n == 0 {
            return Err(format!("the {} half ended early", self.name));
        }
        Ok(line)
    }

    fn block(&mut self, request: &str, calls: usize) -> Result<Answer, String> {
        writeln!(self.input, "{request} {calls}")
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("the {} half: {e}", self.name))?;
        parse_answer(&self.line()?, request, calls)
            .map_err(|e| format!("the {} half: {e}", self.name))
    }

    fn stop(mut self) -> Result<(), String> {
        drop(self.input);
        let status = self
            .child
            .wait()
            .map_err(|e| format!("the {} half: {e}", self.name))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the {} half failed ({status})", self.name))
        }
    }
}

/// One block's answer: how many calls read a code, and each call's nanoseconds.
#[derive(Debug, PartialEq)]
struct Answer {
    hits: usize,
    ns: Vec<u64>,
}

fn parse_answer(line: &str, request: &str, n: usize) -> Result<Answer, String> {
    let mut words = line.split_whitespace();
    if words.next() != Some(request) {
        return Err(format!("answered {line:?} to {request}"));
    }
    let hits = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("no count in {line:?}"))?;
    let ns: Vec<u64> = words
        .map(|w| w.parse().map_err(|_| format!("not a time: {w}")))
        .collect::<Result<_, _>>()?;
    if ns.len() != n {
        return Err(format!("{} times for {n} calls", ns.len()));
    }
    Ok(Answer { hits, ns })
}

#[derive(Default)]
struct Timings {
    hits: usize,
    ns: Vec<u64>,
}

impl Timings {
    fn add(&mut self, answer: Answer) {
        self.hits += answer.hits;
        self.ns.extend(answer.ns);
    }

    fn quantile_us(&self, q: f64) -> f64 {
        let mut sorted = self.ns.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).map_or(0.0, |&ns| ns as f64 / 1000.0)
    }

    fn median_us(&self) -> f64 {
        self.quantile_us(0.5)
    }

    fn p10_us(&self) -> f64 {
        self.quantile_us(0.1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, Timings, parse_answer};

    #[test]
    fn answers_are_parsed_and_checked() {
        assert_eq!(
            parse_answer("scan 2 1000 3000\n", "scan", 2),
            Ok(Answer {
                hits: 2,
                ns: vec![1000, 3000]
            })
        );
        assert!(parse_answer("decide 2 1000 3000", "scan", 2).is_err());
        assert!(parse_answer("scan 2 1000", "scan", 2).is_err());
        assert!(parse_answer("scan x 1000", "scan", 1).is_err());
        assert!(parse_answer("scan 1 1e3", "scan", 1).is_err());
    }

    #[test]
    fn medians_of_the_timed_calls() {
        let mut t = Timings::default();
        t.add(Answer {
            hits: 1,
            ns: vec![5000, 1000, 3000],
        });
        assert_eq!(t.median_us(), 3.0);
        assert_eq!(t.p10_us(), 1.0);
        assert_eq!(Timings::default().median_us(), 0.0);
    }
}
