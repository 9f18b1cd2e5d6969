//! Key and channel names. Every key of one meeting carries the meeting id as a hash tag
//! (`{id}`), so a script that touches them all runs on one shard of a Redis Cluster, and meetings
//! spread over the shards. Nothing else is ever used together with a meeting's keys.

use townhall_core::MeetingId;

/// Names under one prefix (one deployment; tests take one each).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

/// The keys of one meeting.
#[derive(Clone, Debug)]
pub(crate) struct MeetingKeys {
    /// Hash: the meeting's record (title, status, token hashes, last offset, times).
    pub meta: String,
    /// Stream: the events, entry id `<offset>-0`, fields `e` (stored event) and `b` (batch id).
    pub log: String,
    /// Hash: node → `count:expires_at_ms`.
    pub presence: String,
    /// Pub/sub channel of committed batches (not a key; named alike for sharded pub/sub).
    pub channel: String,
}

impl Keys {
    /// Fails on a prefix that would break the hash tags or the names.
    pub(crate) fn new(prefix: &str) -> Result<Self, String> {
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(format!(
                "redis key prefix must be 1-64 characters of letters, digits, '-', '_', '.', ':': \
                 {prefix:?}"
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn meeting(&self, id: &MeetingId) -> MeetingKeys {
        let base = format!("{}:{{{}}}", self.prefix, id.as_str());
        MeetingKeys {
            meta: format!("{base}:meeting"),
            log: format!("{base}:log"),
            presence: format!("{base}:presence"),
            channel: format!("{base}:events"),
        }
    }

    /// Sorted set of meeting ids by creation time: what `list_meetings` walks. A hint only: a
    /// meeting exists when its record does.
    pub(crate) fn index(&self) -> String {
        format!("{}:meetings", self.prefix)
    }

    /// A value the nodes share (the session signing key, the admin token's hash).
    pub(crate) fn shared(&self, name: &str) -> String {
        format!("{}:shared:{name}", self.prefix)
    }

    /// Every key under this prefix (for tests that clean up after themselves).
    pub(crate) fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: the part between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = key[open + 1..].find('}')? + open + 1;
        (close > open + 1).then(|| &key[open + 1..close])
    }

    #[test]
    fn a_meetings_keys_share_one_hash_tag() {
        let keys = Keys::new("townhall").expect("valid prefix");
        let id = MeetingId::parse("a1-B_2").expect("valid id");
        let m = keys.meeting(&id);
        for key in [&m.meta, &m.log, &m.presence, &m.channel] {
            assert_eq!(hash_tag(key), Some("a1-B_2"), "{key}");
            assert!(key.starts_with("townhall:"), "{key}");
        }
        let names = [&m.meta, &m.log, &m.presence, &m.channel];
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(hash_tag(&keys.index()), None);
        assert_eq!(hash_tag(&keys.shared("session-key")), None);
    }

    #[test]
    fn prefixes_that_would_break_the_tags_are_refused() {
        for bad in ["", "a{b", "a}b", "a b", &"x".repeat(65)] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
        assert!(Keys::new("th-test_1.2:x").is_ok());
    }
}
