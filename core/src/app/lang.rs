//! [`Lang`]: the language a shell (or the CLI) chose for the texts a service puts in its views.
//! Stable codes never depend on it; every explained error keeps both languages.

use serde::{Deserialize, Serialize};

use crate::domain::Explain;

/// A user's language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 简体中文 (the default: the product's users are in China).
    #[default]
    Zh,
    En,
}

impl Lang {
    /// Pick the text for this language.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// An explained error or finding in this language.
    pub fn explain(self, e: &dyn Explain) -> String {
        match self {
            Lang::Zh => e.message_zh(),
            Lang::En => e.message_en(),
        }
    }
}
