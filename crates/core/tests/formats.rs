//! The wire and stored formats, byte for byte: every command as a client sends it and every
//! event as the log stores it. A refactoring of the Rust types must leave these strings alone
//! (serde names, field order, optional fields), or old logs and old clients break.

use townhall_core::{Command, Recorded};

/// One of every command (and the optional fields both ways), as `serde_json` writes them.
const COMMANDS: &[&str] = &[
    r#"{"type":"set_name","name":"Anna"}"#,
    r#"{"type":"ask_question","text":"Hvornår?","anonymous":true}"#,
    r#"{"type":"ask_question","text":"Hvornår?","anonymous":false}"#,
    r#"{"type":"upvote","question":1}"#,
    r#"{"type":"retract_upvote","question":1}"#,
    r#"{"type":"post_comment","text":"Hej \"du\"\n"}"#,
    r#"{"type":"answer_poll","poll":2,"option":1}"#,
    r#"{"type":"approve_question","question":1}"#,
    r#"{"type":"reject_question","question":1,"reason":"off topic"}"#,
    r#"{"type":"merge_question","question":2,"into":1}"#,
    r#"{"type":"queue_question","question":3,"position":0}"#,
    r#"{"type":"queue_question","question":3,"position":null}"#,
    r#"{"type":"unqueue_question","question":3}"#,
    r#"{"type":"put_on_air","question":3}"#,
    r#"{"type":"mark_answered","question":3}"#,
    r#"{"type":"hide_comment","comment":4}"#,
    r#"{"type":"mute_participant","participant":"anna"}"#,
    r#"{"type":"unmute_participant","participant":"anna"}"#,
    r#"{"type":"ban_participant","participant":"anna"}"#,
    r#"{"type":"unban_participant","participant":"anna"}"#,
    r#"{"type":"set_slow_mode","seconds":30}"#,
    r#"{"type":"set_qa_open","open":false}"#,
    r#"{"type":"set_chat_open","open":true}"#,
    r#"{"type":"pin_announcement","text":"Pause til 19.30"}"#,
    r#"{"type":"open_poll","question":"Hvilken dag?","options":["Mandag","Tirsdag"]}"#,
    r#"{"type":"close_poll","poll":2}"#,
    r#"{"type":"create_meeting","title":"Borgermøde"}"#,
    r#"{"type":"start_meeting"}"#,
    r#"{"type":"end_meeting"}"#,
    r#"{"type":"schedule_meeting","starts_at":1760000000000,"ends_at":1760007200000,"time_zone":"Europe/Copenhagen","description":"Om skolen","agenda":["Velkomst","Spørgsmål"],"qa_before_start":true}"#,
    r#"{"type":"publish_record","record":true,"rejections":false,"comments":true,"replay":false}"#,
];

