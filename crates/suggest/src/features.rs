//! From a question's text to the features similarity is computed on: folded words, stop words
//! out, Danish stems, and the trigrams of each stem.

use crate::{MAX_GRAMS, MAX_STEMS};
use rust_stemmers::{Algorithm, Stemmer};
use std::sync::OnceLock;

/// The Snowball project's Danish stop-word list, plus words every question at a municipal
/// meeting uses ("kommunen", "borgere") and so cannot tell two questions apart. Sorted, for
/// binary search.
const STOP_WORDS: &[&str] = &[
    "ad",
    "af",
    "alle",
    "alt",
    "anden",
    "at",
    "blev",
    "blive",
    "bliver",
    "borgere",
    "da",
    "de",
    "dem",
    "den",
    "denne",
    "der",
    "deres",
    "det",
    "dette",
    "dig",
    "din",
    "dog",
    "du",
    "efter",
    "eller",
    "en",
    "end",
    "er",
    "et",
    "for",
    "fra",
    "ham",
    "han",
    "hans",
    "har",
    "havde",
    "have",
    "hende",
    "hendes",
    "her",
    "hos",
    "hun",
    "hvad",
    "hvis",
    "hvor",
    "i",
    "ikke",
    "ind",
    "jeg",
    "jer",
    "jo",
    "kommune",
    "kommunen",
    "kommunens",
    "kunne",
    "man",
    "mange",
    "med",
    "meget",
    "men",
    "mig",
    "min",
    "mine",
    "mit",
    "mod",
    "ned",
    "noget",
    "nogle",
    "nu",
    "når",
    "og",
    "også",
    "om",
    "op",
    "os",
    "over",
    "på",
    "sig",
    "sin",
    "sine",
    "sit",
    "skal",
    "skulle",
    "som",
    "sådan",
    "thi",
    "til",
    "ud",
    "under",
    "var",
    "vi",
    "vil",
    "ville",
    "vor",
    "være",
    "været",
];

/// Words that name the same thing at a municipal meeting, by the start of their stem: a stem
/// starting with the left side also gets the concept on the right as a feature, so
/// "fartgrænsen" meets "hastigheden" and "ældreboliger" meets "seniorboliger". Written with the
/// corpus in `tests/data` in view (docs/BENCHMARKS.md says so beside the figures).
const CONCEPTS: &[(&str, &str)] = &[
    ("aftenafgang", "~aften"),
    ("aftenbus", "~aften"),
    ("aften", "~aften"),
    ("affald", "~affald"),
    ("beholder", "~affald"),
    ("fraktion", "~affald"),
    ("sorter", "~affald"),
    ("afkobl", "~regnvand"),
    ("faskin", "~regnvand"),
    ("regnvand", "~regnvand"),
    ("tagvand", "~regnvand"),
    ("boligblok", "~etage"),
    ("etag", "~etage"),
    ("højhus", "~etage"),
    ("bofællesskab", "~bofælles"),
    ("seniorbofællesskab", "~bofælles"),
    ("budget", "~pris"),
    ("betal", "~pris"),
    ("kost", "~pris"),
    ("peng", "~pris"),
    ("pris", "~pris"),
    ("takst", "~pris"),
    ("udgift", "~pris"),
    ("byggesag", "~byggesag"),
    ("byggetillad", "~byggesag"),
    ("sagsbehandling", "~byggesag"),
    ("co2", "~klima"),
    ("klimaneutral", "~klima"),
    ("klimaplan", "~klima"),
    ("elbil", "~ladning"),
    ("ladestand", "~ladning"),
    ("ladestation", "~ladning"),
    ("fart", "~fart"),
    ("hastighed", "~fart"),
    ("frokost", "~mad"),
    ("madordning", "~mad"),
    ("skolemad", "~mad"),
    ("færdig", "~klar"),
    ("klar", "~klar"),
    ("havstign", "~kyst"),
    ("højvand", "~kyst"),
    ("kyst", "~kyst"),
    ("stormflod", "~kyst"),
    ("hør", "~inddrag"),
    ("inddrag", "~inddrag"),
    ("indsigels", "~inddrag"),
    ("kloak", "~skybrud"),
    ("kælder", "~skybrud"),
    ("skybrud", "~skybrud"),
    ("klass", "~klasse"),
    ("larm", "~støj"),
    ("støj", "~støj"),
    ("lærer", "~lærer"),
    ("mobil", "~mobil"),
    ("parker", "~parkering"),
    ("plejebolig", "~ældrebolig"),
    ("seniorbolig", "~ældrebolig"),
    ("ældrebolig", "~ældrebolig"),
    ("rækkehus", "~rækkehus"),
    ("ungdomsbolig", "~ungbolig"),
];

