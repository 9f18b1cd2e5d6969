//! Example-based tests of the meeting state machine: one scenario per rule.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use townhall_core::command::{
    AnswerPoll, ApproveQuestion, ApproveQuestions, AskQuestion, BanParticipant, ClaimQuestion,
    ClosePoll, CreateMeeting, EndMeeting, HideComment, MarkAnswered, MergeQuestion,
    MuteParticipant, OpenPoll, PinAnnouncement, PostComment, PublishRecord, PutOnAir,
    QueueQuestion, RejectQuestion, RejectQuestions, ReleaseQuestion, RetractUpvote,
    ScheduleMeeting, SetChatOpen, SetName, SetQaOpen, SetSlowMode, SetWordFilter, StartMeeting,
    UnbanParticipant, UnhideComment, UnmuteParticipant, UnqueueQuestion, Upvote,
};
use townhall_core::event::{
    AnnouncementPinned, ChatClosed, ChatOpened, CommentHidden, CommentPosted, CommentUnhidden,
    MeetingCreated, MeetingEnded, MeetingScheduled, MeetingStarted, ParticipantBanned,
    ParticipantMuted, ParticipantRenamed, ParticipantUnbanned, ParticipantUnmuted, PollOpened,
    QaClosed, QaOpened, QuestionAnswered, QuestionApproved, QuestionAsked, QuestionClaimed,
    QuestionEnded, QuestionMerged, QuestionOnAir, QuestionQueued, QuestionRejected,
    QuestionReleased, QuestionUnqueued, SlowModeSet, VoteCast, VoteRetracted, WordFilterSet,
};
use townhall_core::fanout::{self, Update};
use townhall_core::text::{TextError, TextKind};
use townhall_core::view::Viewer;
use townhall_core::view::{
    CommentView, MeetingView, ParticipantView, Perspective, QuestionView, Snapshot, YouView,
};
use townhall_core::wire::{ClientMessage, EventFrame, PROTOCOL_VERSION, ServerMessage, Voted};
use townhall_core::{
    Command, CommentId, Event, EventKind, MeetingStatus, PollId, QuestionId, QuestionStatus,
    Recorded, Rejection, Role, Timestamp,
};

fn kinds(recs: &[Recorded]) -> Vec<EventKind> {
    recs.iter().map(|r| r.event.kind.clone()).collect()
}

/// The event frames of `rec` that reach `viewer`.
fn frames_to(h: &Harness, rec: &Recorded, viewer: &Viewer) -> Vec<EventFrame> {
    fanout::updates(&h.meeting, rec)
        .into_iter()
        .filter_map(|u| match u {
            Update::Send(aud, ServerMessage::Event(e)) if aud.includes(viewer) => Some(*e),
            _ => None,
        })
        .collect()
}

fn question_in(s: &Snapshot, id: QuestionId) -> Option<&QuestionView> {
    s.questions.iter().find(|q| q.id == id)
}

// ---------------------------------------------------------------------------------------------
// Meeting lifecycle

#[test]
fn create_makes_the_meeting_scheduled() {
    let mut h = Harness::new();
    assert_eq!(h.meeting.status, MeetingStatus::Draft);
    assert_eq!(
        h.code(
            &citizen("anna"),
            Command::AskQuestion(AskQuestion {
                text: "Hej?".into(),
                anonymous: false
            })
        ),
        "no_meeting"
    );
    assert_eq!(
        h.code(&organizer(), Command::StartMeeting(StartMeeting)),
        "no_meeting"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::CreateMeeting(CreateMeeting { title: "x".into() })
        ),
        "forbidden"
    );

    let recs = h.ok(
        &organizer(),
        Command::CreateMeeting(CreateMeeting {
            title: "  Borgermøde  ".into(),
        }),
    );
    assert_eq!(
        kinds(&recs),
        vec![EventKind::MeetingCreated(MeetingCreated {
            title: "Borgermøde".into()
        })]
    );
    assert_eq!(recs[0].offset, 1);
    assert_eq!(recs[0].event.by, organizer().participant);
    assert_eq!(h.meeting.status, MeetingStatus::Scheduled);
    assert_eq!(h.meeting.title, "Borgermøde");
    assert_eq!(h.meeting.created_at, Timestamp(T0));
    assert_eq!(h.meeting.offset, 1);

    assert_eq!(
        h.code(
            &organizer(),
            Command::CreateMeeting(CreateMeeting {
                title: "again".into()
            })
        ),
        "already_created"
    );
}

#[test]
fn start_makes_the_meeting_live_once() {
    let mut h = Harness::scheduled();
    let recs = h.ok(&organizer(), Command::StartMeeting(StartMeeting));
    assert_eq!(
        kinds(&recs),
        vec![EventKind::MeetingStarted(MeetingStarted)]
    );
    assert_eq!(h.meeting.status, MeetingStatus::Live);
    assert_eq!(
        h.code(&organizer(), Command::StartMeeting(StartMeeting)),
        "invalid_state"
    );
}

#[test]
fn end_records_the_question_on_air_as_ended_and_freezes_the_meeting() {
    let mut h = Harness::live();
    let q = h.ask_approved(&citizen("anna"), "Hvornår åbner svømmehallen?");
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q }));
    assert_eq!(h.meeting.on_air, Some(q));

    let recs = h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    assert_eq!(
        kinds(&recs),
        vec![
            EventKind::QuestionEnded(QuestionEnded { question: q }),
            EventKind::MeetingEnded(MeetingEnded)
        ]
    );
    assert_eq!(recs[0].offset + 1, recs[1].offset);
    assert_eq!(h.meeting.status, MeetingStatus::Ended);
    assert_eq!(h.status(q), QuestionStatus::Ended);
    assert_eq!(h.meeting.on_air, None);

    // Nothing more happens in an ended meeting, whoever asks.
    assert_eq!(
        h.code(&organizer(), Command::StartMeeting(StartMeeting)),
        "meeting_ended"
    );
    assert_eq!(
        h.code(&organizer(), Command::EndMeeting(EndMeeting)),
        "meeting_ended"
    );
    assert_eq!(
        h.code(&moderator(), Command::SetQaOpen(SetQaOpen { open: false })),
        "meeting_ended"
    );
    assert_eq!(
        h.code(
            &citizen("bo"),
            Command::SetName(SetName { name: "Bo".into() })
        ),
        "meeting_ended"
    );
    assert_eq!(
        h.code(
            &citizen("bo"),
            Command::AskQuestion(AskQuestion {
                text: "Og nu?".into(),
                anonymous: false
            })
        ),
        "meeting_ended"
    );
}

#[test]
fn end_without_question_on_air_only_ends() {
    let mut h = Harness::scheduled();
    let recs = h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    assert_eq!(kinds(&recs), vec![EventKind::MeetingEnded(MeetingEnded)]);
    assert_eq!(h.meeting.status, MeetingStatus::Ended);
}

#[test]
fn questions_may_be_asked_while_scheduled() {
    let mut h = Harness::scheduled();
    let q = h.ask(&citizen("anna"), "Kommer der flere p-pladser?");
    assert_eq!(h.status(q), QuestionStatus::Pending);
    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: q }),
    );
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }),
    );
    assert_eq!(h.meeting.queue, vec![q]);
    // Going on air needs a live meeting.
    assert_eq!(
        h.code(&moderator(), Command::PutOnAir(PutOnAir { question: q })),
        "not_live"
    );
    h.ok(&organizer(), Command::StartMeeting(StartMeeting));
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q }));
}

