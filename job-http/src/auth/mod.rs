//! Authentication: argon2id password hashes, API token secrets, signed session cookies with
//! CSRF tokens, and the `Caller` extractor that turns a request into a
//! `job_core::model::Actor`.
//!
//! - **Sessions** are stateless: the `jobd_session` cookie holds the user id, the expiry, a
//!   random nonce and a short keyed fingerprint of the user's password hash, signed with
//!   HMAC-SHA256 under the session key. Changing the password ends every session of the
//!   user; disabling the user refuses them. Logging out remembers the nonce as revoked in
//!   memory until it expires — per node: another `jobd` node sharing the key still accepts
//!   the cookie until its expiry (the client deletes it, so this matters only for a stolen
//!   cookie).
//! - **CSRF**: a cookie-authenticated `POST`/`PUT`/`PATCH`/`DELETE` must carry the header
//!   `X-CSRF-Token` equal to HMAC(session key, `"csrf"` ‖ nonce), returned at login, by
//!   `GET /api/v1/auth/me` and in the readable cookie `jobd_csrf`.
//! - **API tokens** (`Authorization: Bearer <t>` or `Api-Authorization: <t>`) are looked up
//!   by the SHA-256 of their secret; they need no CSRF token.

pub(crate) mod caller;
mod session;

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub(crate) use session::{Session, SessionKeys};

/// Name of the session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "jobd_session";
/// Name of the cookie that holds the CSRF token for scripts of the console (not HttpOnly).
pub const CSRF_COOKIE: &str = "jobd_csrf";
/// The header a cookie-authenticated write must carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Prefix of every API token secret, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "jobd_";

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
///
/// This is slow on purpose (tens of milliseconds); async callers run it in
/// `spawn_blocking`.
pub fn hash_password(password: &str) -> job_core::Result<String> {
    if password.is_empty() {
        return Err(job_core::Error::invalid("password", "must not be empty"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| job_core::Error::invalid("password", format!("could not be hashed: {e}")))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed `phc`).
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A new API token: the secret (shown once to its owner, `jobd_` + 43 base64url
/// characters of 256 random bits) and its SHA-256 hex, which is all that is stored.
pub fn new_api_token() -> (String, String) {
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    );
    let hash = token_hash(&secret);
    (secret, hash)
}

/// The SHA-256 hex of a token secret, as stored and looked up.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// A hash that verifies nothing, checked for unknown users so that a login attempt takes
/// as long whether or not the user exists.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&URL_SAFE_NO_PAD.encode(random_bytes::<16>())).unwrap_or_default()
    })
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        // Without randomness no secret can be made safely; this is not recoverable.
        panic!("the operating system's random source failed: {e}");
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsf", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert!(hash_password("").is_err());
    }

    #[test]
    fn token_secrets_are_random_and_stored_only_as_their_hash() {
        let (a, ha) = new_api_token();
        let (b, hb) = new_api_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        assert_eq!(ha, token_hash(&a));
        assert_eq!(hb.len(), 64);
        assert!(!ha.contains(&a));
    }
}
