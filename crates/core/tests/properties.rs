//! Property tests: random command sequences over a small world of participants.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::{BTreeMap, BTreeSet};
use townhall_core::client::ClientView;
use townhall_core::command::{
    AnswerPoll, ApproveQuestion, AskQuestion, BanParticipant, ClosePoll, CreateMeeting, EndMeeting,
    HideComment, MarkAnswered, MergeQuestion, MuteParticipant, OpenPoll, PinAnnouncement,
    PostComment, PutOnAir, QueueQuestion, RejectQuestion, RetractUpvote, SetChatOpen, SetName,
    SetQaOpen, SetSlowMode, StartMeeting, UnbanParticipant, UnmuteParticipant, UnqueueQuestion,
    Upvote,
};
use townhall_core::fanout::{self, Update};
use townhall_core::text::{self, TextKind};
use townhall_core::view::{QuestionView, Snapshot, Viewer};
use townhall_core::wire::ServerMessage;
use townhall_core::{
    Actor, Command, CommentId, Meeting, MeetingStatus, ParticipantId, Permission, PollId,
    QuestionId, QuestionStatus, Recorded, Role, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// The world

const CITIZENS: [&str; 3] = ["pid-citizen-a", "pid-citizen-b", "pid-citizen-c"];

/// Three citizens, a moderator, a speaker and the organizer.
fn world() -> Vec<Actor> {
    let mut w: Vec<Actor> = CITIZENS.iter().map(|c| citizen(c)).collect();
    w.push(Actor::new(pid("pid-moderator"), Role::Moderator));
    w.push(Actor::new(pid("pid-speaker"), Role::Speaker));
    w.push(organizer());
    w
}

/// Everyone who watches: the world, seen through their own sessions.
fn viewers() -> Vec<Viewer> {
    world().iter().map(viewer).collect()
}

/// Mostly valid texts, some empty, too long or with control characters; markup is valid text.
fn texts() -> impl Strategy<Value = String> {
    let valid = vec![
        "Hvornår åbner svømmehallen?".to_owned(),
        "Anna".to_owned(),
        "<img src=x onerror=alert(1)>".to_owned(),
        "y".repeat(250),
    ];
    let invalid = vec![
        String::new(),
        "  \n ".to_owned(),
        "a\u{7}b".to_owned(),
        "x".repeat(600),
    ];
    prop_oneof![3 => select(valid), 1 => select(invalid)]
}

fn participants() -> impl Strategy<Value = ParticipantId> {
    let mut ids: Vec<ParticipantId> = world().into_iter().map(|a| a.participant).collect();
    ids.push(pid("pid-ghost"));
    select(ids)
}

/// Question ids 1 to 6, the first ones more often (they exist in more runs).
fn question() -> impl Strategy<Value = QuestionId> {
    prop_oneof![3 => 1u64..=3, 1 => 4u64..=6].prop_map(QuestionId)
}

/// Every command, with small ids so they often refer to something that exists.
fn commands() -> impl Strategy<Value = Command> {
    use Command as C;
    prop_oneof![
        2 => texts().prop_map(|name| C::SetName(SetName { name })),
        20 => (texts(), any::<bool>()).prop_map(|(text, anonymous)| C::AskQuestion(AskQuestion { text, anonymous })),
        14 => question().prop_map(|question| C::Upvote(Upvote { question })),
        5 => question().prop_map(|question| C::RetractUpvote(RetractUpvote { question })),
        6 => texts().prop_map(|text| C::PostComment(PostComment { text })),
        14 => question().prop_map(|question| C::ApproveQuestion(ApproveQuestion { question })),
        3 => (question(), texts()).prop_map(|(question, reason)| C::RejectQuestion(RejectQuestion { question, reason })),
        5 => (question(), question()).prop_map(|(question, into)| C::MergeQuestion(MergeQuestion { question, into })),
        6 => (question(), select(vec![None, Some(0), Some(1), Some(7)]))
            .prop_map(|(question, position)| C::QueueQuestion(QueueQuestion { question, position })),
        2 => question().prop_map(|question| C::UnqueueQuestion(UnqueueQuestion { question })),
        5 => question().prop_map(|question| C::PutOnAir(PutOnAir { question })),
        3 => question().prop_map(|question| C::MarkAnswered(MarkAnswered { question })),
        3 => (1u64..=6).prop_map(|c| C::HideComment(HideComment { comment: CommentId(c) })),
        2 => participants().prop_map(|participant| C::MuteParticipant(MuteParticipant { participant })),
        2 => participants().prop_map(|participant| C::UnmuteParticipant(UnmuteParticipant { participant })),
        2 => participants().prop_map(|participant| C::BanParticipant(BanParticipant { participant })),
        2 => participants().prop_map(|participant| C::UnbanParticipant(UnbanParticipant { participant })),
        2 => select(vec![0u32, 1, 2, 3601]).prop_map(|seconds| C::SetSlowMode(SetSlowMode { seconds })),
        2 => prop::bool::weighted(0.7).prop_map(|open| C::SetQaOpen(SetQaOpen { open })),
        2 => prop::bool::weighted(0.7).prop_map(|open| C::SetChatOpen(SetChatOpen { open })),
        2 => texts().prop_map(|text| C::PinAnnouncement(PinAnnouncement { text })),
        3 => (texts(), prop::collection::vec(texts(), 0..=7))
            .prop_map(|(question, options)| C::OpenPoll(OpenPoll { question, options })),
        2 => (1u64..=3).prop_map(|p| C::ClosePoll(ClosePoll { poll: PollId(p) })),
        8 => (1u64..=3, 0u32..=3).prop_map(|(p, option)| C::AnswerPoll(AnswerPoll { poll: PollId(p), option })),
        1 => texts().prop_map(|title| C::CreateMeeting(CreateMeeting { title })),
        1 => Just(C::StartMeeting(StartMeeting)),
        1 => Just(C::EndMeeting(EndMeeting)),
    ]
}

/// Only the commands that move questions and votes, to reach deep question states (votes on
/// merged, queued and answered questions) more often.
fn question_commands() -> impl Strategy<Value = Command> {
    use Command as C;
    prop_oneof![
        4 => (texts(), any::<bool>()).prop_map(|(text, anonymous)| C::AskQuestion(AskQuestion { text, anonymous })),
        4 => question().prop_map(|question| C::ApproveQuestion(ApproveQuestion { question })),
        5 => question().prop_map(|question| C::Upvote(Upvote { question })),
        2 => question().prop_map(|question| C::RetractUpvote(RetractUpvote { question })),
        3 => (question(), question()).prop_map(|(question, into)| C::MergeQuestion(MergeQuestion { question, into })),
        1 => (question(), texts()).prop_map(|(question, reason)| C::RejectQuestion(RejectQuestion { question, reason })),
        2 => (question(), select(vec![None, Some(0), Some(1), Some(7)]))
            .prop_map(|(question, position)| C::QueueQuestion(QueueQuestion { question, position })),
        1 => question().prop_map(|question| C::UnqueueQuestion(UnqueueQuestion { question })),
        2 => question().prop_map(|question| C::PutOnAir(PutOnAir { question })),
        1 => question().prop_map(|question| C::MarkAnswered(MarkAnswered { question })),
    ]
}

#[derive(Clone, Debug)]
struct Step {
    actor: usize,
    cmd: Command,
    /// Milliseconds that pass before the command (for slow mode).
    dt: u64,
}

fn step_with(actor: impl Strategy<Value = usize>, cmd: Command) -> impl Strategy<Value = Step> {
    (actor, Just(cmd), select(vec![0u64, 400, 1_500, 5_000])).prop_map(|(actor, cmd, dt)| Step {
        actor,
        cmd,
        dt,
    })
}

/// Steps by any actor of the world. Mostly by one whose role may issue the command, so that
/// moderation actually happens; sometimes by anyone, so that roles are checked.
fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    steps_of(commands().boxed(), max)
}