#[test]
fn comments_need_a_live_meeting() {
    let mut h = Harness::scheduled();
    assert_eq!(
        h.code(
            &citizen("anna"),
            Command::PostComment(PostComment { text: "Hej".into() })
        ),
        "not_live"
    );
    // Staff may prepare the chat before the start.
    h.ok(
        &moderator(),
        Command::PostComment(PostComment {
            text: "Velkommen!".into(),
        }),
    );
    h.ok(&organizer(), Command::StartMeeting(StartMeeting));
    h.ok(
        &citizen("anna"),
        Command::PostComment(PostComment { text: "Hej".into() }),
    );
    assert_eq!(h.meeting.comments.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Questions

#[test]
fn question_goes_from_pending_through_queue_and_air_to_answered() {
    let mut h = Harness::live();
    let anna = citizen("anna");
    let q1 = h.ask(&anna, "Første spørgsmål");
    assert_eq!(q1, QuestionId(1));
    let q = h.question(q1);
    assert_eq!(q.status, QuestionStatus::Pending);
    assert_eq!(q.author, anna.participant);
    assert!(!q.public);
    assert_eq!(h.meeting.participant(&anna.participant).unwrap().pending, 1);

    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: q1 }),
    );
    assert_eq!(h.status(q1), QuestionStatus::Approved);
    assert!(h.question(q1).public);
    assert_eq!(h.meeting.participant(&anna.participant).unwrap().pending, 0);
    assert_eq!(
        h.code(
            &moderator(),
            Command::ApproveQuestion(ApproveQuestion { question: q1 })
        ),
        "invalid_state"
    );

    let q2 = h.ask_approved(&anna, "Andet spørgsmål");
    let q3 = h.ask_approved(&anna, "Tredje spørgsmål");

    // Positions: absent means last, 0 means next, too large is clamped to last.
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q1,
            position: None,
        }),
    );
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q2,
            position: None,
        }),
    );
    let recs = h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q3,
            position: Some(0),
        }),
    );
    assert_eq!(
        kinds(&recs),
        vec![EventKind::QuestionQueued(QuestionQueued {
            question: q3,
            position: 0
        })]
    );
    assert_eq!(h.meeting.queue, vec![q3, q1, q2]);
    assert_eq!(h.status(q3), QuestionStatus::Queued);

    // Reorder.
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q2,
            position: Some(0),
        }),
    );
    assert_eq!(h.meeting.queue, vec![q2, q3, q1]);
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q2,
            position: Some(1),
        }),
    );
    assert_eq!(h.meeting.queue, vec![q3, q2, q1]);
    let recs = h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q3,
            position: Some(99),
        }),
    );
    assert_eq!(
        kinds(&recs),
        vec![EventKind::QuestionQueued(QuestionQueued {
            question: q3,
            position: 2
        })]
    );
    assert_eq!(h.meeting.queue, vec![q2, q1, q3]);

    // Unqueue.
    h.ok(
        &moderator(),
        Command::UnqueueQuestion(UnqueueQuestion { question: q3 }),
    );
    assert_eq!(h.meeting.queue, vec![q2, q1]);
    assert_eq!(h.status(q3), QuestionStatus::Approved);
    assert_eq!(
        h.code(
            &moderator(),
            Command::UnqueueQuestion(UnqueueQuestion { question: q3 })
        ),
        "invalid_state"
    );

    // On air, from the queue.
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q1 }));
    assert_eq!(h.meeting.on_air, Some(q1));
    assert_eq!(h.meeting.queue, vec![q2]);
    assert_eq!(h.status(q1), QuestionStatus::OnAir);
    assert_eq!(
        h.code(&moderator(), Command::PutOnAir(PutOnAir { question: q1 })),
        "invalid_state"
    );

    // Putting another on air answers the previous one.
    let recs = h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q2 }));
    assert_eq!(
        kinds(&recs),
        vec![
            EventKind::QuestionAnswered(QuestionAnswered { question: q1 }),
            EventKind::QuestionOnAir(QuestionOnAir { question: q2 })
        ]
    );
    assert_eq!(h.status(q1), QuestionStatus::Answered);
    assert_eq!(h.status(q2), QuestionStatus::OnAir);
    assert_eq!(h.meeting.on_air, Some(q2));
    assert!(h.meeting.queue.is_empty());

    // Answered.
    h.ok(
        &moderator(),
        Command::MarkAnswered(MarkAnswered { question: q2 }),
    );
    assert_eq!(h.status(q2), QuestionStatus::Answered);
    assert_eq!(h.meeting.on_air, None);

    // An answered question is closed for everything.
    assert_eq!(
        h.code(
            &moderator(),
            Command::MarkAnswered(MarkAnswered { question: q2 })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::ApproveQuestion(ApproveQuestion { question: q2 })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::QueueQuestion(QueueQuestion {
                question: q2,
                position: None
            })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(&moderator(), Command::PutOnAir(PutOnAir { question: q2 })),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::RejectQuestion(RejectQuestion {
                question: q2,
                reason: "x".into()
            })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(&citizen("bo"), Command::Upvote(Upvote { question: q2 })),
        "invalid_state"
    );

    // An approved question that was never queued can be answered directly, a pending one not.
    assert_eq!(
        h.code(
            &moderator(),
            Command::MarkAnswered(MarkAnswered {
                question: QuestionId(42)
            })
        ),
        "unknown_question"
    );
    h.ok(
        &moderator(),
        Command::MarkAnswered(MarkAnswered { question: q3 }),
    );
    let q4 = h.ask(&anna, "Fjerde");
    assert_eq!(
        h.code(
            &moderator(),
            Command::MarkAnswered(MarkAnswered { question: q4 })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::QueueQuestion(QueueQuestion {
                question: q4,
                position: None
            })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(&moderator(), Command::PutOnAir(PutOnAir { question: q4 })),
        "invalid_state"
    );
}

#[test]
fn rejecting_a_queued_or_on_air_question_keeps_queue_consistent() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q1 = h.ask_approved(&a, "En");
    let q2 = h.ask_approved(&a, "To");
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q1,
            position: None,
        }),
    );
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q2,
            position: None,
        }),
    );
    h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: q1,
            reason: "Gentagelse".into(),
        }),
    );
    assert_eq!(h.meeting.queue, vec![q2]);
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q2 }));
    assert_eq!(
        h.code(
            &moderator(),
            Command::RejectQuestion(RejectQuestion {
                question: q2,
                reason: "x".into()
            })
        ),
        "invalid_state"
    );
    // A rejected question can be approved again after all.
    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: q1 }),
    );
    assert_eq!(h.status(q1), QuestionStatus::Approved);
}

#[test]
fn rejection_reason_is_shown_to_author_and_staff_only() {
    let mut h = Harness::live();
    let anna = citizen("anna");
    let bo = citizen("bo");
    let pending = h.ask(&anna, "Hvorfor er vejen lukket?");
    let approved = h.ask_approved(&anna, "Hvad koster det?");

    h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: pending,
            reason: "  Uden for emnet ".into(),
        }),
    );
    assert_eq!(
        h.status(pending),
        QuestionStatus::Rejected {
            reason: "Uden for emnet".into()
        }
    );
    assert_eq!(h.meeting.participant(&anna.participant).unwrap().pending, 0);
    let recs = h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: approved,
            reason: "Besvaret".into(),
        }),
    );

    for who in [&anna, &moderator(), &speaker()] {
        let s = Snapshot::of(&h.meeting, &viewer(who));
        let p = question_in(&s, pending).unwrap();
        assert_eq!(p.status, "rejected");
        assert_eq!(p.reason.as_deref(), Some("Uden for emnet"));
        assert_eq!(
            question_in(&s, approved).unwrap().reason.as_deref(),
            Some("Besvaret")
        );
    }
    // Another citizen never saw the pending one; the approved one is shown rejected, without reason.
    let s = Snapshot::of(&h.meeting, &viewer(&bo));
    assert!(question_in(&s, pending).is_none());
    let seen = question_in(&s, approved).unwrap();
    assert_eq!(seen.status, "rejected");
    assert_eq!(seen.reason, None);

    // The same holds for the live frames.
    for who in [&anna, &bo, &moderator(), &speaker()] {
        let frames = frames_to(&h, &recs[0], &viewer(who));
        assert_eq!(frames.len(), 1, "one frame per event and session");
        let v = &frames[0].questions[0];
        assert_eq!(v.id, approved);
        assert_eq!(v.reason.is_some(), who.participant != bo.participant);
    }

    assert_eq!(
        h.code(
            &moderator(),
            Command::RejectQuestion(RejectQuestion {
                question: pending,
                reason: "igen".into()
            })
        ),
        "invalid_state"
    );
    let q = h.ask(&anna, "Ny");
    assert_eq!(
        h.code(
            &moderator(),
            Command::RejectQuestion(RejectQuestion {
                question: q,
                reason: " ".into()
            })
        ),
        "text_empty"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::RejectQuestion(RejectQuestion {
                question: q,
                reason: "r".repeat(201)
            })
        ),
        "text_too_long"
    );
}

#[test]
fn merge_carries_the_union_of_votes() {
    let mut h = Harness::live();
    let (a, b, c) = (citizen("anna"), citizen("bo"), citizen("carl"));
    let dup = h.ask_approved(&a, "Hvornår bygges broen?");
    let main = h.ask_approved(&b, "Hvornår kommer broen?");
    h.ok(&a, Command::Upvote(Upvote { question: dup }));
    h.ok(&b, Command::Upvote(Upvote { question: dup }));
    h.ok(&b, Command::Upvote(Upvote { question: main }));
    h.ok(&c, Command::Upvote(Upvote { question: main }));
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: dup,
            position: None,
        }),
    );

    let recs = h.ok(
        &moderator(),
        Command::MergeQuestion(MergeQuestion {
            question: dup,
            into: main,
        }),
    );
    assert_eq!(
        kinds(&recs),
        vec![EventKind::QuestionMerged(QuestionMerged {
            question: dup,
            into: main
        })]
    );
    assert_eq!(h.status(dup), QuestionStatus::Merged { into: main });
    assert!(h.meeting.queue.is_empty());
    let voters: BTreeSet<_> = [&a, &b, &c].iter().map(|x| x.participant.clone()).collect();
    assert_eq!(h.question(main).voters, voters);
    assert_eq!(h.question(main).votes(), 3, "a voter of both counts once");

    // Everyone who voted on the duplicate has now voted on the target.
    assert_eq!(
        h.code(&a, Command::Upvote(Upvote { question: main })),
        "already_voted"
    );
    assert_eq!(
        h.code(&b, Command::Upvote(Upvote { question: main })),
        "already_voted"
    );
    // The merged question is closed for votes.
    assert_eq!(
        h.code(&c, Command::Upvote(Upvote { question: dup })),
        "invalid_state"
    );

    // Citizens see where it went.
    let s = Snapshot::of(&h.meeting, &viewer(&c));
    assert_eq!(question_in(&s, dup).unwrap().merged_into, Some(main));
    assert_eq!(question_in(&s, dup).unwrap().status, "merged");
    assert_eq!(question_in(&s, main).unwrap().votes, 3);
    assert_eq!(Snapshot::of(&h.meeting, &viewer(&a)).voted, vec![dup, main]);
}

