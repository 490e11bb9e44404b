//! How the CLI speaks: language choice, JSON or human output, and one-line failures.

use serde::Serialize;

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
        println!("{text}");
        Ok(())
    }

    /// Report a failure: one line on stderr, and with `--json` an error object on stdout.
    pub fn fail(&self, failure: &Failure) {
        if self.json {
            let doc = serde_json::json!({ "error": { "code": failure.code, "message": failure.message } });
            println!("{doc}");
        }
        eprintln!("weldguard: {}", failure.message);
    }
}
