//! Quality and cost of the suggestions on a realistic meeting: `tests/data/questions.tsv` holds
//! 218 Danish questions from a borgermøde (traffic, schools, climate adaptation, housing) with
//! their duplicate groups marked by hand.
//!
//! The questions arrive in a fixed shuffled order; each is added to the index and asks for
//! suggestions among the ones before it, as in a live meeting.
//! - precision: of all suggestions shown, the share that are in the question's group;
//! - recall: of the questions that have an earlier duplicate, the share that get at least one
//!   of them suggested (what the moderator needs to merge in one click).
//!
//! `cargo test -p townhall-suggest --test corpus -- --nocapture` prints the figures
//! (docs/BENCHMARKS.md).

use std::time::Instant;
use townhall_suggest::{Config, Cost, Index};

struct Question {
    group: Option<String>,
    text: String,
}

fn corpus() -> Vec<Question> {
    let data = include_str!("data/questions.tsv");
    data.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (group, text) = l.split_once('\t').expect("GROUP<TAB>TEXT");
            Question {
                group: (group != "-").then(|| group.to_owned()),
                text: text.to_owned(),
            }
        })
        .collect()
}

/// A fixed arrival order (xorshift, Fisher–Yates), so the figures are reproducible.
fn shuffled<T>(mut v: Vec<T>, mut seed: u64) -> Vec<T> {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

#[derive(Debug, Default)]
struct Figures {
    shown: usize,
    correct: usize,
    with_earlier_duplicate: usize,
    found: usize,
}

impl Figures {
    fn precision(&self) -> f64 {
        self.correct as f64 / self.shown.max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.found as f64 / self.with_earlier_duplicate.max(1) as f64
    }
}

fn evaluate(config: Config, order: &[Question]) -> Figures {
    let mut ix = Index::new(config);
    let mut f = Figures::default();
    for (i, q) in order.iter().enumerate() {
        let id = i as u64;
        ix.insert(id, &q.text);
        let same = |d: u64| q.group.is_some() && order[d as usize].group == q.group;
        let (suggestions, _) = ix.suggest(id);
        f.shown += suggestions.len();
        let correct = suggestions.iter().filter(|s| same(s.id)).count();
        f.correct += correct;
        if (0..id).any(same) {
            f.with_earlier_duplicate += 1;
            f.found += usize::from(correct > 0);
        }
    }
    f
}

#[test]
fn suggestions_on_the_meeting_corpus_are_precise_and_find_most_duplicates() {
    let questions = corpus();
    assert!(questions.len() >= 200, "the corpus has {}", questions.len());
    let groups: std::collections::BTreeSet<_> =
        questions.iter().filter_map(|q| q.group.clone()).collect();
    let order = shuffled(questions, 0x7a11_2026);
    println!(
        "corpus: {} questions, {} duplicate groups",
        order.len(),
        groups.len()
    );
    for threshold in [0.30, 0.35, 0.40, 0.45, 0.50, 0.55] {
        let f = evaluate(
            Config {
                threshold,
                ..Config::default()
            },
            &order,
        );
        println!(
            "threshold {threshold:.2}: precision {:.3} ({}/{}), recall {:.3} ({}/{})",
            f.precision(),
            f.correct,
            f.shown,
            f.recall(),
            f.found,
            f.with_earlier_duplicate
        );
    }
    // Other arrival orders give about the same figures.
    for seed in [1u64, 2, 3] {
        let f = evaluate(Config::default(), &shuffled(corpus(), seed));
        println!(
            "default, order {seed}: precision {:.3}, recall {:.3}",
            f.precision(),
            f.recall()
        );
        assert!(f.precision() >= 0.62 && f.recall() >= 0.5, "{f:?}");
    }
    let f = evaluate(Config::default(), &order);
    // Regression floors at the figures measured (docs/BENCHMARKS.md); the aim,
    // precision 0.8 at recall 0.7, is not reached yet.
    assert!(
        f.precision() >= 0.64,
        "precision {:.3}: {f:?}",
        f.precision()
    );
    assert!(f.recall() >= 0.57, "recall {:.3}: {f:?}", f.recall());
}

#[test]
fn cost_per_question_is_bounded_at_a_thousand_questions() {
    let base = corpus();
    // 1,000 questions: the corpus, then new ones made of two corpus questions' halves, so the
    // vocabulary and the overlaps look like a large meeting's.
    let mut texts: Vec<String> = base.iter().map(|q| q.text.clone()).collect();
    let n = base.len();
    let mut i = 0;
    while texts.len() < 1000 {
        let a: Vec<&str> = base[i % n].text.split(' ').collect();
        let b: Vec<&str> = base[(i * 7 + 3) % n].text.split(' ').collect();
        texts.push(format!(
            "{} {}",
            a[..a.len() / 2].join(" "),
            b[b.len() / 2..].join(" ")
        ));
        i += 1;
    }
    let config = Config::default();
    let mut ix = Index::new(config);
    for (id, t) in texts.iter().enumerate().take(900) {
        ix.insert(id as u64, t);
    }
    let mut worst = Cost::default();
    let started = Instant::now();
    for (id, t) in texts.iter().enumerate().skip(900) {
        ix.insert(id as u64, t);
        let (_, cost) = ix.suggest(id as u64);
        worst.postings = worst.postings.max(cost.postings);
        worst.scored = worst.scored.max(cost.scored);
    }
    let per_question = started.elapsed() / 100;
    println!(
        "1,000 questions: {per_question:?} per question (insert + suggest; this build), worst \
         {} postings visited, {} candidates scored",
        worst.postings, worst.scored
    );
    assert_eq!(ix.len(), 1000);
    assert!(worst.scored <= config.max_candidates);
    let features = townhall_suggest::MAX_STEMS + townhall_suggest::MAX_GRAMS;
    assert!(worst.postings <= features * config.max_posting);
}