#[test]
fn merge_moves_votes_in_the_views_that_followed_along() {
    let mut h = Harness::live();
    let (a, b, c) = (citizen("anna"), citizen("bo"), citizen("carl"));
    let dup = h.ask_approved(&a, "Dublet");
    let main = h.ask_approved(&b, "Original");
    let mut followers: Vec<Follower> = [&a, &b, &c, &moderator(), &speaker()]
        .iter()
        .map(|x| Follower::join(&h.meeting, x))
        .collect();
    h.ok_followed(
        &a,
        Command::Upvote(Upvote { question: dup }),
        &mut followers,
    );
    h.ok_followed(
        &moderator(),
        Command::Upvote(Upvote { question: dup }),
        &mut followers,
    );
    h.ok_followed(
        &c,
        Command::Upvote(Upvote { question: main }),
        &mut followers,
    );
    h.ok_followed(
        &moderator(),
        Command::MergeQuestion(MergeQuestion {
            question: dup,
            into: main,
        }),
        &mut followers,
    );
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    assert!(
        followers[0].client.voted.contains(&main),
        "anna's vote moved along"
    );
    assert!(
        followers[3].client.voted.contains(&main),
        "the moderator's vote moved along"
    );
    assert!(!followers[1].client.voted.contains(&main));
    assert_eq!(followers[2].client.questions[&main].votes, 3);
}

#[test]
fn staff_views_learn_of_participants_who_post() {
    let mut h = Harness::live();
    let mut followers = vec![
        Follower::join(&h.meeting, &moderator()),
        Follower::join(&h.meeting, &citizen("bo")),
    ];
    h.ok_followed(
        &citizen("anna"),
        Command::AskQuestion(AskQuestion {
            text: "Hej?".into(),
            anonymous: true,
        }),
        &mut followers,
    );
    h.ok_followed(
        &citizen("carl"),
        Command::PostComment(PostComment { text: "Hej".into() }),
        &mut followers,
    );
    assert_eq!(followers[0].client.participants.len(), 2);
    assert!(followers[1].client.participants.is_empty());
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
}

#[test]
fn merge_of_a_pending_duplicate_into_a_pending_question_is_allowed() {
    let mut h = Harness::live();
    let q1 = h.ask(&citizen("anna"), "Om skolen");
    let q2 = h.ask(&citizen("bo"), "Om skolen igen");
    h.ok(
        &moderator(),
        Command::MergeQuestion(MergeQuestion {
            question: q2,
            into: q1,
        }),
    );
    assert_eq!(h.status(q2), QuestionStatus::Merged { into: q1 });
    assert_eq!(
        h.meeting
            .participant(&citizen("bo").participant)
            .unwrap()
            .pending,
        0
    );
}

#[test]
fn merge_rejects_self_merge_and_closed_targets() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q1 = h.ask_approved(&a, "En");
    let q2 = h.ask_approved(&a, "To");
    let rejected = h.ask(&a, "Tre");
    h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: rejected,
            reason: "Nej".into(),
        }),
    );
    let merged = h.ask_approved(&a, "Fire");
    h.ok(
        &moderator(),
        Command::MergeQuestion(MergeQuestion {
            question: merged,
            into: q2,
        }),
    );

    let merge = |question, into| Command::MergeQuestion(MergeQuestion { question, into });
    assert_eq!(h.err(&moderator(), merge(q1, q1)), Rejection::InvalidMerge);
    assert_eq!(h.code(&moderator(), merge(q1, rejected)), "invalid_merge");
    assert_eq!(h.code(&moderator(), merge(q1, merged)), "invalid_merge");
    assert_eq!(h.code(&moderator(), merge(rejected, q1)), "invalid_merge");
    assert_eq!(h.code(&moderator(), merge(merged, q1)), "invalid_merge");
    assert_eq!(
        h.code(&moderator(), merge(q1, QuestionId(99))),
        "unknown_question"
    );
    assert_eq!(
        h.code(&moderator(), merge(QuestionId(99), q1)),
        "unknown_question"
    );

    // A question citizens have seen cannot disappear into one they cannot see.
    let pending = h.ask(&a, "Fem");
    assert_eq!(h.code(&moderator(), merge(q1, pending)), "invalid_merge");
    // A question on air or answered can no longer be merged away.
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q1 }));
    assert_eq!(h.code(&moderator(), merge(q1, q2)), "invalid_merge");
    // But it can receive duplicates.
    h.ok(&moderator(), merge(q2, q1));
}

// ---------------------------------------------------------------------------------------------
// Votes

#[test]
fn upvote_once_per_participant_and_retract() {
    let mut h = Harness::live();
    let (a, b) = (citizen("anna"), citizen("bo"));
    let q = h.ask_approved(&a, "Spørgsmål");

    let recs = h.ok(&b, Command::Upvote(Upvote { question: q }));
    assert_eq!(
        kinds(&recs),
        vec![EventKind::VoteCast(VoteCast { question: q })]
    );
    assert_eq!(recs[0].event.by, b.participant);
    assert_eq!(h.question(q).votes(), 1);
    assert_eq!(
        h.err(&b, Command::Upvote(Upvote { question: q })),
        Rejection::AlreadyVoted
    );
    h.ok(&a, Command::Upvote(Upvote { question: q }));
    h.ok(&moderator(), Command::Upvote(Upvote { question: q }));
    assert_eq!(h.question(q).votes(), 3);

    h.ok(&b, Command::RetractUpvote(RetractUpvote { question: q }));
    assert_eq!(h.question(q).votes(), 2);
    assert!(!h.question(q).voters.contains(&b.participant));
    assert_eq!(
        h.err(&b, Command::RetractUpvote(RetractUpvote { question: q })),
        Rejection::NotVoted
    );
    // And again.
    h.ok(&b, Command::Upvote(Upvote { question: q }));
    assert_eq!(h.question(q).votes(), 3);

    assert_eq!(
        h.code(
            &b,
            Command::Upvote(Upvote {
                question: QuestionId(77)
            })
        ),
        "unknown_question"
    );
    assert_eq!(
        h.code(
            &b,
            Command::RetractUpvote(RetractUpvote {
                question: QuestionId(77)
            })
        ),
        "unknown_question"
    );

    // Queued and on-air questions are still open for votes.
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }),
    );
    h.ok(&citizen("carl"), Command::Upvote(Upvote { question: q }));
    h.ok(&moderator(), Command::PutOnAir(PutOnAir { question: q }));
    h.ok(&citizen("dorte"), Command::Upvote(Upvote { question: q }));
    assert_eq!(h.question(q).votes(), 5);
}

#[test]
fn votes_on_someone_elses_pending_question_say_unknown_question() {
    let mut h = Harness::live();
    let (a, b) = (citizen("anna"), citizen("bo"));
    let pending = h.ask(&a, "Hemmeligt");
    // Indistinguishable from a question that does not exist: no probing.
    let missing = h.err(
        &b,
        Command::Upvote(Upvote {
            question: QuestionId(99),
        }),
    );
    assert_eq!(
        h.err(&b, Command::Upvote(Upvote { question: pending })),
        missing
    );
    assert_eq!(
        h.err(&b, Command::Upvote(Upvote { question: pending })),
        Rejection::UnknownQuestion
    );
    assert_eq!(
        h.err(
            &b,
            Command::RetractUpvote(RetractUpvote { question: pending })
        ),
        Rejection::UnknownQuestion
    );
    // A question rejected before anyone saw it stays unknown.
    h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: pending,
            reason: "nej".into(),
        }),
    );
    assert_eq!(
        h.err(&b, Command::Upvote(Upvote { question: pending })),
        Rejection::UnknownQuestion
    );
}

// ---------------------------------------------------------------------------------------------
// Chat

#[test]
fn comments_are_posted_and_hidden() {
    let mut h = Harness::live();
    let a = citizen("anna");
    h.name(&a, "Anna");
    let recs = h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Godt spørgsmål!\r\nEnig.".into(),
        }),
    );
    assert_eq!(
        kinds(&recs),
        vec![EventKind::CommentPosted(CommentPosted {
            comment: CommentId(1),
            text: "Godt spørgsmål!\nEnig.".into(),
            author_name: Some("Anna".into()),
            held: None,
        })]
    );
    h.ok(
        &citizen("bo"),
        Command::PostComment(PostComment {
            text: "Spam".into(),
        }),
    );
    let c = h.meeting.comments[&CommentId(2)].clone();
    assert_eq!(c.author, citizen("bo").participant);
    assert!(!c.hidden);

    h.ok(
        &moderator(),
        Command::HideComment(HideComment {
            comment: CommentId(2),
        }),
    );
    assert!(h.meeting.comments[&CommentId(2)].hidden);
    assert_eq!(
        h.code(
            &moderator(),
            Command::HideComment(HideComment {
                comment: CommentId(2)
            })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::HideComment(HideComment {
                comment: CommentId(9)
            })
        ),
        "unknown_comment"
    );

    let ids = |s: Snapshot| {
        s.comments
            .iter()
            .map(|c| (c.id, c.hidden))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(Snapshot::of(&h.meeting, &viewer(&a))),
        vec![(CommentId(1), false)]
    );
    assert_eq!(
        ids(Snapshot::of(&h.meeting, &viewer(&moderator()))),
        vec![(CommentId(1), false), (CommentId(2), true)]
    );
}

// ---------------------------------------------------------------------------------------------
// Moderation of participants

