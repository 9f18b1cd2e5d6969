//! The meeting's log and participants are bounded whatever clients send (issue 8, row 6):
//! vote toggling, events and participants per meeting have caps with stable codes, staff can
//! still moderate and end a full meeting, and the state stays the fold of the log.

mod common;

use common::*;
use townhall_core::command::{EndMeeting, PostComment, RetractUpvote, SetName, Upvote};
use townhall_core::{Command, Limits, Meeting, Rejection};

fn upvote(q: townhall_core::QuestionId) -> Command {
    Command::Upvote(Upvote { question: q })
}

fn retract(q: townhall_core::QuestionId) -> Command {
    Command::RetractUpvote(RetractUpvote { question: q })
}

/// Row 6: upvote/retract toggling added 1,001 events in 20 s. Now one participant casts at
/// most `max_votes_per_question` upvotes on a question, so toggling adds at most twice that
/// many events; the vote they have stays, and others vote as before.
#[test]
fn vote_toggling_adds_a_bounded_number_of_events() {
    let mut h = Harness::live();
    let q = h.ask_approved(&citizen("anna"), "Hvornår åbner skolen?");
    let bo = citizen("bo");
    let start = h.meeting.offset;
    let max = h.meeting.limits.max_votes_per_question;
    let mut refused = None;
    for _ in 0..1000 {
        if let Err(r) = h.act(&bo, upvote(q)) {
            refused = Some(r);
            break;
        }
        h.ok(&bo, retract(q));
    }
    assert_eq!(refused, Some(Rejection::VoteLimit { max }));
    assert_eq!(Rejection::VoteLimit { max }.code(), "vote_limit");
    assert_eq!(h.meeting.offset - start, 2 * u64::from(max));
    assert_eq!(h.question(q).votes(), 0);
    // Others are unaffected; a vote that stands can still be retracted once more.
    h.ok(&citizen("carl"), upvote(q));
    assert_eq!(h.question(q).votes(), 1);
    // The limit is part of the fold: replaying the log refuses the same.
    let replayed = Meeting::replay(h.meeting.id.clone(), &h.log);
    assert_eq!(replayed, h.meeting);
    assert_eq!(
        replayed.decide(&bo, &upvote(q), h.now),
        Err(Rejection::VoteLimit { max })
    );
}

#[test]
fn a_full_log_refuses_citizens_but_staff_can_still_end_the_meeting() {
    let mut h = Harness::live();
    h.meeting.limits.max_events = h.meeting.offset + 3;
    let anna = citizen("anna");
    for i in 0..3 {
        h.ok(
            &anna,
            Command::PostComment(PostComment {
                text: format!("Kommentar {i}"),
            }),
        );
    }
    let max = h.meeting.limits.max_events;
    assert_eq!(
        h.err(
            &citizen("bo"),
            Command::PostComment(PostComment { text: "Nej".into() })
        ),
        Rejection::TooManyEvents { max }
    );
    assert_eq!(Rejection::TooManyEvents { max }.code(), "too_many_events");
    h.ok(
        &moderator(),
        Command::PostComment(PostComment {
            text: "Vi lukker snart".into(),
        }),
    );
    h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    // Staff have a reserve, not an unbounded log.
    let mut h = Harness::live();
    h.meeting.limits.max_events = 0;
    h.meeting.offset = Limits::STAFF_RESERVE;
    assert_eq!(
        h.meeting.decide(
            &moderator(),
            &Command::PostComment(PostComment { text: "x".into() }),
            h.now
        ),
        Err(Rejection::TooManyEvents { max: 0 })
    );
}

#[test]
fn new_participants_are_refused_past_the_cap_and_known_ones_go_on() {
    let mut h = Harness::live();
    // The organizer who created and started it is the first actor.
    let already = h.meeting.actors.len();
    h.meeting.limits.max_participants = already + 2;
    let name = |n: &str| Command::SetName(SetName { name: n.into() });
    h.ok(&citizen("anna"), name("Anna"));
    h.ok(&citizen("bo"), name("Bo"));
    let max = h.meeting.limits.max_participants;
    assert_eq!(
        h.err(&citizen("carl"), name("Carl")),
        Rejection::TooManyParticipants { max }
    );
    assert_eq!(
        Rejection::TooManyParticipants { max }.code(),
        "too_many_participants"
    );
    // Those already in the meeting go on; staff are never counted out.
    h.ok(&citizen("anna"), name("Anna B."));
    h.ok(&moderator(), name("Ordstyrer"));
    let replayed = Meeting::replay(h.meeting.id.clone(), &h.log);
    assert_eq!(replayed.actors, h.meeting.actors);
}