fn question_steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    steps_of(question_commands().boxed(), max)
}

fn steps_of(commands: BoxedStrategy<Command>, max: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = commands.prop_flat_map(|cmd| {
        use Command as C;
        let entitled: Vec<usize> = match (cmd.permission(), &cmd) {
            // Rarely: it ends the run.
            (_, C::EndMeeting(_)) => vec![0, 1, 2, 3, 4, 5],
            (Permission::Anyone, _) => vec![0, 1, 2, 0, 1, 2, 3, 4, 5],
            (Permission::Presenters, _) => vec![3, 4, 5],
            (Permission::Moderators, _) => vec![3, 3, 5],
            (Permission::Organizer, _) => vec![5],
        };
        step_with(prop_oneof![4 => select(entitled), 1 => 0usize..6], cmd)
    });
    prop::collection::vec(step, 0..=max)
}

/// Steps by citizens only.
fn citizen_steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        commands().prop_flat_map(|cmd| step_with(0usize..3, cmd)),
        0..=max,
    )
}

/// Started in most runs: most commands need a live meeting.
fn started() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.8)
}

/// A created meeting, started or not.
fn setup(started: bool) -> Harness {
    if started {
        Harness::live()
    } else {
        Harness::scheduled()
    }
}

/// Runs one step; checks property (5) on every rejection. `on_applied` sees each event.
fn step(h: &mut Harness, s: &Step, on_applied: impl FnMut(&Meeting, &Recorded)) {
    h.advance(s.dt);
    let actor = &world()[s.actor];
    let now = h.now;
    if let Err(r) = h.run_with(actor, &s.cmd, now, on_applied) {
        let code = r.code();
        assert!(!code.is_empty(), "{r:?}");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(!r.to_string().is_empty(), "{r:?}");
    }
}

