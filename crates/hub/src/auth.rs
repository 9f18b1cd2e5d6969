//! Identities and secrets: participant ids, signed sessions, secret link tokens.
//!
//! Citizens have no account: a participant id is random, and the server signs it (HMAC-SHA256)
//! so a client can prove it later (cookie or `hello.session`). Moderator and studio links carry
//! random 128-bit tokens; only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use townhall_core::ParticipantId;

type HmacSha256 = Hmac<Sha256>;

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh random participant id (128 bits, URL-safe).
pub fn new_participant_id() -> ParticipantId {
    ParticipantId::parse(random_token()).expect("base64url of 16 bytes is a valid id")
}

/// A fresh meeting id: 10 characters from a-z and 0-9 (about 51 bits), short enough to read
/// aloud, random enough not to be guessed.
pub fn new_meeting_id() -> townhall_core::MeetingId {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let id: String = (0..10)
        .map(|_| ALPHABET[(rng.next_u32() % 32) as usize] as char)
        .collect();
    townhall_core::MeetingId::parse(id).expect("alphabet is URL-safe")
}

/// A fresh secret link token (128 bits, URL-safe).
pub fn new_secret_token() -> String {
    random_token()
}

/// SHA-256 of a secret token, hex: what the store keeps.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` hashes to `hash`, comparing in constant time.
pub fn token_matches(token: &str, hash: &str) -> bool {
    let computed = hash_token(token);
    computed.len() == hash.len()
        && computed
            .bytes()
            .zip(hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Key that signs participant ids into session tokens.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, participant: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"townhall-session:");
        mac.update(participant.as_bytes());
        mac
    }

    /// `PARTICIPANT.SIGNATURE`, safe in a cookie and in JSON.
    pub fn sign(&self, participant: &ParticipantId) -> String {
        let sig = self.mac(participant.as_str()).finalize().into_bytes();
        format!("{participant}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The participant a session token was signed for, if the signature is ours.
    pub fn verify(&self, token: &str) -> Option<ParticipantId> {
        let (participant, sig) = token.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(participant).verify_slice(&sig).ok()?;
        ParticipantId::parse(participant).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_verify_only_with_the_key_that_signed_them() {
        let key = SessionKey::generate();
        let p = new_participant_id();
        let token = key.sign(&p);
        assert_eq!(key.verify(&token), Some(p.clone()));
        assert_eq!(SessionKey::generate().verify(&token), None);
        let forged = format!("someoneelse.{}", token.rsplit_once('.').unwrap().1);
        assert_eq!(key.verify(&forged), None);
        assert_eq!(key.verify("garbage"), None);
    }

    #[test]
    fn tokens_are_random_and_checked_by_hash() {
        let a = new_secret_token();
        assert_ne!(a, new_secret_token());
        assert_eq!(a.len(), 22);
        let h = hash_token(&a);
        assert!(token_matches(&a, &h));
        assert!(!token_matches("wrong", &h));
    }
}
