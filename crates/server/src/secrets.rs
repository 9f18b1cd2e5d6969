//! The server's own secrets in the data dir: the session signing key and the admin token hash,
//! and the private files and folder everything in the data dir is created as (0600, 0700).

use std::io::Write;
use std::path::Path;
use townhall_hub::auth::{self, SessionKey};

const SESSION_KEY_FILE: &str = "session.key";
const ADMIN_HASH_FILE: &str = "admin-token.sha256";

/// Creates `dir` (and its parents) readable only by the server's user; an existing folder is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates an empty `path` readable only by the server's user, unless it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Loads the key that signs session cookies, creating it at first start.
pub fn session_key(data_dir: &Path) -> anyhow::Result<SessionKey> {
    let path = data_dir.join(SESSION_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{} is damaged (expected 32 bytes); delete it to sign out everyone",
                    path.display()
                )
            })?;
            Ok(SessionKey::from_bytes(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SessionKey::generate();
            write_private(&path, key.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// How the admin token is known.
#[derive(Debug)]
pub struct AdminToken {
    pub hash: String,
    /// Set only when the token was generated just now: to be printed once.
    pub generated: Option<String>,
}

/// The configured admin token, or the one generated at first start (only its hash is kept).
pub fn admin_token(data_dir: &Path, configured: Option<&str>) -> anyhow::Result<AdminToken> {
    if let Some(token) = configured {
        return Ok(AdminToken {
            hash: auth::hash_token(token),
            generated: None,
        });
    }
    let path = data_dir.join(ADMIN_HASH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(hash) => Ok(AdminToken {
            hash: hash.trim().to_owned(),
            generated: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = auth::new_secret_token();
            write_private(&path, auth::hash_token(&token).as_bytes())?;
            Ok(AdminToken {
                hash: auth::hash_token(&token),
                generated: Some(token),
            })
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}
