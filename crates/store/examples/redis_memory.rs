//! How much Redis memory a meeting takes: builds meetings of a realistic mix of events in a
//! fresh key prefix, reports `MEMORY USAGE` of their keys, and deletes them again.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p townhall-store --example redis_memory
//! ```

use townhall_core::event::{
    CommentPosted, QuestionApproved, QuestionAsked, QuestionQueued, VoteCast,
};
use townhall_core::{
    CommentId, Event, EventKind, MeetingId, MeetingStatus, ParticipantId, QuestionId, Timestamp,
};
use townhall_store::{EventLog, MeetingRecord, RedisConfig, RedisLog};

/// One event of a busy meeting's mix: per 100 events, 5 questions (about 120 characters),
/// 60 votes, 25 comments (about 70 characters) and 10 moderation steps.
fn event(i: u64) -> Event {
    let by = ParticipantId::parse(format!("p{:020}", i % 5_000)).expect("valid id");
    let q = QuestionId(i / 20 + 1);
    let kind = match i % 100 {
        0..=4 => EventKind::QuestionAsked(QuestionAsked {
            question: q,
            text: "Hvornår bliver der bygget den nye cykelsti langs Usserød Kongevej, og hvem \
                   betaler for vedligeholdelsen?"
                .into(),
            anonymous: i.is_multiple_of(3),
            author_name: (!i.is_multiple_of(3)).then(|| "Karen Jensen".to_owned()),
        }),
        5..=64 => EventKind::VoteCast(VoteCast { question: q }),
        65..=89 => EventKind::CommentPosted(CommentPosted {
            comment: CommentId(i),
            text: "Godt spørgsmål, det har vi også undret os over i vores grundejerforening."
                .into(),
            author_name: Some("Ole".into()),
        }),
        90..=94 => EventKind::QuestionApproved(QuestionApproved { question: q }),
        _ => EventKind::QuestionQueued(QuestionQueued {
            question: q,
            position: 0,
        }),
    };
    Event {
        at: Timestamp(1_760_000_000_000 + i * 250),
        by,
        kind,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("th-memory-{}", std::process::id());
    let log = RedisLog::connect(&RedisConfig::new(&url).with_prefix(&prefix)).await?;
    println!("| events | batch | MEMORY USAGE | bytes per event | stored JSON per event |");
    println!("|---:|---:|---:|---:|---:|");
    for (events, batch) in [
        (0u64, 1u64),
        (1_000, 20),
        (10_000, 20),
        (100_000, 20),
        (10_000, 1),
    ] {
        let id = MeetingId::parse(format!("m{events}x{batch}"))?;
        let record = MeetingRecord {
            id: id.clone(),
            title: "Borgermøde om skolestrukturen".into(),
            status: MeetingStatus::Live,
            created_at: Timestamp(1_760_000_000_000),
            ended_at: None,
            moderator_token_hash: "a".repeat(64),
            studio_token_hash: "b".repeat(64),
            last_offset: 0,
            schedule: None,
            publication: Default::default(),
        };
        let mut last = log.create_meeting(&record, &[]).await?;
        let mut json_bytes = 0;
        let mut i = 0;
        while i < events {
            let chunk: Vec<Event> = (i..(i + batch).min(events)).map(event).collect();
            json_bytes += chunk
                .iter()
                .map(|e| serde_json::to_string(e).map(|s| s.len() + 6))
                .sum::<Result<usize, _>>()?;
            i += chunk.len() as u64;
            last = log.append(&id, last, &chunk).await?;
        }
        let bytes = log.memory_usage(&id).await?;
        let per = |n: u64| n.checked_div(events).map_or("–".into(), |v| v.to_string());
        println!(
            "| {events} | {batch} | {bytes} B ({:.1} MiB) | {} | {} |",
            bytes as f64 / 1_048_576.0,
            per(bytes),
            per(json_bytes as u64),
        );
    }
    log.delete_everything().await?;
    Ok(())
}
