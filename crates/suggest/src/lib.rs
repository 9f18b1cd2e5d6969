//! Merge suggestions: which questions of a meeting probably ask the same thing as a new one.
//!
//! [`Index`] holds the questions a new one could be merged into (the hub keeps the pending,
//! approved, queued and on-air ones in it) and answers [`Index::suggest`] with the most similar
//! ones above a threshold. Similarity is Danish-aware ([`features`]): text is folded (case,
//! accents), split into words, stop words are dropped, the rest stemmed with the Snowball
//! Danish stemmer, and each stem also gives its character trigrams, so compounds
//! ("skolevejen" / "vejen til skolen") and typos still share features. Two questions score the
//! cosine of their IDF-weighted stem sets and of their trigram sets, mixed.
//!
//! Cost is bounded per question whatever the meeting's size: a question yields at most
//! [`MAX_STEMS`] stems and [`MAX_GRAMS`] trigrams, candidates are found through an inverted
//! index that skips features too common to tell questions apart ([`Config::max_posting`]), and
//! only the [`Config::max_candidates`] best candidates are scored exactly.
//!
//! Deliberately absent: I/O, clocks, threads, and any knowledge of meetings, events or the wire.
//! Suggestions are advice for moderators; nothing here decides anything.

#![forbid(unsafe_code)]

mod features;
mod index;

pub use features::{Features, features, fold, is_stop_word};
pub use index::{Config, Cost, Index, Suggestion};

/// At most this many stems per question (a 500-character question has about 80 words).
pub const MAX_STEMS: usize = 64;
/// At most this many distinct trigrams per question.
pub const MAX_GRAMS: usize = 256;
