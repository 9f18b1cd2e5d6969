//! Validation of user text: Unicode NFC normalisation, no control or bidi-override characters,
//! trimmed, and a length limit per kind of text (counted in characters, not bytes).
//!
//! Text must also show something: text made only of invisible characters (zero-width spaces,
//! Hangul fillers, tag characters, other format characters, blanks) is empty, and a run of
//! combining marks on one character is bounded ([`MAX_MARKS_IN_A_ROW`]), so a name cannot be
//! blank or smear over the lines around it. Invisible characters stay in the text — emoji
//! sequences need the zero-width joiner and variation selectors, Persian the zero-width
//! non-joiner — they only do not count as something shown.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Combining marks allowed in a row. Real scripts stack a few (Vietnamese two, Thai and
/// Indic scripts three or four, a keycap emoji two); "Zalgo" text stacks dozens.
pub const MAX_MARKS_IN_A_ROW: usize = 8;

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
    #[error("the text has more than {max} combining marks in a row")]
    TooManyMarks { max: usize },
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "text_empty",
            TextError::TooLong { .. } => "text_too_long",
            TextError::Invalid | TextError::TooManyMarks { .. } => "text_invalid",
        }
    }
}

/// Bidi overrides and isolates can make text display differently from what it says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing by themselves: format characters (Unicode category Cf),
/// fillers and blanks that render as empty space, and variation selectors.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Whether `text` shows at least one character: not only whitespace, invisible characters
/// and marks with nothing to sit on.
fn shows_something(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !is_invisible(c) && !is_combining_mark(c))
}

/// The longest run of combining marks in `text`.
fn longest_mark_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        if is_combining_mark(c) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
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
    if !shows_something(trimmed) {
        return Err(TextError::Empty);
    }
    if longest_mark_run(trimmed) > MAX_MARKS_IN_A_ROW {
        return Err(TextError::TooManyMarks {
            max: MAX_MARKS_IN_A_ROW,
        });
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

    /// Row 13: names and questions of only zero-width spaces, Hangul fillers or tag
    /// characters, and one letter with 499 combining marks, were accepted.
    #[test]
    fn invisible_text_is_empty_and_mark_runs_are_bounded() {
        for blank in [
            "\u{200B}\u{200B}\u{200B}",
            "\u{3164}\u{3164}",
            "\u{115F}\u{1160}\u{FFA0}",
            "\u{E0041}\u{E0042}\u{E007F}",
            "\u{2800} \u{2060}\u{FEFF}",
            " \u{200D}\u{FE0F} \u{00AD}",
            "\u{0301}\u{0301}",
        ] {
            assert_eq!(
                clean(TextKind::DisplayName, blank),
                Err(TextError::Empty),
                "{blank:?}"
            );
            assert_eq!(
                clean(TextKind::Question, blank),
                Err(TextError::Empty),
                "{blank:?}"
            );
            assert_eq!(clean_optional(TextKind::DisplayName, blank), Ok(None));
        }
        let zalgo = format!("a{}", "\u{0301}\u{0316}".repeat(250));
        let refused = clean(TextKind::Question, &zalgo).unwrap_err();
        assert_eq!(
            refused,
            TextError::TooManyMarks {
                max: MAX_MARKS_IN_A_ROW
            }
        );
        assert_eq!(refused.code(), "text_invalid");
        // Stacked marks up to the bound are fine (they do not all compose under NFC).
        let stacked = format!("a{}", "\u{0316}".repeat(MAX_MARKS_IN_A_ROW));
        assert!(clean(TextKind::Question, &stacked).is_ok());
    }

    #[test]
    fn every_ordinary_script_and_emoji_still_work() {
        for text in [
            "Hvornår åbner den nye skole på Ærøvej?",
            "ÆØÅ æøå",
            "متى ستفتح المدرسة الجديدة؟",
            "מתי ייפתח בית הספר?",
            "Когда откроется школа?",
            "学校什么时候开?",
            "Tiếng Việt có dấu: Người, được, ữ",
            "हिन्दी में प्रश्न: क्षत्रिय",
            "ภาษาไทย ผู้ใหญ่",
            "می‌خواهم",
            "👍🏽 👨‍👩‍👧‍👦 ❤️ 1️⃣ 🏳️‍🌈 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
        ] {
            let cleaned = clean(TextKind::Question, text);
            assert!(cleaned.is_ok(), "{text}: {cleaned:?}");
        }
        assert_eq!(
            clean(TextKind::DisplayName, "Søren Ærø").unwrap(),
            "Søren Ærø"
        );
        assert_eq!(clean(TextKind::DisplayName, "👍").unwrap(), "👍");
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
