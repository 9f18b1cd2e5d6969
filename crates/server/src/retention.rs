//! Deletes meetings whose data is past the retention period (GDPR storage limitation).

use crate::App;
use std::sync::Arc;
use std::time::Duration;
use townhall_core::Timestamp;
use townhall_store::MeetingRecord;
use tracing::{info, warn};

const CHECK_EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: u64 = 86_400_000;

/// Checks every hour, when `retention_days` is set.
pub async fn run(app: Arc<App>) {
    if app.config.retention_days == 0 {
        return;
    }
    let mut every = tokio::time::interval(CHECK_EVERY);
    loop {
        every.tick().await;
        sweep(&app, app.hub.now()).await;
    }
}

/// Whether a meeting's data is past its retention period at `now`: `days` after it ended, or,
/// if it never ended (left scheduled or live), `unended_days` after it was created.
pub fn expired(m: &MeetingRecord, now: Timestamp, days: u32, unended_days: u32) -> bool {
    let older_than =
        |t: Timestamp, days: u32| days > 0 && now.0.saturating_sub(t.0) > u64::from(days) * DAY_MS;
    match m.ended_at {
        Some(ended) => older_than(ended, days),
        None => days > 0 && older_than(m.created_at, unended_days),
    }
}

/// Deletes every meeting past its retention period at `now` ([`expired`]); returns how many.
pub async fn sweep(app: &App, now: Timestamp) -> usize {
    let days = app.config.retention_days;
    let unended_days = app.config.retention_unended_days;
    if days == 0 {
        return 0;
    }
    let meetings = match app.hub.log().list_meetings().await {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "retention check could not list meetings");
            return 0;
        }
    };
    let mut deleted = 0;
    for m in meetings
        .into_iter()
        .filter(|m| expired(m, now, days, unended_days))
    {
        match app.hub.delete_meeting(&m.id).await {
            Ok(_) => {
                deleted += 1;
                info!(meeting_id = %m.id, days, "deleted meeting past its retention period");
            }
            Err(e) => warn!(meeting_id = %m.id, error = %e, "retention delete failed"),
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use townhall_core::command::{EndMeeting, StartMeeting};
    use townhall_core::{Actor, Command};

    #[tokio::test]
    async fn deletes_only_meetings_ended_longer_ago_than_the_retention_period() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some("retention-test-token".into()),
            retention_days: 30,
            ..Config::default()
        };
        // No relay: its default ports may be taken by another server on the machine.
        config.media.enabled = false;
        let (app, _) = crate::build(config).await.unwrap();
        let hub = &app.hub;
        let ended = hub
            .create_meeting("Afsluttet møde")
            .await
            .unwrap()
            .record
            .id;
        let live = hub
            .create_meeting("Igangværende møde")
            .await
            .unwrap()
            .record
            .id;
        hub.command(
            &ended,
            Actor::organizer(),
            Command::StartMeeting(StartMeeting),
        )
        .await
        .unwrap();
        hub.command(&ended, Actor::organizer(), Command::EndMeeting(EndMeeting))
            .await
            .unwrap();
        hub.command(
            &live,
            Actor::organizer(),
            Command::StartMeeting(StartMeeting),
        )
        .await
        .unwrap();
        let ended_at = hub
            .log()
            .meeting(&ended)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .unwrap();

        assert_eq!(sweep(&app, Timestamp(ended_at.0 + 29 * DAY_MS)).await, 0);
        assert_eq!(sweep(&app, Timestamp(ended_at.0 + 31 * DAY_MS)).await, 1);
        assert!(
            hub.log().meeting(&ended).await.unwrap().is_none(),
            "past retention: deleted"
        );
        assert!(
            hub.log().read(&ended, 0, 10).await.is_err(),
            "its log is gone too"
        );
        assert!(
            hub.log().meeting(&live).await.unwrap().is_some(),
            "a live meeting is kept"
        );
        // A meeting left live is deleted once it is older than `retention_unended_days`.
        let created = hub.log().meeting(&live).await.unwrap().unwrap().created_at;
        assert_eq!(sweep(&app, Timestamp(created.0 + 364 * DAY_MS)).await, 0);
        assert_eq!(sweep(&app, Timestamp(created.0 + 366 * DAY_MS)).await, 1);
        assert!(hub.log().meeting(&live).await.unwrap().is_none());
    }

    #[test]
    fn meetings_never_ended_expire_by_their_age_unless_kept() {
        let record = |ended: Option<u64>| MeetingRecord {
            id: townhall_core::MeetingId::parse("retention-m").unwrap(),
            title: "Møde".into(),
            status: townhall_core::MeetingStatus::Live,
            created_at: Timestamp(0),
            ended_at: ended.map(Timestamp),
            moderator_token_hash: String::new(),
            studio_token_hash: String::new(),
            last_offset: 2,
            schedule: None,
            publication: Default::default(),
        };
        let day = |d: u64| Timestamp(d * DAY_MS + 1);
        assert!(!expired(&record(None), day(40), 30, 365));
        assert!(expired(&record(None), day(366), 30, 365));
        assert!(!expired(&record(None), day(9999), 30, 0), "0 keeps them");
        assert!(!expired(&record(None), day(9999), 0, 365), "retention off");
        assert!(expired(&record(Some(DAY_MS)), day(32), 30, 365));
        assert!(!expired(&record(Some(DAY_MS)), day(30), 30, 365));
    }
}
