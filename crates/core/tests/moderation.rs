//! Several moderators, bulk decisions, the word filter and undoing a hide: one scenario per
//! rule, with followers checking that every role's fold of the frames equals a fresh snapshot.

mod common;

use common::*;
use townhall_core::command::{
    ApproveQuestion, ApproveQuestions, ClaimQuestion, HideComment, MergeQuestion, PostComment,
    RejectQuestions, ReleaseQuestion, SetWordFilter, UnhideComment,
};
use townhall_core::{Actor, Command, CommentId, QuestionStatus, Role};

fn second_moderator() -> Actor {
    Actor::new(pid("moderator-2"), Role::Moderator)
}

fn claim(q: townhall_core::QuestionId) -> Command {
    Command::ClaimQuestion(ClaimQuestion { question: q })
}

#[test]
fn a_claimed_question_is_decided_by_its_moderator_and_others_see_who_holds_it() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let q = h.ask(&a, "Hvornår bliver cykelstien færdig?");
    let m1 = moderator();
    let m2 = second_moderator();
    h.name(&m1, "Mette");
    let mut followers = vec![
        Follower::join(&h.meeting, &m2),
        Follower::join(&h.meeting, &a),
        Follower::join(&h.meeting, &citizen("bo")),
    ];
    h.ok_followed(&m1, claim(q), &mut followers);
    assert_eq!(h.question(q).claimed_by, Some(m1.participant.clone()));
    let seen = &followers[0].client.questions[&q];
    assert_eq!(
        seen.claimed_by,
        Some(m1.participant.clone()),
        "staff see who"
    );
    assert_eq!(
        followers[1].client.questions[&q].claimed_by, None,
        "the author does not"
    );
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    // The other moderator can neither take it nor decide it; releasing is open to anyone.
    assert_eq!(h.code(&m2, claim(q)), "claimed");
    let approve = Command::ApproveQuestion(ApproveQuestion { question: q });
    assert_eq!(h.code(&m2, approve.clone()), "claimed");
    assert_eq!(h.code(&m1, claim(q)), "invalid_state");
    h.ok_followed(
        &m2,
        Command::ReleaseQuestion(ReleaseQuestion { question: q }),
        &mut followers,
    );
    assert_eq!(h.question(q).claimed_by, None);
    h.ok_followed(&m1, claim(q), &mut followers);
    // Deciding ends the claim.
    h.ok_followed(&m1, approve, &mut followers);
    assert_eq!(h.question(q).claimed_by, None);
    assert_eq!(h.code(&m1, claim(q)), "invalid_state", "no longer pending");
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    // Citizens may not claim.
    let q2 = h.ask(&a, "Og hvad koster den?");
    assert_eq!(h.code(&a, claim(q2)), "forbidden");
}

#[test]
fn bulk_decisions_skip_what_another_moderator_holds_or_already_decided() {
    let mut h = Harness::live();
    let qs: Vec<_> = (0..4)
        .map(|i| {
            h.ask(
                &citizen(&format!("c{i}")),
                &format!("Spørgsmål nummer {i}?"),
            )
        })
        .collect();
    let m1 = moderator();
    let m2 = second_moderator();
    h.ok(&m2, claim(qs[0]));
    h.ok(
        &m1,
        Command::ApproveQuestion(ApproveQuestion { question: qs[1] }),
    );
    let recs = h.ok(
        &m1,
        Command::ApproveQuestions(ApproveQuestions {
            questions: qs.clone(),
        }),
    );
    assert_eq!(recs.len(), 2, "q2 and q3 only");
    assert!(
        recs.iter().all(|r| r.event.by == m1.participant),
        "who did it is recorded"
    );
    assert_eq!(h.status(qs[0]), QuestionStatus::Pending);
    assert_eq!(h.status(qs[2]), QuestionStatus::Approved);
    let reject = |questions, reason: &str| {
        Command::RejectQuestions(RejectQuestions {
            questions,
            reason: reason.into(),
        })
    };
    h.ok(&m2, reject(vec![qs[0], qs[3]], "Uden for emnet"));
    assert!(matches!(h.status(qs[0]), QuestionStatus::Rejected { .. }));
    assert!(matches!(h.status(qs[3]), QuestionStatus::Rejected { .. }));
    assert_eq!(h.code(&m1, reject(vec![qs[0]], "igen")), "invalid_state");
    assert_eq!(h.code(&m1, reject(vec![], "x")), "invalid_state");
    let many = (0..51).map(|_| qs[1]).collect();
    assert_eq!(h.code(&m1, reject(many, "x")), "invalid_state");
    assert_eq!(
        h.code(&m1, reject(vec![townhall_core::QuestionId(99)], "x")),
        "unknown_question"
    );
    assert_eq!(h.code(&m1, reject(vec![qs[1]], "")), "text_empty");
}

#[test]
fn a_claim_also_holds_merging_the_question_away() {
    let mut h = Harness::live();
    let target = h.ask_approved(&citizen("a"), "Hvornår åbner svømmehallen?");
    let dup = h.ask(&citizen("b"), "Hvornår åbner svømmehallen igen?");
    h.ok(&second_moderator(), claim(dup));
    let merge = Command::MergeQuestion(MergeQuestion {
        question: dup,
        into: target,
    });
    assert_eq!(h.code(&moderator(), merge.clone()), "claimed");
    h.ok(&second_moderator(), merge);
}