#[test]
fn muted_citizen_cannot_post_but_can_vote() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q = h.ask_approved(&citizen("bo"), "Spørgsmål");
    assert_eq!(
        h.code(
            &moderator(),
            Command::MuteParticipant(MuteParticipant {
                participant: a.participant.clone()
            })
        ),
        "unknown_participant"
    );
    h.name(&a, "Anna");

    h.ok(
        &moderator(),
        Command::MuteParticipant(MuteParticipant {
            participant: a.participant.clone(),
        }),
    );
    assert!(h.meeting.participant(&a.participant).unwrap().muted);
    assert_eq!(
        h.code(
            &moderator(),
            Command::MuteParticipant(MuteParticipant {
                participant: a.participant.clone()
            })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(
            &a,
            Command::AskQuestion(AskQuestion {
                text: "Hej".into(),
                anonymous: false
            })
        ),
        "muted"
    );
    assert_eq!(
        h.code(&a, Command::PostComment(PostComment { text: "Hej".into() })),
        "muted"
    );
    h.ok(&a, Command::Upvote(Upvote { question: q }));
    h.ok(&a, Command::RetractUpvote(RetractUpvote { question: q }));

    h.ok(
        &moderator(),
        Command::UnmuteParticipant(UnmuteParticipant {
            participant: a.participant.clone(),
        }),
    );
    assert!(!h.meeting.participant(&a.participant).unwrap().muted);
    assert_eq!(
        h.code(
            &moderator(),
            Command::UnmuteParticipant(UnmuteParticipant {
                participant: a.participant.clone()
            })
        ),
        "invalid_state"
    );
    h.ok(&a, Command::PostComment(PostComment { text: "Hej".into() }));
    h.ok(
        &a,
        Command::AskQuestion(AskQuestion {
            text: "Hej?".into(),
            anonymous: false,
        }),
    );
}

#[test]
fn banned_citizen_can_do_nothing_until_unbanned() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q = h.ask_approved(&citizen("bo"), "Spørgsmål");
    h.ok(&a, Command::Upvote(Upvote { question: q }));
    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Trold".into(),
        }),
    );

    let recs = h.ok(
        &moderator(),
        Command::BanParticipant(BanParticipant {
            participant: a.participant.clone(),
        }),
    );
    assert!(
        fanout::updates(&h.meeting, &recs[0]).contains(&Update::Disconnect(a.participant.clone()))
    );
    assert!(h.meeting.participant(&a.participant).unwrap().banned);
    assert_eq!(
        h.code(
            &moderator(),
            Command::BanParticipant(BanParticipant {
                participant: a.participant.clone()
            })
        ),
        "invalid_state"
    );

    for cmd in [
        Command::SetName(SetName {
            name: "Anna".into(),
        }),
        Command::AskQuestion(AskQuestion {
            text: "Hej".into(),
            anonymous: false,
        }),
        Command::Upvote(Upvote { question: q }),
        Command::RetractUpvote(RetractUpvote { question: q }),
        Command::PostComment(PostComment { text: "Hej".into() }),
    ] {
        assert_eq!(h.code(&a, cmd), "banned");
    }

    h.ok(
        &moderator(),
        Command::UnbanParticipant(UnbanParticipant {
            participant: a.participant.clone(),
        }),
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::UnbanParticipant(UnbanParticipant {
                participant: a.participant.clone()
            })
        ),
        "invalid_state"
    );
    h.ok(&a, Command::RetractUpvote(RetractUpvote { question: q }));
    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Undskyld".into(),
        }),
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::BanParticipant(BanParticipant {
                participant: citizen("ukendt").participant
            })
        ),
        "unknown_participant"
    );
}

#[test]
fn slow_mode_tells_how_long_to_wait_and_spares_staff() {
    let mut h = Harness::live();
    let a = citizen("anna");
    assert_eq!(
        h.code(
            &moderator(),
            Command::SetSlowMode(SetSlowMode { seconds: 3601 })
        ),
        "invalid_state"
    );
    h.ok(
        &moderator(),
        Command::SetSlowMode(SetSlowMode { seconds: 10 }),
    );
    assert_eq!(h.meeting.slow_mode_secs, 10);

    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Først".into(),
        }),
    );
    h.advance(3_000);
    let r = h.err(
        &a,
        Command::PostComment(PostComment {
            text: "For hurtigt".into(),
        }),
    );
    assert_eq!(
        r,
        Rejection::SlowMode {
            retry_after_ms: 7_000
        }
    );
    assert_eq!(r.code(), "slow_mode");
    assert_eq!(r.retry_after_ms(), Some(7_000));
    assert!(r.to_string().contains("7 s"), "{r}");
    // Questions count as posts too.
    let r = h.err(
        &a,
        Command::AskQuestion(AskQuestion {
            text: "Også for hurtigt".into(),
            anonymous: false,
        }),
    );
    assert_eq!(r.retry_after_ms(), Some(7_000));
    h.advance(6_999);
    assert_eq!(
        h.err(&a, Command::PostComment(PostComment { text: "x".into() }))
            .retry_after_ms(),
        Some(1)
    );
    h.advance(1);
    h.ok(
        &a,
        Command::AskQuestion(AskQuestion {
            text: "Nu".into(),
            anonymous: false,
        }),
    );
    h.advance(1);
    assert_eq!(
        h.err(&a, Command::PostComment(PostComment { text: "x".into() }))
            .retry_after_ms(),
        Some(9_999)
    );
    // Votes are not posts.
    let q = h.ask_approved(&citizen("bo"), "Bos spørgsmål");
    h.ok(&a, Command::Upvote(Upvote { question: q }));

    // Staff are exempt.
    for staff in [moderator(), speaker(), organizer()] {
        h.ok(
            &staff,
            Command::PostComment(PostComment { text: "1".into() }),
        );
        h.ok(
            &staff,
            Command::PostComment(PostComment { text: "2".into() }),
        );
    }

    // 0 turns it off.
    h.ok(
        &moderator(),
        Command::SetSlowMode(SetSlowMode { seconds: 0 }),
    );
    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Fri igen".into(),
        }),
    );
    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Og igen".into(),
        }),
    );
}

#[test]
fn closed_qa_and_chat_stop_citizens_but_not_staff() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q = h.ask_approved(&a, "Før lukning");

    h.ok(&moderator(), Command::SetQaOpen(SetQaOpen { open: false }));
    assert!(!h.meeting.qa_open);
    assert_eq!(
        h.code(
            &a,
            Command::AskQuestion(AskQuestion {
                text: "Hej".into(),
                anonymous: false
            })
        ),
        "qa_closed"
    );
    h.ok(
        &moderator(),
        Command::AskQuestion(AskQuestion {
            text: "Fra ordstyreren".into(),
            anonymous: false,
        }),
    );
    h.ok(&a, Command::Upvote(Upvote { question: q }));
    h.ok(
        &a,
        Command::PostComment(PostComment {
            text: "Chatten er stadig åben".into(),
        }),
    );
    h.ok(&moderator(), Command::SetQaOpen(SetQaOpen { open: true }));
    h.ok(
        &a,
        Command::AskQuestion(AskQuestion {
            text: "Hej".into(),
            anonymous: false,
        }),
    );

    h.ok(
        &moderator(),
        Command::SetChatOpen(SetChatOpen { open: false }),
    );
    assert!(!h.meeting.chat_open);
    assert_eq!(
        h.code(&a, Command::PostComment(PostComment { text: "Hej".into() })),
        "chat_closed"
    );
    h.ok(
        &speaker(),
        Command::PostComment(PostComment {
            text: "Fra scenen".into(),
        }),
    );
    h.ok(
        &moderator(),
        Command::SetChatOpen(SetChatOpen { open: true }),
    );
    h.ok(&a, Command::PostComment(PostComment { text: "Hej".into() }));
}

#[test]
fn too_many_pending_questions_are_refused_for_citizens() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let max = h.meeting.limits.max_pending_per_participant;
    let first = h.ask(&a, "Spørgsmål 0");
    for i in 1..max {
        h.ask(&a, &format!("Spørgsmål {i}"));
    }
    let r = h.err(
        &a,
        Command::AskQuestion(AskQuestion {
            text: "En for meget".into(),
            anonymous: false,
        }),
    );
    assert_eq!(r, Rejection::TooManyPending { max });
    assert_eq!(r.code(), "too_many_pending");
    // Other citizens are not affected.
    h.ask(&citizen("bo"), "Mit første");
    // A decision frees a slot.
    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: first }),
    );
    h.ask(&a, "Nu igen");
    assert_eq!(
        h.code(
            &a,
            Command::AskQuestion(AskQuestion {
                text: "Og igen".into(),
                anonymous: false
            })
        ),
        "too_many_pending"
    );
    // Staff are not limited.
    for i in 0..=max {
        h.ask(&moderator(), &format!("Ordstyrer {i}"));
    }
}

#[test]
fn the_meeting_refuses_more_than_its_limits() {
    let mut h = Harness::live();
    h.meeting.limits.max_questions = 2;
    h.meeting.limits.max_comments = 1;
    h.ask(&citizen("anna"), "1");
    h.ask(&citizen("bo"), "2");
    assert_eq!(
        h.err(
            &citizen("carl"),
            Command::AskQuestion(AskQuestion {
                text: "3".into(),
                anonymous: false
            })
        ),
        Rejection::MeetingFull { max: 2 }
    );
    h.ok(
        &citizen("carl"),
        Command::PostComment(PostComment { text: "1".into() }),
    );
    assert_eq!(
        h.code(
            &moderator(),
            Command::PostComment(PostComment { text: "2".into() })
        ),
        "meeting_full"
    );
}

// ---------------------------------------------------------------------------------------------
// Roles