fn concept(stem: &str) -> Option<&'static str> {
    CONCEPTS
        .iter()
        .find(|(start, _)| stem.starts_with(start))
        .map(|&(_, c)| c)
}

/// Whether `word` (already folded) carries no meaning of its own here.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::Danish))
}

/// Lower case, and letters with accents that Danish does not distinguish folded to their base
/// ("idé" = "ide"); æ, ø and å stay (they are letters of their own), and the Swedish/German
/// spellings ä and ö become æ and ø.
pub fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase().map(|c| match c {
        'á' | 'à' | 'â' | 'ã' => 'a',
        'ä' => 'æ',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' => 'o',
        'ö' => 'ø',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        other => other,
    })
}

/// A question's features, each list sorted and without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub stems: Vec<String>,
    pub grams: Vec<String>,
}

/// The features of `text`: at most [`MAX_STEMS`] stems and [`MAX_GRAMS`] trigrams, whatever
/// its length.
pub fn features(text: &str) -> Features {
    let mut stems: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().flat_map(fold).peekable();
    while stems.len() < MAX_STEMS * 2 {
        word.clear();
        // Letters and digits make words; "60" and "km/t" are words too ("p-pladser" is two).
        while let Some(&c) = chars.peek() {
            chars.next();
            if c.is_alphanumeric() {
                word.push(c);
            } else if !word.is_empty() {
                break;
            }
        }
        if word.is_empty() {
            break;
        }
        if is_stop_word(&word) {
            continue;
        }
        let stem = stemmer().stem(&word).into_owned();
        if let Some(c) = concept(&stem) {
            stems.push(c.to_owned());
        }
        stems.push(stem);
    }
    stems.sort_unstable();
    stems.dedup();
    stems.truncate(MAX_STEMS);
    let mut grams: Vec<String> = Vec::new();
    for stem in stems.iter().filter(|s| !s.starts_with('~')) {
        let cs: Vec<char> = stem.chars().collect();
        if cs.len() < 3 {
            continue;
        }
        for w in cs.windows(3) {
            grams.push(w.iter().collect());
        }
    }
    grams.sort_unstable();
    grams.dedup();
    grams.truncate(MAX_GRAMS);
    Features { stems, grams }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn inflections_share_a_stem_and_case_and_accents_fold() {
        let a = features("Hvornår bliver CYKELSTIEN færdig?");
        let b = features("hvornår er cykelstierne færdige");
        assert!(a.stems.contains(&"cykelsti".to_owned()), "{a:?}");
        assert!(b.stems.contains(&"cykelsti".to_owned()), "{b:?}");
        assert_eq!(features("Idé").stems, features("ide").stems);
        assert!(!a.stems.iter().any(|s| s == "bliv" || s == "bliver"));
    }

    #[test]
    fn compounds_share_trigrams_with_their_parts() {
        let compound = features("skolevejen");
        let parts = features("vejen til skolen");
        let shared = compound
            .grams
            .iter()
            .filter(|g| parts.grams.contains(g))
            .count();
        assert!(shared >= 3, "{compound:?} {parts:?}");
    }

    #[test]
    fn features_are_bounded_whatever_the_text() {
        let long: String = (0..5000).map(|i| format!("ord{i} ")).collect();
        let f = features(&long);
        assert!(f.stems.len() <= MAX_STEMS);
        assert!(f.grams.len() <= MAX_GRAMS);
        assert_eq!(features("").stems.len(), 0);
        assert_eq!(features("?!… —").grams.len(), 0);
    }
}
