//! The one way every capability explains itself to a person: a stable code and text in two languages.

/// A user-facing explanation. Codes are stable (shells and the server match on them); the texts are for
/// people and may be reworded.
pub trait Explain {
    /// A stable, lowercase, dot-separated code such as `licence.expired`.
    fn code(&self) -> &'static str;
    /// The reason in Chinese.
    fn message_zh(&self) -> String;
    /// The reason in English.
    fn message_en(&self) -> String;
}