fn run_all(h: &mut Harness, steps: &[Step]) {
    for s in steps {
        step(h, s, |_, _| {});
    }
}

/// 256 cases per property; set `PROPTEST_CASES` to run more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// (1) Replay

proptest! {
    #![proptest_config(config())]

    /// The log is the truth: folding it into a fresh meeting gives the state built step by step.
    #[test]
    fn replaying_the_log_gives_the_same_state(started in started(), steps in steps(60)) {
        let mut h = setup(started);
        run_all(&mut h, &steps);
        let offsets: Vec<u64> = h.log.iter().map(|r| r.offset).collect();
        let expected: Vec<u64> = (1..=h.log.len() as u64).collect();
        prop_assert_eq!(offsets, expected);
        let replayed = Meeting::replay(h.meeting.id.clone(), &h.log);
        prop_assert_eq!(&replayed, &h.meeting);
        // And through the stored JSON form.
        let stored: Vec<Recorded> = h
            .log
            .iter()
            .map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap())
            .collect();
        prop_assert_eq!(&stored, &h.log);
    }
}

// ---------------------------------------------------------------------------------------------
// (2) Citizens cannot moderate

/// Everything a citizen must not be able to change.
#[derive(Debug, PartialEq, Eq)]
struct Moderation {
    status: MeetingStatus,
    title: String,
    qa_open: bool,
    chat_open: bool,
    slow_mode_secs: u32,
    announcement: Option<String>,
    queue: Vec<QuestionId>,
    on_air: Option<QuestionId>,
    questions: BTreeMap<QuestionId, (QuestionStatus, bool)>,
    muted: BTreeSet<ParticipantId>,
    banned: BTreeSet<ParticipantId>,
    hidden: BTreeSet<CommentId>,
}

