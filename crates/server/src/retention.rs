//! Deletes meetings whose data is past the retention period (GDPR storage limitation).

use crate::App;
use std::sync::Arc;
use std::time::Duration;
use townhall_core::Timestamp;
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

/// Deletes every meeting that ended more than `retention_days` before `now`; returns how many.
pub async fn sweep(app: &App, now: Timestamp) -> usize {
    let days = app.config.retention_days;
    if days == 0 {
        return 0;
    }
    let cutoff = now.0.saturating_sub(u64::from(days) * DAY_MS);
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
        .filter(|m| m.ended_at.is_some_and(|t| t.0 < cutoff))
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
    }
}