/// Every command that needs a moderator, with arguments that a moderator could use.
fn moderator_commands(
    q: QuestionId,
    c: CommentId,
    p: &townhall_core::ParticipantId,
) -> Vec<Command> {
    vec![
        Command::ApproveQuestion(ApproveQuestion { question: q }),
        Command::RejectQuestion(RejectQuestion {
            question: q,
            reason: "nej".into(),
        }),
        Command::MergeQuestion(MergeQuestion {
            question: q,
            into: QuestionId(q.0 + 1),
        }),
        Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }),
        Command::UnqueueQuestion(UnqueueQuestion { question: q }),
        Command::PutOnAir(PutOnAir { question: q }),
        Command::HideComment(HideComment { comment: c }),
        Command::MuteParticipant(MuteParticipant {
            participant: p.clone(),
        }),
        Command::UnmuteParticipant(UnmuteParticipant {
            participant: p.clone(),
        }),
        Command::BanParticipant(BanParticipant {
            participant: p.clone(),
        }),
        Command::UnbanParticipant(UnbanParticipant {
            participant: p.clone(),
        }),
        Command::SetSlowMode(SetSlowMode { seconds: 5 }),
        Command::SetQaOpen(SetQaOpen { open: false }),
        Command::SetChatOpen(SetChatOpen { open: false }),
        Command::PinAnnouncement(PinAnnouncement {
            text: "Pause".into(),
        }),
    ]
}

fn organizer_commands() -> Vec<Command> {
    vec![
        Command::CreateMeeting(CreateMeeting {
            title: "Nyt møde".into(),
        }),
        Command::StartMeeting(StartMeeting),
        Command::EndMeeting(EndMeeting),
        Command::ScheduleMeeting(schedule(true)),
        Command::PublishRecord(PublishRecord {
            record: true,
            rejections: false,
            comments: false,
            replay: false,
        }),
    ]
}

/// A valid schedule: 18:00–20:00 Copenhagen time on 12 March 2026, with an agenda.
fn schedule(qa_before_start: bool) -> ScheduleMeeting {
    ScheduleMeeting {
        starts_at: Timestamp(1_773_334_800_000),
        ends_at: Timestamp(1_773_342_000_000),
        time_zone: "Europe/Copenhagen".into(),
        description: "  Om den nye skole i Rungsted  ".into(),
        agenda: vec!["Velkomst".into(), "Spørgsmål fra borgerne".into()],
        qa_before_start,
    }
}

#[test]
fn the_organizer_schedules_a_meeting_and_bad_schedules_are_refused_with_stable_codes() {
    let mut h = Harness::scheduled();
    let recs = h.ok(&organizer(), Command::ScheduleMeeting(schedule(true)));
    let s = h.meeting.schedule.clone().expect("scheduled");
    assert_eq!(
        kinds(&recs),
        vec![EventKind::MeetingScheduled(MeetingScheduled(s.clone()))]
    );
    assert_eq!(
        s.description.as_deref(),
        Some("Om den nye skole i Rungsted")
    );
    assert_eq!(s.agenda.len(), 2);

    let bad = |f: &dyn Fn(&mut ScheduleMeeting)| {
        let mut c = schedule(true);
        f(&mut c);
        Command::ScheduleMeeting(c)
    };
    let cases: Vec<(Command, &str)> = vec![
        (bad(&|c| c.ends_at = c.starts_at), "invalid_schedule"),
        (
            bad(&|c| c.ends_at = Timestamp(c.starts_at.0 - 1)),
            "invalid_schedule",
        ),
        (bad(&|c| c.time_zone = String::new()), "invalid_schedule"),
        (
            bad(&|c| c.time_zone = "Europe/Copenhagen; drop".into()),
            "invalid_schedule",
        ),
        (
            bad(&|c| c.agenda = vec!["x".into(); 31]),
            "invalid_schedule",
        ),
        (bad(&|c| c.agenda = vec![" ".into()]), "text_empty"),
        (bad(&|c| c.agenda = vec!["a\nb".into()]), "text_invalid"),
        (bad(&|c| c.description = "å".repeat(2001)), "text_too_long"),
    ];
    for (cmd, code) in cases {
        assert_eq!(h.code(&organizer(), cmd), code);
    }
    // Refused commands changed nothing; an empty description is none.
    assert_eq!(h.meeting.schedule.as_ref(), Some(&s));
    h.ok(&organizer(), bad(&|c| c.description = " ".into()));
    assert_eq!(h.meeting.schedule.as_ref().unwrap().description, None);

    // Only the organizer schedules, and not after the end.
    assert_eq!(
        h.code(&moderator(), Command::ScheduleMeeting(schedule(true))),
        "forbidden"
    );
    h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    assert_eq!(
        h.code(&organizer(), Command::ScheduleMeeting(schedule(true))),
        "meeting_ended"
    );
}

#[test]
fn questions_in_advance_follow_the_schedule() {
    let mut h = Harness::scheduled();
    let ask = |text: &str| {
        Command::AskQuestion(AskQuestion {
            text: text.into(),
            anonymous: false,
        })
    };
    h.ok(&organizer(), Command::ScheduleMeeting(schedule(false)));
    assert_eq!(h.code(&citizen("anna"), ask("Før start?")), "qa_closed");
    // Staff may still prepare questions.
    h.ok(&moderator(), ask("Forberedt spørgsmål"));

    h.ok(&organizer(), Command::ScheduleMeeting(schedule(true)));
    let q = h.ask(&citizen("anna"), "Før start?");
    assert_eq!(
        h.status(q),
        QuestionStatus::Pending,
        "goes to moderation as usual"
    );

    // Once live, the flag no longer matters.
    h.ok(&organizer(), Command::ScheduleMeeting(schedule(false)));
    h.ok(&organizer(), Command::StartMeeting(StartMeeting));
    h.ask(&citizen("bo"), "Under mødet");
}

#[test]
fn the_record_is_published_only_after_the_end_and_tells_nobody_live() {
    let mut h = Harness::live();
    let publish = |record, rejections, comments| {
        Command::PublishRecord(PublishRecord {
            record,
            rejections,
            comments,
            replay: false,
        })
    };
    assert_eq!(
        h.code(&organizer(), publish(true, false, false)),
        "not_ended"
    );
    h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    assert_eq!(
        h.code(&organizer(), publish(false, true, false)),
        "invalid_state",
        "rejections belong to the record"
    );
    assert_eq!(
        h.code(&moderator(), publish(true, false, false)),
        "forbidden"
    );
    let recs = h.ok(&organizer(), publish(true, true, false));
    assert!(fanout::updates(&h.meeting, &recs[0]).is_empty());
    assert!(h.meeting.publication.record && h.meeting.publication.rejections);
    h.ok(&organizer(), publish(false, false, false));
    assert!(!h.meeting.publication.record);
}

#[test]
fn citizens_are_forbidden_every_moderator_and_organizer_command() {
    let mut h = Harness::scheduled();
    let a = citizen("anna");
    let q = h.ask(&a, "Mit spørgsmål");
    h.ask(&a, "Et til");
    h.ok(
        &moderator(),
        Command::PostComment(PostComment {
            text: "Velkommen".into(),
        }),
    );
    let all = moderator_commands(q, CommentId(1), &a.participant)
        .into_iter()
        .chain([Command::MarkAnswered(MarkAnswered { question: q })])
        .chain(organizer_commands());
    for cmd in all {
        let name = cmd.name();
        assert_eq!(h.err(&a, cmd), Rejection::Forbidden, "{name}");
    }
}

#[test]
fn speakers_may_only_mark_the_question_on_air_answered() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let on_air = h.ask_approved(&a, "På luften");
    let other = h.ask_approved(&a, "Venter");
    h.ok(&a, Command::PostComment(PostComment { text: "Hej".into() }));
    for cmd in moderator_commands(other, CommentId(1), &a.participant)
        .into_iter()
        .chain(organizer_commands())
    {
        let name = cmd.name();
        assert_eq!(h.err(&speaker(), cmd), Rejection::Forbidden, "{name}");
    }
    assert_eq!(
        h.code(
            &speaker(),
            Command::MarkAnswered(MarkAnswered { question: on_air })
        ),
        "invalid_state"
    );
    h.ok(
        &moderator(),
        Command::PutOnAir(PutOnAir { question: on_air }),
    );
    assert_eq!(
        h.code(
            &speaker(),
            Command::MarkAnswered(MarkAnswered { question: other })
        ),
        "invalid_state"
    );
    h.ok(
        &speaker(),
        Command::MarkAnswered(MarkAnswered { question: on_air }),
    );
    assert_eq!(h.status(on_air), QuestionStatus::Answered);
    // Speakers still take part like anyone else.
    h.ok(&speaker(), Command::Upvote(Upvote { question: other }));
    h.ok(
        &speaker(),
        Command::SetName(SetName {
            name: "Borgmesteren".into(),
        }),
    );
}

#[test]
fn moderators_may_moderate_but_not_organize() {
    let mut h = Harness::scheduled();
    for cmd in organizer_commands() {
        let name = cmd.name();
        assert_eq!(h.err(&moderator(), cmd), Rejection::Forbidden, "{name}");
    }
    // The organizer may moderate too.
    h.ok(
        &organizer(),
        Command::PinAnnouncement(PinAnnouncement {
            text: "Vi starter kl. 19".into(),
        }),
    );
    assert_eq!(h.meeting.announcement.as_deref(), Some("Vi starter kl. 19"));
    h.ok(
        &moderator(),
        Command::PinAnnouncement(PinAnnouncement { text: "  ".into() }),
    );
    assert_eq!(h.meeting.announcement, None);
}

