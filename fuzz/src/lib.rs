//! The fuzz targets' bodies, shared by the libFuzzer targets (`fuzz_targets/`, for
//! `cargo fuzz`) and the corpus replayer (`src/bin/replay.rs`, stable Rust, no libFuzzer).
//!
//! - [`client_frame`]: any bytes as a client frame: parsed as strictly as the hub parses it;
//!   what parses survives a JSON round trip and is decided against a live meeting by every
//!   role without a panic.
//! - [`meeting_commands`]: the bytes as a sequence of commands by several actors over time
//!   against one meeting with small limits: no panic, every event's fan-out and every role's
//!   snapshot are computed, the state is the fold of the log, every event survives its stored
//!   JSON.
//! - [`media_bodies`]: the bytes as a WHIP or WHEP offer followed by trickle fragments, parsed
//!   and answered by str0m on an `Rtc` set up as the relay sets up its peers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use townhall_core::view::{Snapshot, Viewer};
use townhall_core::wire::ClientMessage;
use townhall_core::{
    Actor, Command, Limits, Meeting, MeetingId, ParticipantId, Recorded, Role, Timestamp, fanout,
};

/// The hub's soft frame limit: larger frames are refused before parsing.
const MAX_FRAME_BYTES: usize = 8 * 1024;
const T0: u64 = 1_760_000_000_000;

fn actors() -> Vec<Actor> {
    let p = |s: &str| ParticipantId::parse(s).expect("valid test id");
    vec![
        Actor::organizer(),
        Actor::new(p("fuzz-moderator"), Role::Moderator),
        Actor::new(p("fuzz-speaker"), Role::Speaker),
        Actor::new(p("fuzz-citizen-a"), Role::Citizen),
        Actor::new(p("fuzz-citizen-b"), Role::Citizen),
        Actor::new(p("fuzz-citizen-c"), Role::Citizen),
        Actor::new(p("fuzz-citizen-d"), Role::Citizen),
    ]
}

/// Small limits, so a short input reaches every cap.
fn small_limits() -> Limits {
    Limits {
        max_questions: 12,
        max_comments: 12,
        max_pending_per_participant: 2,
        max_polls: 3,
        max_votes_per_question: 2,
        max_events: 120,
        max_participants: 5,
        ..Limits::default()
    }
}

/// Decides and applies one command, checking what every accepted event must allow.
fn run(m: &mut Meeting, log: &mut Vec<Recorded>, actor: &Actor, cmd: &Command, now: u64) {
    let Ok(events) = m.decide(actor, cmd, Timestamp(now)) else {
        return;
    };
    for event in events {
        let rec = Recorded {
            offset: m.offset + 1,
            event,
        };
        m.apply(&rec);
        let _ = fanout::updates(m, &rec);
        log.push(rec);
    }
}

fn live_meeting(log: &mut Vec<Recorded>) -> Meeting {
    let mut m = Meeting::new(MeetingId::parse("fuzz-meeting").expect("valid id"));
    let organizer = Actor::organizer();
    let create = serde_json::json!({"type": "create_meeting", "title": "Fuzz"});
    let create: Command = serde_json::from_value(create).expect("a valid command");
    run(&mut m, log, &organizer, &create, T0);
    let start: Command =
        serde_json::from_value(serde_json::json!({"type": "start_meeting"})).expect("valid");
    run(&mut m, log, &organizer, &start, T0);
    m
}

pub fn client_frame(data: &[u8]) {
    if data.len() > MAX_FRAME_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(msg) = serde_json::from_str::<ClientMessage>(text) else {
        return;
    };
    let again = serde_json::to_string(&msg).expect("wire types serialise");
    let back: ClientMessage = serde_json::from_str(&again).expect("what we write we read");
    assert_eq!(back, msg);
    if let ClientMessage::Cmd { cmd, .. } = msg {
        let mut log = Vec::new();
        let mut m = live_meeting(&mut log);
        for actor in actors() {
            run(&mut m, &mut log, &actor, &cmd, T0 + 1000);
        }
        assert_eq!(Meeting::replay(m.id.clone(), &log), m);
    }
}

/// Reads the fuzzer's bytes as small numbers and strings.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn text(&mut self) -> Option<String> {
        Some(match self.byte()? % 6 {
            0 => "Hvornår åbner skolen?".into(),
            1 => String::new(),
            2 => "x".repeat(usize::from(self.byte()?) * 3),
            3 => "\u{200B}\u{3164}".into(),
            _ => {
                let n = usize::from(self.byte()? % 64).min(self.0.len());
                let (raw, rest) = self.0.split_at(n);
                self.0 = rest;
                String::from_utf8_lossy(raw).into_owned()
            }
        })
    }
}

