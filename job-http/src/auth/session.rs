//! Stateless signed session cookies, their CSRF tokens and the per-node list of sessions
//! ended by logout.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use job_core::ids::UserId;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const FINGERPRINT_LEN: usize = 8;
const PAYLOAD_LEN: usize = 1 + 16 + 8 + NONCE_LEN + FINGERPRINT_LEN;

/// A valid session, as read from its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) user_id: UserId,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) nonce: [u8; NONCE_LEN],
    fingerprint: [u8; FINGERPRINT_LEN],
}

/// The session key and the sessions this node saw logged out.
pub(crate) struct SessionKeys {
    key: [u8; 32],
    /// Nonces of logged-out sessions, with their expiry (after which the cookie is refused
    /// anyway and the entry can go).
    revoked: Mutex<HashMap<[u8; NONCE_LEN], DateTime<Utc>>>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(******)")
    }
}

impl SessionKeys {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label);
        mac.update(&[0]);
        for p in parts {
            mac.update(p);
        }
        mac
    }

    /// A short keyed fingerprint of a password hash: a new password makes old cookies
    /// invalid, and the cookie reveals nothing about the hash.
    fn fingerprint(&self, password_hash: &str) -> [u8; FINGERPRINT_LEN] {
        let full = self
            .mac(b"password", &[password_hash.as_bytes()])
            .finalize()
            .into_bytes();
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&full[..FINGERPRINT_LEN]);
        fp
    }

    /// A new session for `user_id` until `expires_at`, and its cookie value.
    pub(crate) fn issue(
        &self,
        user_id: UserId,
        password_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> (Session, String) {
        let session = Session {
            user_id,
            expires_at,
            nonce: super::random_bytes::<NONCE_LEN>(),
            fingerprint: self.fingerprint(password_hash),
        };
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.push(VERSION);
        payload.extend_from_slice(user_id.as_uuid().as_bytes());
        payload.extend_from_slice(&expires_at.timestamp().to_be_bytes());
        payload.extend_from_slice(&session.nonce);
        payload.extend_from_slice(&session.fingerprint);
        let tag = self.mac(b"session", &[&payload]).finalize().into_bytes();
        let cookie = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        );
        (session, cookie)
    }

    /// The session in a cookie value, if it is authentic, unexpired at `now` and not
    /// logged out. The user's current password hash is checked separately with
    /// [`SessionKeys::matches_password`].
    pub(crate) fn verify(&self, cookie: &str, now: DateTime<Utc>) -> Option<Session> {
        let (payload, tag) = cookie.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(b"session", &[&payload]).verify_slice(&tag).ok()?;
        if payload.len() != PAYLOAD_LEN || payload[0] != VERSION {
            return None;
        }
        let user = uuid_from(&payload[1..17])?;
        let expiry = i64::from_be_bytes(payload[17..25].try_into().ok()?);
        let expires_at = DateTime::<Utc>::from_timestamp(expiry, 0)?;
        let nonce: [u8; NONCE_LEN] = payload[25..25 + NONCE_LEN].try_into().ok()?;
        let fingerprint: [u8; FINGERPRINT_LEN] = payload[25 + NONCE_LEN..].try_into().ok()?;
        if now >= expires_at || self.is_revoked(&nonce) {
            return None;
        }
        Some(Session {
            user_id: UserId::from_uuid(user),
            expires_at,
            nonce,
            fingerprint,
        })
    }

    /// Whether the session was issued for the user's current password.
    pub(crate) fn matches_password(&self, session: &Session, password_hash: &str) -> bool {
        // Compare in constant time, as a MAC.
        let expected = self.fingerprint(password_hash);
        expected
            .iter()
            .zip(session.fingerprint.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The CSRF token of a session: HMAC(key, "csrf" ‖ nonce), hex.
    pub(crate) fn csrf_token(&self, session: &Session) -> String {
        hex::encode(self.mac(b"csrf", &[&session.nonce]).finalize().into_bytes())
    }

    /// Whether `given` is the CSRF token of `session` (constant-time).
    pub(crate) fn csrf_matches(&self, session: &Session, given: &str) -> bool {
        let Ok(given) = hex::decode(given.trim()) else {
            return false;
        };
        self.mac(b"csrf", &[&session.nonce])
            .verify_slice(&given)
            .is_ok()
    }

    /// Ends a session on this node until it would have expired anyway.
    pub(crate) fn revoke(&self, session: &Session, now: DateTime<Utc>) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.retain(|_, until| *until > now);
        revoked.insert(session.nonce, session.expires_at);
    }

    fn is_revoked(&self, nonce: &[u8; NONCE_LEN]) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(nonce)
    }
}

fn uuid_from(bytes: &[u8]) -> Option<uuid::Uuid> {
    uuid::Uuid::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new([7; 32])
    }

    #[test]
    fn a_cookie_verifies_until_it_expires_or_is_logged_out() {
        let k = keys();
        let now = Utc::now();
        let user = UserId::new();
        let (s, cookie) = k.issue(user, "$argon2id$hash", now + Duration::hours(1));
        let got = k.verify(&cookie, now).unwrap();
        assert_eq!(got.user_id, user);
        assert!(k.matches_password(&got, "$argon2id$hash"));
        assert!(!k.matches_password(&got, "$argon2id$other"));
        assert!(k.verify(&cookie, now + Duration::hours(2)).is_none());
        k.revoke(&s, now);
        assert!(k.verify(&cookie, now).is_none());
    }

    #[test]
    fn a_tampered_cookie_or_another_key_is_refused() {
        let k = keys();
        let now = Utc::now();
        let (_, cookie) = k.issue(UserId::new(), "h", now + Duration::hours(1));
        let mut bytes = cookie.clone().into_bytes();
        bytes[3] ^= 1;
        assert!(k.verify(&String::from_utf8(bytes).unwrap(), now).is_none());
        assert!(SessionKeys::new([8; 32]).verify(&cookie, now).is_none());
        assert!(k.verify("garbage", now).is_none());
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let k = keys();
        let now = Utc::now();
        let (a, _) = k.issue(UserId::new(), "h", now + Duration::hours(1));
        let (b, _) = k.issue(UserId::new(), "h", now + Duration::hours(1));
        let t = k.csrf_token(&a);
        assert!(k.csrf_matches(&a, &t));
        assert!(!k.csrf_matches(&b, &t));
        assert!(!k.csrf_matches(&a, "zz"));
    }
}