/// Every command states who may issue it (protocol.md §4, the `roles` column); none falls to a
/// default. A new command must be added here, or `every_command` below stops covering it.
#[test]
fn every_command_has_its_documented_roles() {
    use townhall_core::Permission::*;
    let table = [
        ("set_name", Anyone),
        ("ask_question", Anyone),
        ("upvote", Anyone),
        ("retract_upvote", Anyone),
        ("post_comment", Anyone),
        ("answer_poll", Anyone),
        ("mark_answered", Presenters),
        ("approve_question", Moderators),
        ("reject_question", Moderators),
        ("merge_question", Moderators),
        ("queue_question", Moderators),
        ("unqueue_question", Moderators),
        ("put_on_air", Moderators),
        ("hide_comment", Moderators),
        ("mute_participant", Moderators),
        ("unmute_participant", Moderators),
        ("ban_participant", Moderators),
        ("unban_participant", Moderators),
        ("set_slow_mode", Moderators),
        ("set_qa_open", Moderators),
        ("set_chat_open", Moderators),
        ("pin_announcement", Moderators),
        ("open_poll", Moderators),
        ("close_poll", Moderators),
        ("unhide_comment", Moderators),
        ("claim_question", Moderators),
        ("release_question", Moderators),
        ("approve_questions", Moderators),
        ("reject_questions", Moderators),
        ("set_word_filter", Moderators),
        ("create_meeting", Organizer),
        ("start_meeting", Organizer),
        ("end_meeting", Organizer),
        ("schedule_meeting", Organizer),
        ("publish_record", Organizer),
    ];
    let mut all = every_command();
    all.extend([
        Command::OpenPoll(OpenPoll {
            question: "?".into(),
            options: vec!["a".into(), "b".into()],
        }),
        Command::ClosePoll(ClosePoll { poll: PollId(1) }),
        Command::AnswerPoll(AnswerPoll {
            poll: PollId(1),
            option: 0,
        }),
        Command::UnhideComment(UnhideComment {
            comment: CommentId(1),
        }),
        Command::ClaimQuestion(ClaimQuestion {
            question: QuestionId(1),
        }),
        Command::ReleaseQuestion(ReleaseQuestion {
            question: QuestionId(1),
        }),
        Command::ApproveQuestions(ApproveQuestions {
            questions: vec![QuestionId(1)],
        }),
        Command::RejectQuestions(RejectQuestions {
            questions: vec![QuestionId(1)],
            reason: "x".into(),
        }),
        Command::SetWordFilter(SetWordFilter { words: None }),
    ]);
    let mut seen = BTreeSet::new();
    for cmd in &all {
        let (_, expected) = table
            .iter()
            .find(|(name, _)| *name == cmd.name())
            .unwrap_or_else(|| panic!("{} is missing from the table", cmd.name()));
        assert_eq!(cmd.permission(), *expected, "{}", cmd.name());
        seen.insert(cmd.name());
    }
    assert_eq!(seen.len(), table.len(), "every command is covered");
    let roles = |p: townhall_core::Permission| {
        [
            Role::Citizen,
            Role::Speaker,
            Role::Moderator,
            Role::Organizer,
        ]
        .into_iter()
        .filter(|r| p.allows(*r))
        .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(Anyone),
        [
            Role::Citizen,
            Role::Speaker,
            Role::Moderator,
            Role::Organizer
        ]
    );
    assert_eq!(
        roles(Presenters),
        [Role::Speaker, Role::Moderator, Role::Organizer]
    );
    assert_eq!(roles(Moderators), [Role::Moderator, Role::Organizer]);
    assert_eq!(roles(Organizer), [Role::Organizer]);
}

// ---------------------------------------------------------------------------------------------
// Text

#[test]
fn text_validation_errors_surface_as_codes() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let ask = |t: &str| {
        Command::AskQuestion(AskQuestion {
            text: t.into(),
            anonymous: false,
        })
    };
    assert_eq!(h.code(&a, ask("")), "text_empty");
    assert_eq!(h.code(&a, ask(" \n\t ")), "text_empty");
    assert_eq!(
        h.err(&a, ask(&"ø".repeat(501))),
        Rejection::Text(TextError::TooLong { len: 501, max: 500 })
    );
    assert_eq!(h.code(&a, ask("a\u{7}b")), "text_invalid");
    assert_eq!(h.code(&a, ask("abc\u{202E}cba")), "text_invalid");
    h.ok(&a, ask(&"ø".repeat(500)));

    let comment = |t: &str| Command::PostComment(PostComment { text: t.into() });
    assert_eq!(h.code(&a, comment("")), "text_empty");
    assert_eq!(h.code(&a, comment(&"x".repeat(301))), "text_too_long");
    assert_eq!(h.code(&a, comment("\u{0}")), "text_invalid");

    let name = |t: &str| Command::SetName(SetName { name: t.into() });
    assert_eq!(h.code(&a, name(&"x".repeat(41))), "text_too_long");
    assert_eq!(h.code(&a, name("to\nlinjer")), "text_invalid");
    h.ok(&a, name("Anna"));
    assert_eq!(h.meeting.name_of(&a.participant).as_deref(), Some("Anna"));
    h.ok(&a, name(""));
    assert_eq!(h.meeting.name_of(&a.participant), None);

    assert_eq!(
        h.code(
            &moderator(),
            Command::PinAnnouncement(PinAnnouncement {
                text: "x".repeat(301)
            })
        ),
        "text_too_long"
    );
    let mut fresh = Harness::new();
    assert_eq!(
        fresh.code(
            &organizer(),
            Command::CreateMeeting(CreateMeeting { title: " ".into() })
        ),
        "text_empty"
    );
    assert_eq!(
        fresh.code(
            &organizer(),
            Command::CreateMeeting(CreateMeeting {
                title: "t".repeat(121)
            })
        ),
        "text_too_long"
    );

    // Markup is just text: stored as given, escaping is the page's job.
    let q = h.ask(&citizen("bo"), "<img src=x onerror=alert(1)>");
    assert_eq!(h.question(q).text, "<img src=x onerror=alert(1)>");
    assert_eq!(TextKind::Question.max_chars(), 500);
}

#[test]
fn rejection_codes_are_stable() {
    let cases: Vec<(Rejection, &str)> = vec![
        (Rejection::NoMeeting, "no_meeting"),
        (Rejection::AlreadyCreated, "already_created"),
        (Rejection::Forbidden, "forbidden"),
        (Rejection::NotLive, "not_live"),
        (Rejection::Ended, "meeting_ended"),
        (Rejection::Banned, "banned"),
        (Rejection::Muted, "muted"),
        (Rejection::QaClosed, "qa_closed"),
        (Rejection::ChatClosed, "chat_closed"),
        (
            Rejection::SlowMode {
                retry_after_ms: 1500,
            },
            "slow_mode",
        ),
        (Rejection::Text(TextError::Empty), "text_empty"),
        (
            Rejection::Text(TextError::TooLong { len: 2, max: 1 }),
            "text_too_long",
        ),
        (Rejection::Text(TextError::Invalid), "text_invalid"),
        (Rejection::UnknownQuestion, "unknown_question"),
        (Rejection::UnknownComment, "unknown_comment"),
        (Rejection::UnknownParticipant, "unknown_participant"),
        (Rejection::InvalidState("x"), "invalid_state"),
        (Rejection::AlreadyVoted, "already_voted"),
        (Rejection::NotVoted, "not_voted"),
        (Rejection::InvalidMerge, "invalid_merge"),
        (Rejection::TooManyPending { max: 5 }, "too_many_pending"),
        (Rejection::MeetingFull { max: 5 }, "meeting_full"),
    ];
    for (r, code) in &cases {
        assert_eq!(r.code(), *code);
        assert!(!r.to_string().is_empty());
        assert_eq!(r.retry_after_ms().is_some(), *code == "slow_mode");
    }
    assert_eq!(
        Rejection::SlowMode {
            retry_after_ms: 1500
        }
        .to_string(),
        "slow mode is on: wait 2 s before posting again"
    );
    assert!(
        Rejection::TooManyPending { max: 5 }
            .to_string()
            .contains('5')
    );
}

// ---------------------------------------------------------------------------------------------
// Names and anonymity

#[test]
fn anonymous_questions_hide_the_author_from_other_citizens_only() {
    let mut h = Harness::live();
    let (a, b) = (citizen("anna"), citizen("bo"));
    h.name(&a, "Anna Hansen");
    let anon = h.ask_anonymous(&a, "Hvad tjener borgmesteren?");
    let named = h.ask(&a, "Hvornår er der valg?");
    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: anon }),
    );
    h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: named }),
    );
    // The name is kept as it was when asking.
    h.name(&a, "Anna H.");
    assert_eq!(h.question(anon).author_name.as_deref(), Some("Anna Hansen"));

    let public = Snapshot::of(&h.meeting, &viewer(&b));
    let v = question_in(&public, anon).unwrap();
    assert!(v.anonymous);
    assert_eq!(v.author_name, None);
    assert_eq!(v.author, None);
    assert!(!v.mine);
    let v = question_in(&public, named).unwrap();
    assert_eq!(v.author_name.as_deref(), Some("Anna Hansen"));
    assert_eq!(v.author, None, "author ids are for staff only");

    let own = Snapshot::of(&h.meeting, &viewer(&a));
    let v = question_in(&own, anon).unwrap();
    assert_eq!(v.author_name.as_deref(), Some("Anna Hansen"));
    assert_eq!(v.author, None);
    assert!(v.mine);

    for staff in [moderator(), speaker(), organizer()] {
        let s = Snapshot::of(&h.meeting, &viewer(&staff));
        let v = question_in(&s, anon).unwrap();
        assert_eq!(v.author_name.as_deref(), Some("Anna Hansen"));
        assert_eq!(v.author.as_ref(), Some(&a.participant));
        assert!(!v.mine);
    }

    // The same three perspectives directly.
    let q = h.question(anon);
    assert_eq!(QuestionView::of(q, Perspective::Public).author_name, None);
    assert_eq!(QuestionView::of(q, Perspective::Author).author, None);
    assert_eq!(
        QuestionView::of(q, Perspective::Staff).author,
        Some(a.participant.clone())
    );

    // And in the live frames of an approval.
    let anon2 = h.ask_anonymous(&a, "Nummer to");
    let recs = h.ok(
        &moderator(),
        Command::ApproveQuestion(ApproveQuestion { question: anon2 }),
    );
    let to_bo = frames_to(&h, &recs[0], &viewer(&b));
    assert_eq!(to_bo.len(), 1);
    assert_eq!(to_bo[0].questions.len(), 1);
    assert_eq!(to_bo[0].questions[0].author_name, None);
    assert_eq!(to_bo[0].questions[0].author, None);
    let to_anna = frames_to(&h, &recs[0], &viewer(&a));
    assert_eq!(
        to_anna[0].questions[0].author_name.as_deref(),
        Some("Anna H.")
    );
    assert!(to_anna[0].questions[0].mine);
    let to_staff = frames_to(&h, &recs[0], &viewer(&moderator()));
    assert_eq!(
        to_staff[0].questions[0].author.as_ref(),
        Some(&a.participant)
    );
}

