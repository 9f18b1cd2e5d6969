//! Validation of user text: Unicode NFC normalisation, no control or bidi-override characters,
//! trimmed, and a length limit per kind of text (counted in characters, not bytes).

use unicode_normalization::UnicodeNormalization;

/// The kinds of text a person can enter, each with its own limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Question,
    Comment,
    DisplayName,
    Reason,
    Announcement,
    Title,
    PollQuestion,
    PollOption,
    /// A meeting's description, shown on the waiting page.
    Description,
    /// One point of a meeting's agenda.
    AgendaItem,
}

impl TextKind {
    /// Maximum length in characters (after normalisation and trimming).
    pub const fn max_chars(self) -> usize {
        match self {
            TextKind::Question => 500,
            TextKind::Comment => 300,
            TextKind::DisplayName => 40,
            TextKind::Reason => 200,
            TextKind::Announcement => 300,
            TextKind::Title => 120,
            TextKind::PollQuestion => 200,
            TextKind::PollOption => 80,
            TextKind::Description => 2000,
            TextKind::AgendaItem => 200,
        }
    }

    const fn multiline(self) -> bool {
        matches!(
            self,
            TextKind::Question | TextKind::Comment | TextKind::Announcement | TextKind::Description
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the text is empty")]
    Empty,
    #[error("the text is too long: {len} characters, at most {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("the text contains control or direction-override characters")]
    Invalid,
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "text_empty",
            TextError::TooLong { .. } => "text_too_long",
            TextError::Invalid => "text_invalid",
        }
    }
}

/// Bidi overrides and isolates can make text display differently from what it says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Normalises and checks `raw`; returns the text to store or why it cannot be accepted.
pub fn clean(kind: TextKind, raw: &str) -> Result<String, TextError> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.replace("\r\n", "\n").nfc() {
        match c {
            '\n' if kind.multiline() => out.push('\n'),
            '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => return Err(TextError::Invalid),
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    let len = trimmed.chars().count();
    let max = kind.max_chars();
    if len > max {
        return Err(TextError::TooLong { len, max });
    }
    Ok(trimmed.to_owned())
}

/// Like [`clean`], but empty text means "none" (a display name or announcement can be cleared).
pub fn clean_optional(kind: TextKind, raw: &str) -> Result<Option<String>, TextError> {
    match clean(kind, raw) {
        Ok(s) => Ok(Some(s)),
        Err(TextError::Empty) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_trims() {
        // "e" + combining acute accent becomes one precomposed character.
        assert_eq!(
            clean(TextKind::Comment, "  cafe\u{301}\r\nok  ").unwrap(),
            "café\nok"
        );
        assert_eq!(clean(TextKind::DisplayName, "a\tb").unwrap(), "a b");
    }

    #[test]
    fn rejects_what_cannot_be_shown_honestly() {
        assert_eq!(clean(TextKind::Question, "   \n "), Err(TextError::Empty));
        assert_eq!(
            clean(TextKind::Question, "a\u{7}b"),
            Err(TextError::Invalid)
        );
        assert_eq!(
            clean(TextKind::Question, "abc\u{202E}cba"),
            Err(TextError::Invalid)
        );
        assert_eq!(
            clean(TextKind::DisplayName, "two\nlines"),
            Err(TextError::Invalid)
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        let max = TextKind::DisplayName.max_chars();
        assert!(clean(TextKind::DisplayName, &"ø".repeat(max)).is_ok());
        assert_eq!(
            clean(TextKind::DisplayName, &"ø".repeat(max + 1)),
            Err(TextError::TooLong { len: max + 1, max })
        );
    }

    #[test]
    fn optional_text_may_be_empty() {
        assert_eq!(clean_optional(TextKind::Announcement, " "), Ok(None));
        assert_eq!(
            clean_optional(TextKind::Announcement, "x"),
            Ok(Some("x".into()))
        );
    }
}
