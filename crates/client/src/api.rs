//! The organizer API calls tests and the load tester need: create a meeting, start it, and read
//! the secrets out of its links.

use serde_json::{Value, json};

/// A meeting created through `POST /api/meetings`, with the secrets of its links.
#[derive(Clone, Debug)]
pub struct CreatedMeeting {
    pub id: String,
    pub moderator_token: String,
    pub studio_token: String,
}

/// Why an organizer API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the server's answer has no {0}")]
    Answer(&'static str),
}

/// The secret after `#` in a moderator or studio link.
pub fn fragment(url: &str) -> Option<&str> {
    url.rsplit_once('#')
        .map(|(_, f)| f)
        .filter(|f| !f.is_empty())
}

/// `POST /api/meetings` with the admin token: a scheduled meeting.
pub async fn create_meeting(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    title: &str,
) -> Result<CreatedMeeting, ApiError> {
    let res = http
        .post(format!("{base}/api/meetings"))
        .bearer_auth(admin_token)
        .json(&json!({ "title": title }))
        .send()
        .await?;
    let status = res.status().as_u16();
    if status != 201 {
        let body = res.text().await.unwrap_or_default();
        return Err(ApiError::Status { status, body });
    }
    let body: Value = res.json().await?;
    let secret = |key: &'static str| {
        body[key]
            .as_str()
            .and_then(fragment)
            .map(str::to_owned)
            .ok_or(ApiError::Answer(key))
    };
    Ok(CreatedMeeting {
        id: body["id"]
            .as_str()
            .ok_or(ApiError::Answer("id"))?
            .to_owned(),
        moderator_token: secret("moderator_url")?,
        studio_token: secret("studio_url")?,
    })
}

/// `POST /api/meetings/{id}/start` with the admin token.
pub async fn start_meeting(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    id: &str,
) -> Result<(), ApiError> {
    let res = http
        .post(format!("{base}/api/meetings/{id}/start"))
        .bearer_auth(admin_token)
        .send()
        .await?;
    let status = res.status().as_u16();
    if status != 200 {
        let body = res.text().await.unwrap_or_default();
        return Err(ApiError::Status { status, body });
    }
    Ok(())
}

/// Creates a meeting and starts it.
pub async fn create_live_meeting(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    title: &str,
) -> Result<CreatedMeeting, ApiError> {
    let meeting = create_meeting(http, base, admin_token, title).await?;
    start_meeting(http, base, admin_token, &meeting.id).await?;
    Ok(meeting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_is_the_secret_after_the_hash() {
        assert_eq!(fragment("http://h/m/x/moderate#abc"), Some("abc"));
        assert_eq!(fragment("http://h/m/x/moderate#"), None);
        assert_eq!(fragment("http://h/m/x"), None);
    }
}