/// One command from the input, as a client would send it (so every field goes through serde).
fn command(u: &mut Input<'_>, actors: &[Actor]) -> Option<Command> {
    use serde_json::json;
    let q = u64::from(u.byte()? % 14);
    let who = &actors[usize::from(u.byte()?) % actors.len()].participant;
    let v = match u.byte()? % 27 {
        0 => json!({"type": "set_name", "name": u.text()?}),
        1 => json!({"type": "ask_question", "text": u.text()?, "anonymous": q % 2 == 0}),
        2 | 3 => json!({"type": "upvote", "question": q}),
        4 => json!({"type": "retract_upvote", "question": q}),
        5 => json!({"type": "post_comment", "text": u.text()?}),
        6 => json!({"type": "answer_poll", "poll": q % 4, "option": u.byte()? % 4}),
        7 | 8 => json!({"type": "approve_question", "question": q}),
        9 => json!({"type": "reject_question", "question": q, "reason": u.text()?}),
        10 => json!({"type": "merge_question", "question": q, "into": u.byte()? % 14}),
        11 => json!({"type": "queue_question", "question": q, "position": u.byte()? % 4}),
        12 => json!({"type": "unqueue_question", "question": q}),
        13 => json!({"type": "put_on_air", "question": q}),
        14 => json!({"type": "mark_answered", "question": q}),
        15 => json!({"type": "hide_comment", "comment": q}),
        16 => json!({"type": "mute_participant", "participant": who}),
        17 => json!({"type": "unmute_participant", "participant": who}),
        18 => json!({"type": "ban_participant", "participant": who}),
        19 => json!({"type": "unban_participant", "participant": who}),
        20 => json!({"type": "set_slow_mode", "seconds": u.byte()?}),
        21 => json!({"type": "set_qa_open", "open": q % 2 == 0}),
        22 => json!({"type": "set_chat_open", "open": q % 2 == 0}),
        23 => json!({"type": "pin_announcement", "text": u.text()?}),
        24 => {
            let options: Vec<String> = (0..u.byte()? % 8).filter_map(|_| u.text()).collect();
            json!({"type": "open_poll", "question": u.text()?, "options": options})
        }
        25 => json!({"type": "close_poll", "poll": q % 4}),
        _ => json!({"type": if q % 2 == 0 { "end_meeting" } else { "start_meeting" }}),
    };
    serde_json::from_value(v).ok()
}

pub fn meeting_commands(data: &[u8]) {
    let actors = actors();
    let mut u = Input(data);
    let mut log = Vec::new();
    let mut m = live_meeting(&mut log);
    m.limits = small_limits();
    let mut now = T0;
    while let (Some(who), Some(dt)) = (u.byte(), u.byte()) {
        now += u64::from(dt) * 250;
        let actor = &actors[usize::from(who) % actors.len()];
        let Some(cmd) = command(&mut u, &actors) else {
            break;
        };
        run(&mut m, &mut log, actor, &cmd, now);
    }
    let mut replayed = Meeting::replay(m.id.clone(), &log);
    replayed.limits = m.limits;
    assert_eq!(replayed, m, "the state is the fold of the log");
    for rec in &log {
        let stored = serde_json::to_string(rec).expect("events serialise");
        let back: Recorded = serde_json::from_str(&stored).expect("stored events read back");
        assert_eq!(&back, rec);
    }
    for actor in &actors {
        let viewer = Viewer {
            participant: actor.participant.clone(),
            role: actor.role,
        };
        let _ = Snapshot::of(&m, &viewer);
    }
}

/// An `Rtc` as the relay makes one for each peer (`relay.rs`, `new_rtc`): ICE-lite, RTP mode,
/// Opus, VP8 and H.264, the node's host candidate.
fn relay_rtc(now: Instant, estimate_bandwidth: bool) -> str0m::Rtc {
    let mut config = str0m::RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(true)
        .set_stats_interval(Some(Duration::from_secs(1)));
    if estimate_bandwidth {
        config = config.enable_bwe(Some(str0m::bwe::Bitrate::kbps(1000)));
    }
    let mut rtc = config.build(now);
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a host candidate"));
    rtc
}

/// The input: a first byte choosing the kind of peer (WHIP publisher, WHEP viewer with or
/// without bandwidth estimation), the offer, then trickle fragments separated by a line `--`.
/// The bodies go where the relay sends them: the offer to str0m's SDP parser and answerer on
/// an `Rtc` set up as the relay's, each fragment read line by line as `Relay::trickle` reads
/// it (`a=candidate:` lines parsed by str0m and added, the rest skipped), then time passes.
///
/// It drives str0m, not the `Relay` itself, so that it does not break with the relay's
/// internal API (its config and routes change with sharding and media limits); the relay's
/// own handling of bodies is tested in `crates/media/tests/relay.rs`.
pub fn media_bodies(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut bodies = text.split("\n--\n");
    let offer = bodies.next().unwrap_or_default();
    // The simulcast layers an offer sends, as the relay reads them before answering.
    let _rids: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=rid:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let Ok(offer) = str0m::change::SdpOffer::from_sdp_string(offer) else {
        return;
    };
    let now = Instant::now();
    let mut rtc = relay_rtc(now, mode % 3 == 2);
    let Ok(answer) = rtc.sdp_api().accept_offer(offer) else {
        return;
    };
    let answer = answer.to_sdp_string();
    assert!(answer.starts_with("v=0"), "{answer}");
    for frag in bodies {
        for line in frag.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix("a=candidate:")
                && let Ok(c) = str0m::Candidate::from_sdp_string(&format!("candidate:{c}"))
            {
                rtc.add_remote_candidate(c);
            }
        }
    }
    let later = now + Duration::from_secs(1);
    let _ = rtc.handle_input(str0m::Input::Timeout(later));
    while let Ok(output) = rtc.poll_output() {
        if matches!(output, str0m::Output::Timeout(_)) {
            break;
        }
    }
}
