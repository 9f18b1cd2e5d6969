//! Properties of text validation (issue 8, row 13): whatever is accepted shows something and
//! has bounded runs of combining marks; text of only invisible characters is empty; words of
//! ordinary scripts (Danish, Arabic, emoji, …) are accepted as they are.

use proptest::prelude::*;
use townhall_core::text::{self, MAX_MARKS_IN_A_ROW, TextError, TextKind, is_invisible};
use unicode_normalization::char::is_combining_mark;

const KINDS: [TextKind; 4] = [
    TextKind::Question,
    TextKind::Comment,
    TextKind::DisplayName,
    TextKind::Reason,
];

/// Invisible characters and blanks, the stuff of row 13.
fn invisible() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{3164}',
        '\u{115F}',
        '\u{1160}',
        '\u{FFA0}',
        '\u{E0041}',
        '\u{E007F}',
        '\u{2800}',
        '\u{00AD}',
        '\u{FE0F}',
        '\u{180E}',
        ' ',
        '\u{3000}',
        '\u{00A0}',
        '\u{0301}',
        '\u{034F}',
    ])
}

/// Words of scripts people write questions in.
fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "skole",
        "Ærø",
        "åbne",
        "Søndergård",
        "øl",
        "مدرسة",
        "متى",
        "الجديدة",
        "שלום",
        "школа",
        "学校",
        "Người",
        "क्षत्रिय",
        "ผู้ใหญ่",
        "می‌خواهم",
        "👍🏽",
        "👨‍👩‍👧‍👦",
        "❤️",
        "1️⃣",
        "🏳️‍🌈",
    ])
    .prop_map(str::to_owned)
}

fn longest_mark_run(s: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        run = if is_combining_mark(c) { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

proptest! {
    #[test]
    fn accepted_text_shows_something_and_marks_are_bounded(raw in ".{0,600}") {
        for kind in KINDS {
            if let Ok(clean) = text::clean(kind, &raw) {
                prop_assert!(
                    clean.chars().any(|c| !c.is_whitespace() && !is_invisible(c) && !is_combining_mark(c)),
                    "{clean:?}"
                );
                prop_assert!(longest_mark_run(&clean) <= MAX_MARKS_IN_A_ROW);
            }
        }
    }

    #[test]
    fn only_invisible_characters_are_empty(chars in prop::collection::vec(invisible(), 1..40)) {
        let raw: String = chars.into_iter().collect();
        for kind in KINDS {
            prop_assert_eq!(text::clean(kind, &raw), Err(TextError::Empty), "{:?}", raw);
        }
    }

    #[test]
    fn ordinary_words_are_accepted_unchanged(words in prop::collection::vec(word(), 1..6)) {
        let raw = words.join(" ");
        for kind in KINDS {
            if raw.chars().count() <= kind.max_chars() {
                let clean = text::clean(kind, &raw);
                prop_assert_eq!(clean.as_deref(), Ok(raw.as_str()));
            }
        }
    }

    #[test]
    fn long_runs_of_marks_are_refused(base in word(), n in (MAX_MARKS_IN_A_ROW + 1)..400) {
        let raw = format!("{base}{}", "\u{0316}".repeat(n));
        for kind in KINDS {
            let refused = text::clean(kind, &raw).unwrap_err();
            prop_assert!(
                matches!(refused, TextError::TooManyMarks { .. } | TextError::TooLong { .. }),
                "{refused:?}"
            );
            prop_assert_eq!(refused.code(), if matches!(refused, TextError::TooLong { .. }) { "text_too_long" } else { "text_invalid" });
        }
    }
}