#[test]
fn filtered_words_flag_questions_and_hold_comments_until_released() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let m = moderator();
    let q = h.ask(&a, "Hvorfor er borgmesteren sådan en 1d10t?");
    assert_eq!(h.question(q).flagged.as_deref(), Some("idiot"));
    let clean = h.ask(&a, "Hvornår åbner svømmehallen?");
    assert_eq!(h.question(clean).flagged, None);
    let mut followers = vec![
        Follower::join(&h.meeting, &m),
        Follower::join(&h.meeting, &a),
        Follower::join(&h.meeting, &citizen("bo")),
    ];
    assert!(followers[0].client.word_filter.iter().any(|w| w == "idiot"));
    assert!(
        followers[1].client.word_filter.is_empty(),
        "citizens never see the list"
    );
    let flagged = &followers[0].client.questions[&q];
    assert_eq!(flagged.flagged.as_deref(), Some("idiot"), "shown to staff");
    assert_eq!(
        followers[1].client.questions[&q].flagged, None,
        "not to the author"
    );

    h.ok_followed(
        &a,
        Command::PostComment(PostComment {
            text: "sikke noget l o r t".into(),
        }),
        &mut followers,
    );
    let c = &h.meeting.comments[&CommentId(1)];
    assert!(c.hidden);
    assert_eq!(c.held.as_deref(), Some("lort"));
    assert_eq!(
        followers[0].client.comments[&CommentId(1)].held.as_deref(),
        Some("lort")
    );
    assert!(
        followers[2].client.comments.is_empty(),
        "others never see it"
    );
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    // A moderator releases it: now everyone sees it.
    h.ok_followed(
        &m,
        Command::UnhideComment(UnhideComment {
            comment: CommentId(1),
        }),
        &mut followers,
    );
    assert!(followers[2].client.comments.contains_key(&CommentId(1)));
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    // Staff are never filtered.
    h.ok(
        &m,
        Command::PostComment(PostComment {
            text: "Ingen idiot-kommentarer, tak".into(),
        }),
    );
    assert!(!h.meeting.comments[&CommentId(2)].hidden);
}

#[test]
fn the_organizer_edits_the_meetings_list() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let set = |words: Option<Vec<&str>>| {
        Command::SetWordFilter(SetWordFilter {
            words: words.map(|w| w.into_iter().map(str::to_owned).collect()),
        })
    };
    let mut staff = vec![Follower::join(&h.meeting, &moderator())];
    h.ok_followed(
        &organizer(),
        set(Some(vec!["Møgkommune", "møgkommune"])),
        &mut staff,
    );
    assert_eq!(staff[0].client.word_filter, vec!["møgkommune".to_owned()]);
    assert!(staff[0].matches_snapshot(&h.meeting));
    let q = h.ask(&a, "Den MØGKOMMUNE!");
    assert_eq!(h.question(q).flagged.as_deref(), Some("møgkommune"));
    let q = h.ask(&a, "din idiot");
    assert_eq!(h.question(q).flagged, None, "the defaults no longer apply");
    h.ok(&moderator(), set(None));
    let q = h.ask(&a, "din idiot");
    assert_eq!(h.question(q).flagged.as_deref(), Some("idiot"));
    assert_eq!(h.code(&a, set(None)), "forbidden");
    assert_eq!(h.code(&moderator(), set(Some(vec![""]))), "invalid_filter");
    let long = "x".repeat(41);
    assert_eq!(
        h.code(&moderator(), set(Some(vec![&long]))),
        "invalid_filter"
    );
    let many: Vec<String> = (0..501).map(|i| format!("ord{i}")).collect();
    assert_eq!(
        h.code(
            &moderator(),
            Command::SetWordFilter(SetWordFilter { words: Some(many) })
        ),
        "invalid_filter"
    );
}

#[test]
fn a_hidden_comment_can_be_shown_again() {
    let mut h = Harness::live();
    let a = citizen("anna");
    let mut followers = vec![
        Follower::join(&h.meeting, &moderator()),
        Follower::join(&h.meeting, &citizen("bo")),
    ];
    h.ok_followed(
        &a,
        Command::PostComment(PostComment {
            text: "Godt møde".into(),
        }),
        &mut followers,
    );
    let id = CommentId(1);
    h.ok_followed(
        &moderator(),
        Command::HideComment(HideComment { comment: id }),
        &mut followers,
    );
    assert!(!followers[1].client.comments.contains_key(&id));
    h.ok_followed(
        &moderator(),
        Command::UnhideComment(UnhideComment { comment: id }),
        &mut followers,
    );
    assert!(!h.meeting.comments[&id].hidden);
    assert!(followers[1].client.comments.contains_key(&id));
    for f in &followers {
        assert!(f.matches_snapshot(&h.meeting), "{:?}", f.viewer);
    }
    let unhide = Command::UnhideComment(UnhideComment { comment: id });
    assert_eq!(h.code(&moderator(), unhide.clone()), "invalid_state");
    assert_eq!(h.code(&a, unhide), "forbidden");
}
