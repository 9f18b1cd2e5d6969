//! Configuration: defaults, then the TOML file, then `TOWNHALL_*` environment variables, then
//! command-line flags. Validated once at start; `--print-config` shows the result.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use townhall_hub::HubConfig;
use townhall_media::MediaConfig;

pub use crate::brand::BrandConfig;
pub use crate::forwarded::ProxyNet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// fsync every commit: an acknowledged question survives a power cut.
    Full,
    /// fsync at checkpoints: survives a crash of townhall, not of the machine.
    Normal,
}

/// The whole configuration, as read from `townhall.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on for HTTP and WebSocket.
    pub listen: SocketAddr,
    /// Folder for the SQLite database and the server's own secrets.
    pub data_dir: PathBuf,
    /// Public base URL used in links (e.g. `https://moede.kommune.dk`); by default the
    /// request's own host.
    pub public_url: Option<String>,
    /// Token for the organizer API; generated at first start when not set.
    pub admin_token: Option<String>,
    pub log_format: LogFormat,
    pub durability: Durability,
    /// Other origins allowed to open WebSockets (the server's own origin always is).
    pub allowed_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind your own proxy).
    pub trust_proxy: bool,
    /// With `trust_proxy`: your proxies (addresses or CIDR ranges). The client is the
    /// right-most `X-Forwarded-For` entry not added by one of them, and only connections from
    /// them are read that way. Empty: the direct peer is the one proxy.
    pub trusted_proxies: Vec<ProxyNet>,
    /// Delete a meeting's data this many days after it ended; 0 keeps it.
    pub retention_days: u32,
    /// With `retention_days` set: delete a meeting that never ended (left scheduled or live)
    /// this many days after it was created; 0 keeps such meetings.
    pub retention_unended_days: u32,
    /// Time zone (IANA name) of new meetings and of local times in exports.
    pub time_zone: String,
    pub http: HttpConfig,
    /// Redis URL (`redis://[user:password@]host:port/db`): keep meetings in Redis and share
    /// them with the other nodes using it, instead of SQLite in the data dir.
    pub redis: Option<String>,
    /// First part of every Redis key: one deployment per prefix on a shared Redis.
    pub redis_prefix: String,
    /// This node's name among several (presence counts, logs); by default the host name with
    /// a random suffix, new at every start.
    pub node_id: Option<String>,
    pub hub: HubConfig,
    pub media: MediaConfig,
    /// The municipality's name, logo and accent colour on every page.
    pub brand: BrandConfig,
}

/// Limits of the HTTP listener (`[http]`): how long and how many connections a client may hold
/// before it sends anything the server would act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a connection has to send a request's headers, counted from connecting and from
    /// the end of the previous response: so also the idle timeout between requests.
    pub header_timeout_secs: u64,
    /// Seconds a request may take until its response starts, reading its body included.
    pub request_timeout_secs: u64,
    /// Open TCP connections (HTTP and WebSocket) from one address, checked at accept before
    /// anything is read. Connections from `trusted_proxies` are not counted.
    pub max_connections_per_ip: usize,
    /// Kernel send buffer of each connection, in bytes (Linux doubles it; 0 leaves the
    /// system's autotuning, which grows to megabytes). It bounds how much a client that stops
    /// reading holds in the kernel before its queue in the hub overflows and it is resynced,
    /// and how much stale data it must read before the snapshot that replaces it
    /// (docs/ARCHITECTURE.md, "The slow-reader stall").
    pub send_buffer_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            // Above hub.max_connections_per_ip (5000 WebSockets), with room for the page loads
            // of a town hall's office or a venue behind one NAT address.
            max_connections_per_ip: 10_000,
            send_buffer_bytes: 64 * 1024,
        }
    }
}

impl HttpConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    fn validate(&self) -> Result<(), String> {
        if self.send_buffer_bytes != 0 && self.send_buffer_bytes < 4096 {
            return Err("http.send_buffer_bytes must be 0 (the system's) or at least 4096".into());
        }
        for (name, v) in [
            ("http.header_timeout_secs", self.header_timeout_secs),
            ("http.request_timeout_secs", self.request_timeout_secs),
            (
                "http.max_connections_per_ip",
                self.max_connections_per_ip as u64,
            ),
        ] {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            public_url: None,
            admin_token: None,
            log_format: LogFormat::Pretty,
            durability: Durability::Full,
            allowed_origins: Vec::new(),
            trust_proxy: false,
            trusted_proxies: Vec::new(),
            retention_days: 0,
            retention_unended_days: 365,
            time_zone: "Europe/Copenhagen".into(),
            http: HttpConfig::default(),
            redis: None,
            redis_prefix: "townhall".into(),
            node_id: None,
            hub: HubConfig::default(),
            media: MediaConfig::default(),
            brand: BrandConfig::default(),
        }
    }
}