/// One of every event as the log stores it (the store adds its version around this).
const EVENTS: &[&str] = &[
    r#"{"offset":1,"at":1760000000000,"by":"organizer","type":"meeting_created","title":"Møde"}"#,
    r#"{"offset":2,"at":1760000000001,"by":"organizer","type":"meeting_started"}"#,
    r#"{"offset":3,"at":1760000000002,"by":"anna","type":"participant_renamed","name":"Anna"}"#,
    r#"{"offset":4,"at":1760000000003,"by":"anna","type":"participant_renamed","name":null}"#,
    r#"{"offset":5,"at":1760000000004,"by":"anna","type":"question_asked","question":1,"text":"Hvad?","anonymous":true,"author_name":null}"#,
    r#"{"offset":6,"at":1760000000005,"by":"anna","type":"question_asked","question":2,"text":"Hvor?","anonymous":false,"author_name":"Anna"}"#,
    r#"{"offset":7,"at":1760000000006,"by":"mod","type":"question_approved","question":1}"#,
    r#"{"offset":8,"at":1760000000007,"by":"mod","type":"question_rejected","question":2,"reason":"nej"}"#,
    r#"{"offset":9,"at":1760000000008,"by":"mod","type":"question_merged","question":2,"into":1}"#,
    r#"{"offset":10,"at":1760000000009,"by":"mod","type":"question_queued","question":1,"position":0}"#,
    r#"{"offset":11,"at":1760000000010,"by":"mod","type":"question_unqueued","question":1}"#,
    r#"{"offset":12,"at":1760000000011,"by":"mod","type":"question_on_air","question":1}"#,
    r#"{"offset":13,"at":1760000000012,"by":"mod","type":"question_answered","question":1}"#,
    r#"{"offset":14,"at":1760000000013,"by":"bo","type":"vote_cast","question":1}"#,
    r#"{"offset":15,"at":1760000000014,"by":"bo","type":"vote_retracted","question":1}"#,
    r#"{"offset":16,"at":1760000000015,"by":"bo","type":"comment_posted","comment":1,"text":"hej","author_name":"Bo"}"#,
    r#"{"offset":17,"at":1760000000016,"by":"mod","type":"comment_hidden","comment":1}"#,
    r#"{"offset":18,"at":1760000000017,"by":"mod","type":"participant_muted","participant":"bo"}"#,
    r#"{"offset":19,"at":1760000000018,"by":"mod","type":"participant_unmuted","participant":"bo"}"#,
    r#"{"offset":20,"at":1760000000019,"by":"mod","type":"participant_banned","participant":"bo"}"#,
    r#"{"offset":21,"at":1760000000020,"by":"mod","type":"participant_unbanned","participant":"bo"}"#,
    r#"{"offset":22,"at":1760000000021,"by":"mod","type":"slow_mode_set","seconds":30}"#,
    r#"{"offset":23,"at":1760000000022,"by":"mod","type":"qa_opened"}"#,
    r#"{"offset":24,"at":1760000000023,"by":"mod","type":"qa_closed"}"#,
    r#"{"offset":25,"at":1760000000024,"by":"mod","type":"chat_opened"}"#,
    r#"{"offset":26,"at":1760000000025,"by":"mod","type":"chat_closed"}"#,
    r#"{"offset":27,"at":1760000000026,"by":"mod","type":"announcement_pinned","text":"Pause"}"#,
    r#"{"offset":28,"at":1760000000027,"by":"mod","type":"announcement_pinned","text":null}"#,
    r#"{"offset":29,"at":1760000000028,"by":"mod","type":"poll_opened","poll":1,"question":"Dag?","options":["Man","Tir"]}"#,
    r#"{"offset":30,"at":1760000000029,"by":"bo","type":"poll_answered","poll":1,"option":1}"#,
    r#"{"offset":31,"at":1760000000030,"by":"mod","type":"poll_closed","poll":1}"#,
    r#"{"offset":32,"at":1760000000031,"by":"organizer","type":"meeting_ended"}"#,
    r#"{"offset":33,"at":1760000000032,"by":"organizer","type":"meeting_scheduled","starts_at":1760000000000,"ends_at":1760007200000,"time_zone":"Europe/Copenhagen","description":"Om skolen","agenda":["Velkomst"],"qa_before_start":false}"#,
    r#"{"offset":34,"at":1760000000033,"by":"organizer","type":"meeting_scheduled","starts_at":1760000000000,"ends_at":1760007200000,"time_zone":"Europe/Copenhagen","description":null,"agenda":[],"qa_before_start":true}"#,
    r#"{"offset":35,"at":1760000000034,"by":"organizer","type":"question_ended","question":1}"#,
    r#"{"offset":36,"at":1760000000035,"by":"organizer","type":"record_published","record":true,"rejections":true,"comments":false,"replay":false}"#,
];

#[test]
fn every_command_reads_and_writes_the_same_bytes() {
    let mut names = std::collections::BTreeSet::new();
    for json in COMMANDS {
        let cmd: Command = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(serde_json::to_string(&cmd).unwrap(), *json);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["type"], cmd.name(), "{json}");
        names.insert(cmd.name());
    }
    assert_eq!(names.len(), 29, "every command is covered");
}

#[test]
fn every_event_reads_and_writes_the_same_bytes() {
    let mut names = std::collections::BTreeSet::new();
    for json in EVENTS {
        let rec: Recorded = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(serde_json::to_string(&rec).unwrap(), *json);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["type"], rec.event.kind.name(), "{json}");
        names.insert(rec.event.kind.name());
    }
    assert_eq!(names.len(), 32, "every event is covered");
}

/// Absent optional fields read as their defaults; unknown fields and unknown types are refused.
#[test]
fn commands_are_read_strictly() {
    let parse = |s: &str| serde_json::from_str::<Command>(s);
    let reads_as = |short: &str, full: &str| {
        assert_eq!(parse(short).unwrap(), parse(full).unwrap(), "{short}");
    };
    reads_as(
        r#"{"type":"ask_question","text":"x"}"#,
        r#"{"type":"ask_question","text":"x","anonymous":false}"#,
    );
    reads_as(
        r#"{"type":"queue_question","question":3}"#,
        r#"{"type":"queue_question","question":3,"position":null}"#,
    );
    reads_as(
        r#"{"type":"publish_record","record":true}"#,
        r#"{"type":"publish_record","record":true,"rejections":false,"comments":false,"replay":false}"#,
    );
    reads_as(
        r#"{"type":"schedule_meeting","starts_at":1,"ends_at":2,"time_zone":"UTC"}"#,
        r#"{"type":"schedule_meeting","starts_at":1,"ends_at":2,"time_zone":"UTC","description":"","agenda":[],"qa_before_start":false}"#,
    );
    reads_as(
        r#"{"text":"x","type":"post_comment"}"#,
        r#"{"type":"post_comment","text":"x"}"#,
    );
    for bad in [
        r#"{"type":"upvote","question":1,"extra":true}"#,
        r#"{"type":"start_meeting","extra":true}"#,
        r#"{"type":"upvote"}"#,
        r#"{"type":"upvote","question":-1}"#,
        r#"{"type":"mute_participant","participant":"a b"}"#,
        r#"{"type":"no_such_command"}"#,
        r#"{"question":1}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad} was accepted");
    }
}