impl Moderation {
    fn of(m: &Meeting) -> Self {
        let flagged = |f: fn(&townhall_core::Participant) -> bool| {
            m.participants
                .iter()
                .filter(|(_, p)| f(p))
                .map(|(id, _)| id.clone())
                .collect()
        };
        Self {
            status: m.status,
            title: m.title.clone(),
            qa_open: m.qa_open,
            chat_open: m.chat_open,
            slow_mode_secs: m.slow_mode_secs,
            announcement: m.announcement.clone(),
            queue: m.queue.clone(),
            on_air: m.on_air,
            questions: m
                .questions
                .iter()
                .map(|(id, q)| (*id, (q.status.clone(), q.public)))
                .collect(),
            muted: flagged(|p| p.muted),
            banned: flagged(|p| p.banned),
            hidden: m
                .comments
                .values()
                .filter(|c| c.hidden)
                .map(|c| c.id)
                .collect(),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn citizens_never_change_moderation_state(
        started in started(),
        prefix in steps(30),
        citizens in citizen_steps(60),
    ) {
        let mut h = setup(started);
        run_all(&mut h, &prefix);
        let before = h.meeting.clone();
        run_all(&mut h, &citizens);
        let after = &h.meeting;

        // New questions are their authors' own pending questions, nothing more.
        let mut expected = Moderation::of(&before);
        for (id, q) in &after.questions {
            if !before.questions.contains_key(id) {
                prop_assert_eq!(&q.status, &QuestionStatus::Pending);
                prop_assert!(!q.public);
                prop_assert!(CITIZENS.contains(&q.author.as_str()));
                expected.questions.insert(*id, (QuestionStatus::Pending, false));
            }
        }
        prop_assert_eq!(Moderation::of(after), expected);
        for rec in &h.log[before.offset as usize..] {
            prop_assert!(CITIZENS.contains(&rec.event.by.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (3) Live frames keep every client equal to a fresh snapshot; (4) nothing leaks

/// The client view compared with a snapshot. A session only hears of the events it may see, so
/// its offset can lag behind the log's; that is the only difference allowed.
fn assert_client_matches(client: &ClientView, m: &Meeting, v: &Viewer, context: &str) {
    assert!(
        client.offset <= m.offset,
        "{context}: client ahead of the log"
    );
    let mut followed = client.comparable();
    followed.offset = m.offset;
    let joined = ClientView::from_snapshot(&Snapshot::of(m, v)).comparable();
    assert_eq!(
        followed, joined,
        "{context}: {v:?} diverged from its snapshot"
    );
}

/// Checks one question view that reaches citizen `v`.
fn check_question_for_citizen(m: &Meeting, v: &Viewer, qv: &QuestionView, context: &str) {
    let q = &m.questions[&qv.id];
    assert_eq!(qv.author, None, "{context}: author id sent to a citizen");
    if q.author != v.participant {
        assert!(
            q.public,
            "{context}: {:?}'s unapproved question {} reached {:?}",
            q.author, q.id, v.participant
        );
        assert_ne!(qv.status, "pending", "{context}");
        assert!(!qv.mine, "{context}");
        assert_eq!(
            qv.reason, None,
            "{context}: rejection reason sent to another citizen"
        );
        if q.anonymous {
            assert_eq!(
                qv.author_name, None,
                "{context}: anonymous author's name leaked"
            );
        }
    }
    // Another citizen's public question never points at a hidden one. (The author of a pending
    // duplicate is told the number of the pending question it was merged into; nothing more.)
    if let Some(t) = qv.merged_into.filter(|_| q.author != v.participant) {
        let target = &m.questions[&t];
        assert!(
            target.public || target.author == v.participant,
            "{context}: merged into hidden question {t}"
        );
    }
}

/// Property (4) for one frame (or snapshot) that reaches citizen `v`.
fn check_frame_for_citizen(
    m: &Meeting,
    v: &Viewer,
    by: Option<&ParticipantId>,
    msg: &ServerMessage,
    context: &str,
) {
    match msg {
        ServerMessage::Event(e) => {
            for qv in &e.questions {
                check_question_for_citizen(m, v, qv, context);
            }
            if let Some(c) = &e.comment {
                assert_eq!(c.author, None, "{context}");
                assert!(!c.hidden, "{context}");
            }
            assert_eq!(
                e.participant, None,
                "{context}: moderation state sent to a citizen"
            );
            if let Some(you) = &e.you {
                assert_eq!(you.participant, v.participant, "{context}");
            }
            if e.voted.is_some() {
                assert_eq!(by, Some(&v.participant), "{context}: someone else's vote");
            }
            if e.answered.is_some() {
                assert_eq!(
                    by,
                    Some(&v.participant),
                    "{context}: someone else's poll answer"
                );
            }
            if let Some(mv) = &e.meeting {
                for id in mv.queue.iter().chain(mv.on_air.as_ref()) {
                    assert!(m.questions[id].public, "{context}");
                }
            }
        }
        ServerMessage::Votes { tallies, .. } => {
            for id in tallies.keys() {
                assert!(
                    m.questions[id].public,
                    "{context}: tally of a hidden question"
                );
            }
        }
        ServerMessage::PollResults { results, .. } => {
            for r in results {
                assert_eq!(
                    r.counts,
                    m.polls[&r.id].counts(),
                    "{context}: stale poll counts"
                );
            }
        }
        ServerMessage::Snapshot(s) => {
            for qv in &s.questions {
                check_question_for_citizen(m, v, qv, context);
            }
            let shown: BTreeSet<QuestionId> = s.questions.iter().map(|q| q.id).collect();
            for id in &s.voted {
                assert!(
                    shown.contains(id),
                    "{context}: voted on unseen question {id}"
                );
            }
            assert!(s.participants.is_empty(), "{context}");
            assert!(
                s.comments.iter().all(|c| c.author.is_none() && !c.hidden),
                "{context}"
            );
        }
        other => panic!("{context}: unexpected frame {other:?}"),
    }
    // No other participant's id ever reaches a citizen, in any field.
    let json = serde_json::to_string(msg).unwrap();
    for a in world() {
        if a.participant != v.participant {
            assert!(
                !json.contains(a.participant.as_str()),
                "{context}: {} leaked in {json}",
                a.participant
            );
        }
    }
}

fn follow_frames(started: bool, prefix: &[Step], steps: &[Step]) {
    let mut h = setup(started);
    run_all(&mut h, prefix);
    let viewers = viewers();
    let mut clients: Vec<ClientView> = viewers
        .iter()
        .map(|v| ClientView::from_snapshot(&Snapshot::of(&h.meeting, v)))
        .collect();
    for (v, c) in viewers.iter().zip(&clients) {
        if !v.role.is_staff() {
            let snap = ServerMessage::Snapshot(Box::new(Snapshot::of(&h.meeting, v)));
            check_frame_for_citizen(&h.meeting, v, None, &snap, "join");
        }
        assert_client_matches(c, &h.meeting, v, "join");
    }
    for (i, s) in steps.iter().enumerate() {
        step(&mut h, s, |m, rec| {
            let context = format!(
                "step {i} ({}), offset {} ({})",
                s.cmd.name(),
                rec.offset,
                rec.event.kind.name()
            );
            let mut event_frames = vec![0usize; viewers.len()];
            for u in fanout::updates(m, rec) {
                let (frames, audience_of_all): (Vec<ServerMessage>, bool) = match u {
                    Update::Send(aud, msg) => {
                        for (j, v) in viewers.iter().enumerate() {
                            if aud.includes(v) {
                                if matches!(msg, ServerMessage::Event(_)) {
                                    event_frames[j] += 1;
                                }
                                if !v.role.is_staff() {
                                    check_frame_for_citizen(
                                        m,
                                        v,
                                        Some(&rec.event.by),
                                        &msg,
                                        &context,
                                    );
                                }
                                clients[j].apply(&msg);
                            }
                        }
                        (Vec::new(), false)
                    }
                    Update::Tally(q) => (fanout::tally_frame(m, [q]).into_iter().collect(), true),
                    Update::PollTally(p) => (
                        fanout::poll_results_frame(m, [p]).into_iter().collect(),
                        true,
                    ),
                    Update::Disconnect(p) => {
                        assert!(m.participant(&p).is_some_and(|p| p.banned), "{context}");
                        (Vec::new(), false)
                    }
                };
                if audience_of_all {
                    for msg in frames {
                        for (j, v) in viewers.iter().enumerate() {
                            if !v.role.is_staff() {
                                check_frame_for_citizen(m, v, None, &msg, &context);
                            }
                            clients[j].apply(&msg);
                        }
                    }
                }
            }
            for (j, v) in viewers.iter().enumerate() {
                assert!(
                    event_frames[j] <= 1,
                    "{context}: {v:?} got {} event frames",
                    event_frames[j]
                );
                assert_client_matches(&clients[j], m, v, &context);
            }
        });
    }
    for v in &viewers {
        if !v.role.is_staff() {
            let snap = ServerMessage::Snapshot(Box::new(Snapshot::of(&h.meeting, v)));
            check_frame_for_citizen(&h.meeting, v, None, &snap, "final snapshot");
        }
    }
    assert!(h.meeting.comments.len() < townhall_core::view::SNAPSHOT_COMMENTS);
}

proptest! {
    #![proptest_config(config())]

    /// Properties (3) and (4): a client that follows the live frames from a snapshot always
    /// equals a client that joins now, and citizens never see what is not theirs to see.
    #[test]
    fn live_frames_keep_clients_equal_to_snapshots_and_leak_nothing(
        started in started(),
        prefix in steps(15),
        steps in steps(60),
    ) {
        follow_frames(started, &prefix, &steps);
    }

    /// The same, concentrating on questions and votes, from a meeting where every citizen has
    /// asked a question (one anonymously) and some may already be approved.
    #[test]
    fn live_frames_follow_deep_question_histories(
        approved in prop::collection::vec(question(), 0..4),
        prefix in question_steps(10),
        steps in question_steps(60),
    ) {
        let mut seeded: Vec<Step> = (0..3)
            .map(|c| Step {
                actor: c,
                cmd: Command::AskQuestion(AskQuestion { text: format!("Spørgsmål fra {c}"), anonymous: c == 2 }),
                dt: 0,
            })
            .collect();
        seeded.extend(approved.into_iter().map(|question| Step {
            actor: 3,
            cmd: Command::ApproveQuestion(ApproveQuestion { question }),
            dt: 0,
        }));
        seeded.extend(prefix);
        follow_frames(true, &seeded, &steps);
    }
}

// ---------------------------------------------------------------------------------------------
// (5) Decide is total

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "\\PC{0,20}", texts()]
}

proptest! {
    #![proptest_config(config())]

    /// Whatever text arrives, decide answers (events or a rejection with a code and a message).
    #[test]
    fn decide_is_total_on_arbitrary_text(
        started in started(),
        prefix in steps(20),
        actor in 0usize..6,
        text in any_text(),
        anonymous in any::<bool>(),
        question in 0u64..8,
        seconds in any::<u32>(),
        position in any::<Option<u32>>(),
    ) {
        let mut h = setup(started);
        run_all(&mut h, &prefix);
        let q = QuestionId(question);
        for cmd in [
            Command::SetName(SetName { name: text.clone() }),
            Command::AskQuestion(AskQuestion { text: text.clone(), anonymous }),
            Command::PostComment(PostComment { text: text.clone() }),
            Command::RejectQuestion(RejectQuestion { question: q, reason: text.clone() }),
            Command::PinAnnouncement(PinAnnouncement { text: text.clone() }),
            Command::CreateMeeting(CreateMeeting { title: text.clone() }),
            Command::SetSlowMode(SetSlowMode { seconds }),
            Command::QueueQuestion(QueueQuestion { question: q, position }),
            Command::MergeQuestion(MergeQuestion { question: q, into: QuestionId(question.wrapping_mul(7) % 8) }),
        ] {
            let mut fresh = Harness { meeting: h.meeting.clone(), log: h.log.clone(), now: h.now };
            step(&mut fresh, &Step { actor, cmd, dt: 0 }, |_, _| {});
        }
    }

    /// Cleaned text is a fixed point: cleaning it again changes nothing.
    #[test]
    fn cleaning_text_is_idempotent(raw in any_text()) {
        for kind in [TextKind::Question, TextKind::Comment, TextKind::DisplayName, TextKind::Reason] {
            if let Ok(clean) = text::clean(kind, &raw) {
                prop_assert_eq!(text::clean(kind, &clean), Ok(clean.clone()));
                prop_assert!(clean.chars().count() <= kind.max_chars());
            }
        }
    }
}

#[test]
fn the_world_has_distinct_ids() {
    let ids: BTreeSet<String> = world().iter().map(|a| a.participant.to_string()).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(Timestamp(5).millis_since(Timestamp(7)), 0);
}
