//! How the CLI speaks: language choice, JSON or human output, and one-line failures.
//!
//! Every byte the CLI prints goes through [`write_stdout`] / [`write_stderr`] (the `stdoutln!`,
//! `stdout!`, `stderrln!` and `stderr!` macros stand in for `println!` and friends, which panic
//! when a write fails). A closed pipe on standard output (`weldguard permit list | head -c 10`)
//! ends the program quietly with status 141, what a shell shows for a filter ended by SIGPIPE;
//! any other failed write to it ends it with status 1 and one line on standard error. A failed
//! write to standard error is ignored: there is nowhere left to say it. This is done here rather
//! than by putting SIGPIPE back to its default at start, because that would also cover other
//! write failures (a full disk) and leave the signal alone for `weldguard server`, whose sockets
//! must never end the process.

use std::io::Write;

use serde::Serialize;

/// The exit status after standard output was closed under us (128 + SIGPIPE).
pub const CLOSED_PIPE_EXIT: i32 = 141;

/// `println!` that never panics (see the module doc).
macro_rules! stdoutln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics (see the module doc).
macro_rules! stdout {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module doc).
macro_rules! stderrln {
    () => {
        $crate::output::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics (see the module doc).
macro_rules! stderr {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!($($arg)*))
    };
}

/// Write to standard output; a failed write ends the program (quietly for a closed pipe).
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_PIPE_EXIT);
        }
        write_stderr(format_args!(
            "weldguard: cannot write to standard output / 无法写入标准输出: {e}\n"
        ));
        std::process::exit(1);
    }
}

/// Write to standard error; a failed write is ignored.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// The language of human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// zh when LC_ALL, LC_MESSAGES or LANG (first one set) starts with "zh", else en.
    pub fn from_env() -> Self {
        let value = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        if value.starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// Pick the text for this language.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// A command that could not do what was asked: bad input, unreadable file, and so on.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub exit_code: i32,
}

impl Failure {
    /// Bad input from the user (exit 2).
    pub fn input(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            exit_code: 2,
        }
    }

    /// Something the tool needed failed (exit 1).
    pub fn runtime(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            exit_code: 1,
        }
    }
}

/// Output settings for one run.
pub struct Output {
    pub json: bool,
    pub lang: Lang,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            lang: Lang::from_env(),
        }
    }

    /// Print a JSON document (pretty, one document per run).
    pub fn json<T: Serialize>(&self, value: &T) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::runtime("output.json", e.to_string()))?;
        stdoutln!("{text}");
        Ok(())
    }

    /// Report a failure: one line on stderr, and with `--json` an error object on stdout.
    pub fn fail(&self, failure: &Failure) {
        if self.json {
            let doc = serde_json::json!({ "error": { "code": failure.code, "message": failure.message } });
            stdoutln!("{doc}");
        }
        stderrln!("weldguard: {}", failure.message);
    }
}
