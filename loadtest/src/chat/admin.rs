//! The organizer HTTP API calls the generator needs: create a meeting and start it.

use serde_json::{Value, json};
use std::time::Duration;

/// A live meeting the generator can join, with its moderator secret.
#[derive(Clone, Debug)]
pub struct Meeting {
    pub id: String,
    pub moderator_token: String,
}

/// The secret after `#` in a moderator or studio link.
pub fn fragment(url: &str) -> Option<&str> {
    url.rsplit_once('#')
        .map(|(_, f)| f)
        .filter(|f| !f.is_empty())
}

/// Creates a meeting through `POST /api/meetings` and starts it.
pub async fn create_live_meeting(
    base: &str,
    admin_token: &str,
    title: &str,
) -> anyhow::Result<Meeting> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let res = http
        .post(format!("{base}/api/meetings"))
        .bearer_auth(admin_token)
        .json(&json!({ "title": title }))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 201 {
        anyhow::bail!("creating a meeting at {base} failed: HTTP {status} {body}");
    }
    let id = body["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no meeting id: {body}"))?
        .to_owned();
    let moderator_token = body["moderator_url"]
        .as_str()
        .and_then(fragment)
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no moderator link: {body}"))?
        .to_owned();
    let res = http
        .post(format!("{base}/api/meetings/{id}/start"))
        .bearer_auth(admin_token)
        .send()
        .await?;
    if !res.status().is_success() {
        let status = res.status();
        anyhow::bail!(
            "starting meeting {id} failed: HTTP {status} {}",
            res.text().await.unwrap_or_default()
        );
    }
    Ok(Meeting {
        id,
        moderator_token,
    })
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
