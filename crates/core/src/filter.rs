//! The word filter: a question or comment containing one of the meeting's filter words is held
//! for a moderator (questions are pending anyway and get the word shown beside them; comments
//! are not published until a moderator releases them).
//!
//! Matching sees through the usual disguises: case, accents, leetspeak digits and signs
//! ("1d10t", "$hit"), repeated letters ("fuuuck"), and letters spaced or dotted out
//! ("f u c k", "l.o.r.t"). Words of five letters or more also match inside compounds
//! ("lortesnak", "kommunalidiot"); shorter ones only as whole words, so "pis" does not catch
//! "pistol". Entries of several words match as a phrase.

/// Filter words when the organizer has not set a list: Danish, then English.
pub const DEFAULT_WORDS: &[&str] = &[
    // Danish
    "bøsserøv",
    "fisse",
    "fuck",
    "hold kæft",
    "idiot",
    "klaphat",
    "kælling",
    "lort",
    "luder",
    "nazisvin",
    "perker",
    "pik",
    "pikhoved",
    "pis",
    "røvhul",
    "spasser",
    "svin",
    "vatpik",
    // English
    "asshole",
    "bastard",
    "bitch",
    "bullshit",
    "cunt",
    "dickhead",
    "moron",
    "motherfucker",
    "retard",
    "shit",
    "slut",
    "whore",
];

/// At most this many words in a meeting's list, each at most [`MAX_WORD_CHARS`] characters.
pub const MAX_WORDS: usize = 500;
pub const MAX_WORD_CHARS: usize = 40;

/// Shortest word that also matches inside a longer word.
const MIN_INSIDE: usize = 5;

/// One character as the matcher sees it: lower case, accents and Danish letters folded to
/// plain letters, leetspeak signs to the letters they stand for; anything else is a separator.
fn fold(c: char) -> Option<char> {
    let c = c.to_lowercase().next().unwrap_or(c);
    Some(match c {
        'a'..='z' => c,
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'æ' | '4' | '@' => 'a',
        'é' | 'è' | 'ê' | 'ë' | '3' | '€' => 'e',
        'í' | 'ì' | 'î' | 'ï' | '1' | '!' | '|' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | '0' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        c if c.is_alphabetic() => c,
        _ => return None,
    })
}

/// The words of `text` as the matcher compares them: folded, repeated letters collapsed, and
/// runs of single letters ("f u c k") joined into one word.
fn words(text: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match fold(c) {
            Some(c) => {
                if !word.ends_with(c) {
                    word.push(c);
                }
            }
            None if !word.is_empty() => raw.push(std::mem::take(&mut word)),
            None => {}
        }
    }
    if !word.is_empty() {
        raw.push(word);
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    let mut letters = String::new();
    for w in raw {
        if w.chars().count() == 1 {
            letters.push_str(&w);
            continue;
        }
        if !letters.is_empty() {
            out.push(collapse(&std::mem::take(&mut letters)));
        }
        out.push(w);
    }
    if !letters.is_empty() {
        out.push(collapse(&letters));
    }
    out
}

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// The first of `list` that `text` contains, as written in the list.
pub fn matched_word<'a>(list: impl IntoIterator<Item = &'a str>, text: &str) -> Option<&'a str> {
    let tokens = words(text);
    if tokens.is_empty() {
        return None;
    }
    let phrase = format!(" {} ", tokens.join(" "));
    list.into_iter().find(|entry| {
        let parts = words(entry);
        match parts.as_slice() {
            [] => false,
            [w] if w.chars().count() >= MIN_INSIDE => tokens.iter().any(|t| t.contains(w.as_str())),
            [w] => tokens.iter().any(|t| t == w),
            _ => phrase.contains(&format!(" {} ", parts.join(" "))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Option<&'static str> {
        matched_word(DEFAULT_WORDS.iter().copied(), text)
    }

    #[test]
    fn obfuscated_words_are_caught() {
        for (text, word) in [
            ("Du er en IDIOT", "idiot"),
            ("du er en 1d10t", "idiot"),
            ("sikke noget l0rt", "lort"),
            ("fuuuuck jer", "fuck"),
            ("f u c k jer", "fuck"),
            ("f.u.c.k jer", "fuck"),
            ("$h1t happens", "shit"),
            ("k4lling", "kælling"),
            ("kællling", "kælling"),
            ("HOLD   KÆFT nu", "hold kæft"),
            ("hold-kæft", "hold kæft"),
            ("din kommunalidiot", "idiot"),
            ("what a m0r0n", "moron"),
            ("r ø v h u l", "røvhul"),
        ] {
            assert_eq!(hit(text), Some(word), "{text}");
        }
    }

    #[test]
    fn ordinary_questions_pass() {
        for text in [
            "Hvornår bliver cykelstien langs Usserød Kongevej færdig?",
            "Kommer der en pistol-skydebane i idrætsparken?",
            "Hvad koster 390R-bussen?",
            "Er der svinghuller i vejen?",
            "Hvor mange piske-fløder? Spis dit brød",
            "Skal taberne af udbuddet have erstatning?",
        ] {
            assert_eq!(hit(text), None, "{text}");
        }
    }

    #[test]
    fn a_meetings_own_list_replaces_the_defaults() {
        let own = ["skatteyder", "møgkommune"];
        assert_eq!(matched_word(own, "Den MØG-kommune"), None, "two words");
        assert_eq!(matched_word(own, "Den møgkommune!"), Some("møgkommune"));
        assert_eq!(matched_word(own, "du er en idiot"), None);
    }
}