/// Flags of `townhall serve`; each also reads its `TOWNHALL_*` variable.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see README for the keys.
    #[arg(long, env = "TOWNHALL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TOWNHALL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Folder for the database and secrets [default: ./data].
    #[arg(long, env = "TOWNHALL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public base URL for links, e.g. https://moede.kommune.dk.
    #[arg(long, env = "TOWNHALL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Organizer API token (otherwise generated at first start and printed once).
    #[arg(
        long,
        env = "TOWNHALL_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Log format.
    #[arg(long, env = "TOWNHALL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// SQLite durability.
    #[arg(long, env = "TOWNHALL_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    /// Delete meeting data this many days after the meeting ended (0 keeps it).
    #[arg(long, env = "TOWNHALL_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// With retention on: delete a meeting that never ended this many days after it was
    /// created (0 keeps it).
    #[arg(long, env = "TOWNHALL_RETENTION_UNENDED_DAYS", value_name = "DAYS")]
    pub retention_unended_days: Option<u32>,
    /// Time zone of new meetings and exports [default: Europe/Copenhagen].
    #[arg(long, env = "TOWNHALL_TIME_ZONE", value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Keep meetings in Redis, shared with other nodes (instead of SQLite in the data dir).
    #[arg(
        long,
        env = "TOWNHALL_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// Prefix of every Redis key, one per deployment on a shared Redis [default: townhall].
    #[arg(long, env = "TOWNHALL_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// This node's name among several [default: host name + random suffix].
    #[arg(long, env = "TOWNHALL_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// Local address for live video (WebRTC); 0.0.0.0 binds every interface [default: 0.0.0.0].
    #[arg(long, env = "TOWNHALL_MEDIA_BIND_IP", value_name = "IP")]
    pub media_bind_ip: Option<IpAddr>,
    /// UDP port of the video relay, one for all viewers; 0 picks a free one [default: 50000].
    #[arg(long, env = "TOWNHALL_MEDIA_UDP_PORT", value_name = "PORT")]
    pub media_udp_port: Option<u16>,
    /// ICE-TCP port, the fallback where UDP is blocked; 0 picks a free one [default: 50000].
    #[arg(long, env = "TOWNHALL_MEDIA_TCP_PORT", value_name = "PORT")]
    pub media_tcp_port: Option<u16>,
    /// Public IP to announce for video behind 1:1 NAT (repeat for several).
    #[arg(
        long,
        env = "TOWNHALL_MEDIA_PUBLIC_IP",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub media_public_ip: Vec<IpAddr>,
    /// Relay shards (threads), each on its own UDP/TCP port from the media ports on; 0: one
    /// per core [default: 0].
    #[arg(long, env = "TOWNHALL_MEDIA_THREADS", value_name = "N")]
    pub media_threads: Option<usize>,
    /// Turn the live-video relay off (Q&A only).
    #[arg(long, env = "TOWNHALL_NO_MEDIA")]
    pub no_media: bool,
    /// Also create a live demo meeting and print its links.
    #[arg(long)]
    pub demo: bool,
    /// Print the resulting configuration and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// A configuration problem, reported with exit code 64.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// File, then flags/env (clap has already merged those two).
    pub fn load(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        if let Some(v) = args.listen {
            config.listen = v;
        }
        if let Some(v) = &args.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &args.public_url {
            config.public_url = Some(v.clone());
        }
        if let Some(v) = &args.admin_token {
            config.admin_token = Some(v.clone());
        }
        if let Some(v) = args.log_format {
            config.log_format = v;
        }
        if let Some(v) = args.durability {
            config.durability = v;
        }
        if let Some(v) = args.retention_days {
            config.retention_days = v;
        }
        if let Some(v) = args.retention_unended_days {
            config.retention_unended_days = v;
        }
        if let Some(v) = &args.time_zone {
            config.time_zone = v.clone();
        }
        if let Some(v) = &args.redis {
            config.redis = Some(v.clone());
        }
        if let Some(v) = &args.redis_prefix {
            config.redis_prefix = v.clone();
        }
        if let Some(v) = &args.node_id {
            config.node_id = Some(v.clone());
        }
        if config.node_id.is_none() {
            config.node_id = Some(default_node_id());
        }
        if let Some(v) = args.media_bind_ip {
            config.media.bind_ip = v;
        }
        if let Some(v) = args.media_udp_port {
            config.media.udp_port = v;
        }
        if let Some(v) = args.media_tcp_port {
            config.media.tcp_port = v;
        }
        if !args.media_public_ip.is_empty() {
            config.media.public_ips = args.media_public_ip.clone();
        }
        if let Some(v) = args.media_threads {
            config.media.threads = v;
        }
        if args.no_media {
            config.media.enabled = false;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url
            && (!(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "public_url must start with http:// or https:// and not end with '/': {url}"
            )));
        }
        if let Some(token) = &self.admin_token
            && token.len() < 16
        {
            return Err(ConfigError::Invalid(
                "admin_token must be at least 16 characters".into(),
            ));
        }
        if !self.trust_proxy && !self.trusted_proxies.is_empty() {
            return Err(ConfigError::Invalid(
                "trusted_proxies is set but trust_proxy is off: turn it on, or remove the list"
                    .into(),
            ));
        }
        if crate::calendar::zone(&self.time_zone).is_none() {
            return Err(ConfigError::Invalid(format!(
                "time_zone must be an IANA time zone name such as Europe/Copenhagen: {:?}",
                self.time_zone
            )));
        }
        self.http.validate().map_err(ConfigError::Invalid)?;
        if let Some(url) = &self.redis {
            townhall_store::check_redis_url(url)
                .map_err(|e| ConfigError::Invalid(format!("redis: {e}")))?;
        }
        if !valid_name(&self.redis_prefix) {
            return Err(ConfigError::Invalid(format!(
                "redis_prefix must be 1-64 letters, digits, '-', '_' or '.': {:?}",
                self.redis_prefix
            )));
        }
        if let Some(node) = &self.node_id
            && !valid_name(node)
        {
            return Err(ConfigError::Invalid(format!(
                "node_id must be 1-64 letters, digits, '-', '_' or '.': {node:?}"
            )));
        }
        self.hub.validate().map_err(ConfigError::Invalid)?;
        crate::brand::validate(&self.brand).map_err(ConfigError::Invalid)?;
        self.media.validate().map_err(ConfigError::Invalid)
    }

    /// The node id, or a fresh default for a config that was built without `load`.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(default_node_id)
    }

    /// The configuration as TOML, with secrets hidden.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.admin_token.is_some() {
            shown.admin_token = Some("<redacted>".into());
        }
        shown.redis = shown.redis.as_deref().map(townhall_store::redact_redis_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot show config: {e}"))
    }

    /// Whether cookies must be `Secure`.
    pub fn https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// Names that are safe in Redis keys, logs and metrics: 1-64 of `[A-Za-z0-9._-]`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The host name (cut to fit, odd characters replaced) and a random suffix, so two processes on