#[test]
fn comment_author_ids_are_for_staff_only() {
    let mut h = Harness::live();
    let a = citizen("anna");
    h.name(&a, "Anna");
    h.ok(&a, Command::PostComment(PostComment { text: "Hej".into() }));
    let c = &Snapshot::of(&h.meeting, &viewer(&citizen("bo"))).comments[0];
    assert_eq!(
        (c.author_name.as_deref(), c.author.as_ref()),
        (Some("Anna"), None)
    );
    let c = &Snapshot::of(&h.meeting, &viewer(&moderator())).comments[0];
    assert_eq!(c.author.as_ref(), Some(&a.participant));
    assert!(
        Snapshot::of(&h.meeting, &viewer(&a))
            .participants
            .is_empty()
    );
    let staff = Snapshot::of(&h.meeting, &viewer(&moderator()));
    assert!(staff.participants.iter().any(|p| p.id == a.participant));
}

#[test]
fn pending_questions_are_visible_to_their_author_and_staff_only() {
    let mut h = Harness::live();
    let (a, b) = (citizen("anna"), citizen("bo"));
    let q = h.ask(&a, "Venter");
    let recs = h.log.last().cloned().unwrap();
    assert!(question_in(&Snapshot::of(&h.meeting, &viewer(&a)), q).is_some());
    assert!(question_in(&Snapshot::of(&h.meeting, &viewer(&moderator())), q).is_some());
    assert!(question_in(&Snapshot::of(&h.meeting, &viewer(&b)), q).is_none());
    assert!(frames_to(&h, &recs, &viewer(&b)).is_empty());
    assert_eq!(frames_to(&h, &recs, &viewer(&a)).len(), 1);
    assert_eq!(frames_to(&h, &recs, &viewer(&speaker())).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// JSON

fn round_trip<T>(value: &T) -> String
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, value, "{json}");
    json
}

fn every_command() -> Vec<Command> {
    let p = pid("anna");
    let mut all = vec![
        Command::SetName(SetName {
            name: "Anna".into(),
        }),
        Command::AskQuestion(AskQuestion {
            text: "Hvornår?".into(),
            anonymous: true,
        }),
        Command::AskQuestion(AskQuestion {
            text: "Hvornår?".into(),
            anonymous: false,
        }),
        Command::Upvote(Upvote {
            question: QuestionId(1),
        }),
        Command::RetractUpvote(RetractUpvote {
            question: QuestionId(1),
        }),
        Command::PostComment(PostComment {
            text: "Hej \"du\"\n".into(),
        }),
        Command::QueueQuestion(QueueQuestion {
            question: QuestionId(3),
            position: Some(0),
        }),
        Command::MarkAnswered(MarkAnswered {
            question: QuestionId(2),
        }),
    ];
    all.extend(moderator_commands(QuestionId(1), CommentId(4), &p));
    all.extend(organizer_commands());
    all
}

