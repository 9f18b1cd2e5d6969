//! The index of one meeting's questions and the scoring of suggestions.

use crate::features::{Features, features};
use std::collections::HashMap;

/// Tuning, with the defaults measured on the corpus in `tests/data` (docs/BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Suggest questions scoring at least this (0–1).
    pub threshold: f32,
    /// Weight of the stem cosine; the trigram cosine gets the rest.
    pub stem_weight: f32,
    /// Suggest only questions scoring at least this share of the best one's score.
    pub relative: f32,
    /// At most this many suggestions per question.
    pub max_suggestions: usize,
    /// At most this many candidates are scored exactly.
    pub max_candidates: usize,
    /// Features held by more questions than this are not used to find candidates (they still
    /// count in the score): it bounds the work per question in a large meeting.
    pub max_posting: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 0.35,
            stem_weight: 0.6,
            relative: 0.85,
            max_suggestions: 3,
            max_candidates: 32,
            max_posting: 256,
        }
    }
}

/// A question that probably asks the same thing, with its score (0–1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    pub id: u64,
    pub score: f32,
}

/// The work one [`Index::suggest`] did, to show that it is bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Posting-list entries visited to find candidates.
    pub postings: usize,
    /// Candidates scored exactly.
    pub scored: usize,
}

/// Features as ids into the index's vocabulary, each list sorted.
#[derive(Clone, Debug, Default)]
struct Doc {
    stems: Vec<u32>,
    grams: Vec<u32>,
}

/// The questions a new one could be merged into, by their features.
#[derive(Clone, Debug, Default)]
pub struct Index {
    config: Config,
    vocabulary: HashMap<String, u32>,
    /// Per feature id: the questions that have it.
    postings: Vec<Vec<u64>>,
    docs: HashMap<u64, Doc>,
}

impl Index {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.docs.contains_key(&id)
    }

    fn intern(&mut self, feature: &str) -> u32 {
        if let Some(&id) = self.vocabulary.get(feature) {
            return id;
        }
        let id = self.postings.len() as u32;
        self.vocabulary.insert(feature.to_owned(), id);
        self.postings.push(Vec::new());
        id
    }

    /// Adds (or replaces) question `id` with `text`.
    pub fn insert(&mut self, id: u64, text: &str) {
        self.remove(id);
        let Features { stems, grams } = features(text);
        // Stems and trigrams live in one vocabulary; a prefix keeps "sko" the stem apart from
        // "sko" the trigram.
        let mut intern = |prefix: char, list: Vec<String>| -> Vec<u32> {
            let mut ids: Vec<u32> = list
                .into_iter()
                .map(|f| self.intern(&format!("{prefix}{f}")))
                .collect();
            ids.sort_unstable();
            ids
        };
        let doc = Doc {
            stems: intern('s', stems),
            grams: intern('g', grams),
        };
        for &f in doc.stems.iter().chain(&doc.grams) {
            self.postings[f as usize].push(id);
        }
        self.docs.insert(id, doc);
    }

    /// Takes question `id` out (it was rejected, merged or answered).
    pub fn remove(&mut self, id: u64) {
        if let Some(doc) = self.docs.remove(&id) {
            for &f in doc.stems.iter().chain(&doc.grams) {
                self.postings[f as usize].retain(|&d| d != id);
            }
        }
    }

    /// Inverse document frequency of a feature, from how many questions hold it now.
    fn idf(&self, f: u32) -> f32 {
        let df = self.postings[f as usize].len().max(1) as f32;
        (1.0 + self.docs.len() as f32 / df).ln()
    }

    /// The questions most similar to question `id` (which must be in the index), best first,
    /// at most [`Config::max_suggestions`], each scoring at least [`Config::threshold`].
    pub fn suggest(&self, id: u64) -> (Vec<Suggestion>, Cost) {
        let mut cost = Cost::default();
        let Some(query) = self.docs.get(&id) else {
            return (Vec::new(), cost);
        };
        let c = &self.config;
        // Candidates: questions sharing a feature, ranked by the IDF mass they share.
        let mut shared: HashMap<u64, f32> = HashMap::new();
        for (list, weight) in [
            (&query.stems, c.stem_weight),
            (&query.grams, 1.0 - c.stem_weight),
        ] {
            for &f in list {
                let posting = &self.postings[f as usize];
                if posting.len() > c.max_posting {
                    continue;
                }
                let w = weight * self.idf(f);
                cost.postings += posting.len();
                for &d in posting {
                    if d != id {
                        *shared.entry(d).or_default() += w;
                    }
                }
            }
        }
        let mut candidates: Vec<(u64, f32)> = shared.into_iter().collect();
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(c.max_candidates);
        let mut out: Vec<Suggestion> = candidates
            .into_iter()
            .filter_map(|(d, _)| {
                cost.scored += 1;
                let score = self.score(query, &self.docs[&d]);
                (score >= c.threshold).then_some(Suggestion { id: d, score })
            })
            .collect();
        out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        // Far below the best one, a candidate is more likely a neighbour in subject than the
        // same question.
        if let Some(best) = out.first().map(|s| s.score) {
            out.retain(|s| s.score >= best * c.relative);
        }
        out.truncate(c.max_suggestions);
        (out, cost)
    }

    /// The mix of the IDF-weighted cosines of both feature sets.
    fn score(&self, a: &Doc, b: &Doc) -> f32 {
        let w = self.config.stem_weight;
        w * self.cosine(&a.stems, &b.stems) + (1.0 - w) * self.cosine(&a.grams, &b.grams)
    }

    /// Cosine of two sorted feature sets, each feature weighted by its IDF.
    fn cosine(&self, a: &[u32], b: &[u32]) -> f32 {
        let norm = |v: &[u32]| v.iter().map(|&f| self.idf(f).powi(2)).sum::<f32>();
        let (na, nb) = (norm(a), norm(b));
        if na == 0.0 || nb == 0.0 {
            return 0.0;
        }
        let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += self.idf(a[i]).powi(2);
                    i += 1;
                    j += 1;
                }
            }
        }
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str]) -> Index {
        let mut ix = Index::new(Config::default());
        for (i, t) in texts.iter().enumerate() {
            ix.insert(i as u64 + 1, t);
        }
        ix
    }

    #[test]
    fn the_same_question_in_other_words_is_suggested() {
        let ix = index(&[
            "Hvornår bliver cykelstien langs Usserød Kongevej færdig?",
            "Hvad skal den gamle skolegrund bruges til?",
            "Hvor mange ældreboliger bygger I?",
            "Hvorfor stiger prisen på SFO?",
            "Hvornår kommer der kystsikring ved Rungsted Havn?",
            "Hvornår er cykelstien på Usserød Kongevej klar?",
        ]);
        let (s, _) = ix.suggest(6);
        assert_eq!(s.first().map(|s| s.id), Some(1), "{s:?}");
        assert!(s.iter().all(|s| s.id != 2));
    }

    #[test]
    fn removed_questions_are_not_suggested() {
        let mut ix = index(&[
            "Hvornår åbner svømmehallen?",
            "Hvornår åbner svømmehallen igen?",
        ]);
        assert_eq!(ix.suggest(2).0.len(), 1);
        ix.remove(1);
        assert!(ix.suggest(2).0.is_empty());
        assert!(
            ix.suggest(1).0.is_empty(),
            "an unknown question has no suggestions"
        );
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn a_question_is_never_its_own_suggestion() {
        let ix = index(&["Hvornår åbner svømmehallen?"]);
        assert!(ix.suggest(1).0.is_empty());
    }
}
