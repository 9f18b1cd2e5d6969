//! The meeting's rules, one module per subject. Each module holds its commands (with their
//! [`Rule`](crate::command::Rule): who may issue them, what they decide) and its events (with
//! their [`Change`](crate::event::Change): how they fold into the state, who hears of them), so
//! everything about one command is read and changed in one place.

pub(crate) mod comments;
pub(crate) mod lifecycle;
pub(crate) mod participants;
pub(crate) mod polls;
pub(crate) mod questions;
pub(crate) mod record;
pub(crate) mod schedule;
pub(crate) mod settings;
pub(crate) mod votes;
