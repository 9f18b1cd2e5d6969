//! The pure domain of townhall: one meeting as a state machine.
//!
//! A [`Meeting`] is the fold of its event log. [`Meeting::decide`] checks a [`Command`] from an
//! [`Actor`] against the current state and returns the [`Event`]s it causes, or a [`Rejection`]
//! with a stable code; [`Meeting::apply`] folds one event into the state. Replaying the same log
//! always gives the same state. [`fanout`] turns an applied event into the wire updates each
//! audience may see, and [`wire`] holds the JSON protocol types shared with every client.
//!
//! Everything about one command lives in the module of its subject under `rules/`: the command
//! and its rule (who may issue it, what it decides), and the events it causes with their fold
//! into the state and their audiences. [`command`] and [`event`] only list them.
//!
//! Deliberately absent: I/O, async, clocks and randomness. Time (`now`) and ids come in as
//! arguments, so everything here is deterministic and tested with plain unit and property tests.

#![forbid(unsafe_code)]

pub mod client;
pub mod command;
mod decide;
pub mod event;
pub mod fanout;
mod ids;
mod meeting;
mod rejection;
mod rules;
pub mod text;
pub mod view;
pub mod wire;

pub use command::{Command, Permission, Phase};
pub use event::{Event, EventKind, Recorded};
pub use ids::{
    Actor, CommentId, InvalidId, MeetingId, Offset, ParticipantId, PollId, QuestionId, Role,
    Timestamp,
};
pub use meeting::{
    Comment, Limits, Meeting, MeetingStatus, Participant, Poll, Question, QuestionStatus,
};
pub use rejection::Rejection;
pub use rules::record::Publication;
pub use rules::schedule::{MAX_AGENDA_ITEMS, Schedule};