#[test]
fn commands_round_trip_through_json() {
    let all = every_command();
    let names: BTreeSet<_> = all.iter().map(Command::name).collect();
    assert_eq!(names.len(), 26, "every variant is covered");
    for cmd in &all {
        let json = round_trip(cmd);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], cmd.name());
    }
    let parse = |s: &str| serde_json::from_str::<Command>(s);
    assert_eq!(
        parse(r#"{"type":"start_meeting"}"#).unwrap(),
        Command::StartMeeting(StartMeeting)
    );
    assert_eq!(
        parse(r#"{"type":"queue_question","question":3}"#).unwrap(),
        Command::QueueQuestion(QueueQuestion {
            question: QuestionId(3),
            position: None
        })
    );
    assert_eq!(
        parse(r#"{"type":"ask_question","text":"x"}"#).unwrap(),
        Command::AskQuestion(AskQuestion {
            text: "x".into(),
            anonymous: false
        })
    );
    assert!(parse(r#"{"type":"upvote","question":1,"extra":true}"#).is_err());
    assert!(parse(r#"{"type":"mute_participant","participant":"a b"}"#).is_err());
    assert!(parse(r#"{"type":"upvote","question":-1}"#).is_err());
}

#[test]
fn events_round_trip_through_json() {
    let q = QuestionId(3);
    let p = pid("anna");
    let kinds = vec![
        EventKind::MeetingCreated(MeetingCreated {
            title: "Møde".into(),
        }),
        EventKind::MeetingStarted(MeetingStarted),
        EventKind::MeetingEnded(MeetingEnded),
        EventKind::ParticipantRenamed(ParticipantRenamed {
            name: Some("Anna".into()),
        }),
        EventKind::ParticipantRenamed(ParticipantRenamed { name: None }),
        EventKind::QuestionAsked(QuestionAsked {
            question: q,
            text: "Hvad?".into(),
            anonymous: true,
            author_name: None,
            flagged: Some("idiot".into()),
        }),
        EventKind::QuestionApproved(QuestionApproved { question: q }),
        EventKind::QuestionRejected(QuestionRejected {
            question: q,
            reason: "nej".into(),
        }),
        EventKind::QuestionMerged(QuestionMerged {
            question: q,
            into: QuestionId(1),
        }),
        EventKind::QuestionQueued(QuestionQueued {
            question: q,
            position: 2,
        }),
        EventKind::QuestionUnqueued(QuestionUnqueued { question: q }),
        EventKind::QuestionOnAir(QuestionOnAir { question: q }),
        EventKind::QuestionAnswered(QuestionAnswered { question: q }),
        EventKind::VoteCast(VoteCast { question: q }),
        EventKind::VoteRetracted(VoteRetracted { question: q }),
        EventKind::CommentPosted(CommentPosted {
            comment: CommentId(1),
            text: "hej".into(),
            author_name: Some("A".into()),
            held: Some("lort".into()),
        }),
        EventKind::CommentHidden(CommentHidden {
            comment: CommentId(1),
        }),
        EventKind::CommentUnhidden(CommentUnhidden {
            comment: CommentId(1),
        }),
        EventKind::QuestionClaimed(QuestionClaimed { question: q }),
        EventKind::QuestionReleased(QuestionReleased { question: q }),
        EventKind::WordFilterSet(WordFilterSet {
            words: Some(vec!["møgsag".into()]),
        }),
        EventKind::ParticipantMuted(ParticipantMuted {
            participant: p.clone(),
        }),
        EventKind::ParticipantUnmuted(ParticipantUnmuted {
            participant: p.clone(),
        }),
        EventKind::ParticipantBanned(ParticipantBanned {
            participant: p.clone(),
        }),
        EventKind::ParticipantUnbanned(ParticipantUnbanned {
            participant: p.clone(),
        }),
        EventKind::SlowModeSet(SlowModeSet { seconds: 30 }),
        EventKind::QaOpened(QaOpened),
        EventKind::QaClosed(QaClosed),
        EventKind::ChatOpened(ChatOpened),
        EventKind::ChatClosed(ChatClosed),
        EventKind::AnnouncementPinned(AnnouncementPinned {
            text: Some("Pause".into()),
        }),
        EventKind::AnnouncementPinned(AnnouncementPinned { text: None }),
    ];
    let names: BTreeSet<_> = kinds.iter().map(EventKind::name).collect();
    assert_eq!(names.len(), 30, "every variant is covered");
    for (i, kind) in kinds.into_iter().enumerate() {
        let rec = Recorded {
            offset: i as u64 + 1,
            event: Event {
                at: Timestamp(T0 + i as u64),
                by: p.clone(),
                kind,
            },
        };
        let json = round_trip(&rec);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["offset"], i as u64 + 1);
        assert_eq!(v["by"], "anna");
        assert_eq!(v["type"], rec.event.kind.name());
        round_trip(&rec.event);
    }
}

#[test]
fn server_messages_round_trip_through_json() {
    // A real snapshot with every kind of content.
    let mut h = Harness::live();
    let a = citizen("anna");
    h.name(&a, "Anna");
    let q = h.ask_approved(&a, "Hvornår?");
    h.ask_anonymous(&a, "Anonymt");
    let r = h.ask(&a, "Afvist");
    h.ok(
        &moderator(),
        Command::RejectQuestion(RejectQuestion {
            question: r,
            reason: "nej".into(),
        }),
    );
    h.ok(&a, Command::Upvote(Upvote { question: q }));
    h.ok(&a, Command::PostComment(PostComment { text: "Hej".into() }));
    h.ok(
        &moderator(),
        Command::PinAnnouncement(PinAnnouncement {
            text: "Pause".into(),
        }),
    );
    h.ok(
        &moderator(),
        Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }),
    );
    h.ok(
        &moderator(),
        Command::MuteParticipant(MuteParticipant {
            participant: a.participant.clone(),
        }),
    );
    let snapshot = Snapshot::of(&h.meeting, &viewer(&moderator()));
    assert!(!snapshot.participants.is_empty());
    let cv: CommentView = snapshot.comments[0].clone();
    let hidden = CommentView {
        hidden: true,
        ..cv.clone()
    };

    let mut tallies = BTreeMap::new();
    tallies.insert(q, 3);
    tallies.insert(QuestionId(12), 0);
    let frame = |f: EventFrame| ServerMessage::Event(Box::new(f));
    let messages = vec![
        ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            participant: a.participant.clone(),
            role: Role::Citizen,
            session: "s.sig".into(),
        },
        ServerMessage::Snapshot(Box::new(snapshot.clone())),
        ServerMessage::Snapshot(Box::new(Snapshot::of(&h.meeting, &viewer(&a)))),
        frame(EventFrame {
            offset: 3,
            kind: "meeting_started".into(),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 4,
            kind: "question_merged".into(),
            questions: snapshot.questions.clone(),
            meeting: Some(MeetingView::of(&h.meeting)),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 5,
            kind: "comment_posted".into(),
            comment: Some(cv),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 5,
            kind: "comment_hidden".into(),
            comment: Some(hidden),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 6,
            kind: "comment_hidden".into(),
            comment_removed: Some(CommentId(1)),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 8,
            kind: "participant_muted".into(),
            participant: Some(ParticipantView {
                id: a.participant.clone(),
                name: None,
                muted: true,
                banned: false,
            }),
            you: Some(YouView::of(&h.meeting, &a.participant)),
            ..EventFrame::default()
        }),
        frame(EventFrame {
            offset: 11,
            kind: "vote_cast".into(),
            voted: Some(Voted {
                question: q,
                voted: true,
            }),
            ..EventFrame::default()
        }),
        ServerMessage::Votes {
            offset: 10,
            tallies,
        },
        ServerMessage::Presence {
            offset: 12,
            online: 40,
        },
        ServerMessage::Ack {
            reference: 1,
            offset: 12,
        },
        ServerMessage::error(Some(2), "slow_mode", "wait"),
        ServerMessage::Error {
            reference: None,
            code: "x".into(),
            message: "y".into(),
            retry_after_ms: Some(5),
        },
        ServerMessage::Resync {
            reason: "lagging".into(),
        },
        ServerMessage::Pong,
        ServerMessage::Bye {
            code: "banned".into(),
            message: "bye".into(),
        },
    ];
    for msg in &messages {
        let json = round_trip(msg);
        assert!(json.starts_with(r#"{"t":""#), "{json}");
    }
    // Tallies are keyed by question id as a JSON string.
    let votes = serde_json::to_value(&messages[10]).unwrap();
    assert_eq!(votes["tallies"]["1"], 3);
}

#[test]
fn client_messages_round_trip_through_json() {
    let messages = [
        ClientMessage::Hello {
            meeting: townhall_core::MeetingId::parse("m1").unwrap(),
            since: Some(4),
            token: Some("tok".into()),
            session: Some("sess".into()),
        },
        ClientMessage::Hello {
            meeting: townhall_core::MeetingId::parse("m1").unwrap(),
            since: None,
            token: None,
            session: None,
        },
        ClientMessage::Ping {},
    ];
    for msg in messages
        .iter()
        .cloned()
        .chain(
            every_command()
                .into_iter()
                .enumerate()
                .map(|(i, cmd)| ClientMessage::Cmd {
                    reference: i as u64,
                    cmd,
                }),
        )
    {
        round_trip(&msg);
    }
    assert_eq!(
        serde_json::to_string(&ClientMessage::Ping {}).unwrap(),
        r#"{"t":"ping"}"#
    );
    assert!(serde_json::from_str::<ClientMessage>(r#"{"t":"hello","meeting":"a/b"}"#).is_err());
}

// ---------------------------------------------------------------------------------------------
// Polls

fn open_poll(h: &mut Harness, options: &[&str]) -> Result<Vec<Recorded>, Rejection> {
    h.act(
        &moderator(),
        Command::OpenPoll(OpenPoll {
            question: "Hvor skal den nye legeplads ligge?".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }),
    )
}

#[test]
fn polls_are_opened_by_moderators_answered_once_and_closed() {
    let mut h = Harness::live();
    let anna = citizen("anna");
    let bo = citizen("bo");
    assert_eq!(
        h.code(
            &anna,
            Command::OpenPoll(OpenPoll {
                question: "Mit spørgsmål".into(),
                options: vec!["Ja".into(), "Nej".into()]
            })
        ),
        "forbidden"
    );
    let recs = open_poll(&mut h, &["Stationen", "Parken", "Havnen"]).unwrap();
    let poll = match &recs[0].event.kind {
        EventKind::PollOpened(PollOpened { poll, .. }) => *poll,
        other => panic!("expected poll_opened, got {other:?}"),
    };
    h.ok(&anna, Command::AnswerPoll(AnswerPoll { poll, option: 1 }));
    h.ok(&bo, Command::AnswerPoll(AnswerPoll { poll, option: 1 }));
    assert_eq!(
        h.code(&anna, Command::AnswerPoll(AnswerPoll { poll, option: 0 })),
        "already_answered"
    );
    assert_eq!(
        h.code(
            &bo,
            Command::AnswerPoll(AnswerPoll {
                poll: townhall_core::PollId(9),
                option: 0
            })
        ),
        "unknown_poll"
    );
    assert_eq!(h.meeting.polls[&poll].counts(), vec![0, 2, 0]);
    assert_eq!(
        h.code(&anna, Command::ClosePoll(ClosePoll { poll })),
        "forbidden"
    );
    h.ok(&moderator(), Command::ClosePoll(ClosePoll { poll }));
    assert_eq!(
        h.code(
            &citizen("cy"),
            Command::AnswerPoll(AnswerPoll { poll, option: 0 })
        ),
        "invalid_state"
    );
    assert_eq!(
        h.code(&moderator(), Command::ClosePoll(ClosePoll { poll })),
        "invalid_state"
    );
}

#[test]
fn a_poll_needs_two_to_six_distinct_valid_options() {
    let mut h = Harness::live();
    let code = |r: Result<Vec<Recorded>, Rejection>| r.map(|_| "ok").unwrap_or_else(|e| e.code());
    assert_eq!(code(open_poll(&mut h, &["Ja"])), "invalid_poll");
    assert_eq!(code(open_poll(&mut h, &["Ja", "Ja"])), "invalid_poll");
    assert_eq!(
        code(open_poll(&mut h, &["1", "2", "3", "4", "5", "6", "7"])),
        "invalid_poll"
    );
    assert_eq!(code(open_poll(&mut h, &["Ja", " "])), "text_empty");
    assert_eq!(
        code(open_poll(&mut h, &["Ja", &"x".repeat(81)])),
        "text_too_long"
    );
    assert_eq!(code(open_poll(&mut h, &["Ja", "Nej"])), "ok");
    let mut scheduled = Harness::scheduled();
    assert_eq!(code(open_poll(&mut scheduled, &["Ja", "Nej"])), "not_live");
}

#[test]
fn poll_answers_are_private_and_results_public() {
    let mut h = Harness::live();
    let anna = citizen("anna");
    let mut anna_follows = Follower::join(&h.meeting, &anna);
    let mut bo_follows = Follower::join(&h.meeting, &citizen("bo"));
    let mut staff_follows = Follower::join(&h.meeting, &moderator());
    let recs = open_poll(&mut h, &["Ja", "Nej"]).unwrap();
    let poll = match &recs[0].event.kind {
        EventKind::PollOpened(PollOpened { poll, .. }) => *poll,
        _ => unreachable!(),
    };
    for rec in &recs {
        for f in [&mut anna_follows, &mut bo_follows, &mut staff_follows] {
            f.deliver(&h.meeting, rec);
        }
    }
    let answer = h.ok(&anna, Command::AnswerPoll(AnswerPoll { poll, option: 0 }));
    // Only Anna is told what she answered; everyone gets the counts.
    assert!(
        frames_to(&h, &answer[0], &viewer(&anna))
            .iter()
            .all(|f| f.answered.is_some())
    );
    assert!(frames_to(&h, &answer[0], &viewer(&citizen("bo"))).is_empty());
    assert!(fanout::updates(&h.meeting, &answer[0]).contains(&Update::PollTally(poll)));
    for f in [&mut anna_follows, &mut bo_follows, &mut staff_follows] {
        f.deliver(&h.meeting, &answer[0]);
        assert!(f.matches_snapshot(&h.meeting));
    }
    assert_eq!(anna_follows.client.answered.get(&poll), Some(&0));
    assert!(bo_follows.client.answered.is_empty());
    assert_eq!(bo_follows.client.polls[&poll].counts, vec![1, 0]);
}

#[test]
fn ending_the_meeting_closes_open_polls() {
    let mut h = Harness::live();
    open_poll(&mut h, &["Ja", "Nej"]).unwrap();
    let recs = h.ok(&organizer(), Command::EndMeeting(EndMeeting));
    let names: Vec<&str> = recs.iter().map(|r| r.event.kind.name()).collect();
    assert_eq!(names, ["poll_closed", "meeting_ended"]);
    assert!(h.meeting.polls.values().all(|p| !p.open));
}