/// one host (or two containers with one name) never share an id.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    let suffix: String = townhall_hub::auth::new_secret_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    format!("{host}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("townhall.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nretention_days = 30\n[hub]\ntick_ms = 50\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            retention_days: Some(7),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.retention_days, 7);
        assert_eq!(c.hub.tick_ms, 50);
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("townhall.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::load(&ServeArgs {
            admin_token: Some("short".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("admin_token"));
    }

    #[test]
    fn proxies_and_http_limits_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("townhall.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(&ServeArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
        };
        let c = load(
            "trust_proxy = true\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n\
             [http]\nheader_timeout_secs = 5\n",
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.http.header_timeout_secs, 5);
        assert_eq!(c.http.max_connections_per_ip, 10_000);
        assert!(c.to_redacted_toml().contains("\"192.0.2.1\""));
        let err = load("trust_proxy = true\ntrusted_proxies = [\"proxy.lan\"]\n").unwrap_err();
        assert!(err.to_string().contains("proxy.lan"), "{err}");
        let err = load("trusted_proxies = [\"10.0.0.1\"]\n").unwrap_err();
        assert!(err.to_string().contains("trust_proxy"), "{err}");
        let err = load("[http]\nheader_timeout_secs = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("http.header_timeout_secs"),
            "{err}"
        );
    }

    #[test]
    fn print_config_hides_the_admin_token() {
        let c = Config {
            admin_token: Some("s3cret-s3cret-s3cret".into()),
            ..Config::default()
        };
        assert!(!c.to_redacted_toml().contains("s3cret"));
    }

    #[test]
    fn redis_settings_load_validate_and_hide_the_password() {
        let args = ServeArgs {
            redis: Some("redis://app:pw-s3cret@10.1.2.3:6379/2".into()),
            redis_prefix: Some("kommune-a".into()),
            node_id: Some("node-1".into()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.node_id.as_deref(), Some("node-1"));
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("pw-s3cret"), "{shown}");
        assert!(
            shown.contains("redis = \"redis://app:<redacted>@10.1.2.3:6379/2\""),
            "{shown}"
        );
        assert!(shown.contains("node_id = \"node-1\""), "{shown}");

        for (args, named) in [
            (
                ServeArgs {
                    redis: Some("http://x".into()),
                    ..Default::default()
                },
                "redis",
            ),
            (
                ServeArgs {
                    redis: Some("rediss://host".into()),
                    ..Default::default()
                },
                "TLS",
            ),
            (
                ServeArgs {
                    node_id: Some("a b".into()),
                    ..Default::default()
                },
                "node_id",
            ),
            (
                ServeArgs {
                    redis_prefix: Some("{x}".into()),
                    ..Default::default()
                },
                "redis_prefix",
            ),
        ] {
            let err = Config::load(&args).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn the_default_node_id_is_a_valid_name_and_new_each_time() {
        let c = Config::load(&ServeArgs::default()).unwrap();
        let id = c.node_id.clone().unwrap();
        assert!(valid_name(&id), "{id}");
        assert_ne!(default_node_id(), default_node_id());
    }
}
