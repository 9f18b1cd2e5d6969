//! Deletes meetings whose data is past the retention period (GDPR storage limitation).

use crate::App;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

const CHECK_EVERY: Duration = Duration::from_secs(3600);

pub async fn run(app: Arc<App>) {
    let days = app.config.retention_days;
    if days == 0 {
        return;
    }
    let mut every = tokio::time::interval(CHECK_EVERY);
    loop {
        every.tick().await;
        let cutoff = app.hub.now().0.saturating_sub(u64::from(days) * 86_400_000);
        let meetings = match app.hub.log().list_meetings().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "retention check could not list meetings");
                continue;
            }
        };
        for m in meetings
            .into_iter()
            .filter(|m| m.ended_at.is_some_and(|t| t.0 < cutoff))
        {
            match app.hub.delete_meeting(&m.id).await {
                Ok(_) => {
                    info!(meeting_id = %m.id, days, "deleted meeting past its retention period")
                }
                Err(e) => warn!(meeting_id = %m.id, error = %e, "retention delete failed"),
            }
        }
    }
}
