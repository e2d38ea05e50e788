//! What every backend refuses before writing, so all of them refuse the same values with the
//! same error naming the same field.
//!
//! Text columns hold neither NUL characters (PostgreSQL refuses them in `text` and `jsonb`)
//! nor values past the limits below; numbers must fit a signed 64-bit column.

use serde::Serialize;

use crate::{Error, Result};

/// Longest callback URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest short key (blob keys, node ids, token and password hashes), in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest free text that has no type of its own (a host error, an outbox error, a rule
/// pattern), in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest JSON document (a task snapshot, a playbook version), in bytes.
pub const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

/// Refuses a text with a NUL character or longer than `max` bytes, naming `field`.
pub fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} bytes, got {}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// [`text`] for an optional value.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| text(field, v, max))
}

/// Serializes `value` to JSON for the field `field`, refusing NUL characters anywhere in it
/// and documents larger than [`MAX_JSON_BYTES`].
pub fn json<T: Serialize + ?Sized>(field: &str, value: &T) -> Result<serde_json::Value> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::invalid(field, format!("cannot be encoded as JSON: {e}")))?;
    if text.len() > MAX_JSON_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_JSON_BYTES} bytes of JSON"),
        ));
    }
    if text.contains("\\u0000") {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    serde_json::from_str(&text)
        .map_err(|e| Error::invalid(field, format!("cannot be encoded as JSON: {e}")))
}

/// Converts an unsigned count to a signed 64-bit column value, naming `field` when it does
/// not fit.
pub fn i64_of(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::invalid(field, format!("must be at most {}, got {value}", i64::MAX)))
}

/// Converts a stored signed value back to an unsigned count, treating a negative one as a
/// corrupt row.
pub fn u64_of(field: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(field, "negative count"))
}

/// Converts a stored signed value back to a `u32`, treating an out-of-range one as a
/// corrupt row.
pub fn u32_of(field: &str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt(field, "out of range"))
}

/// The error for a stored row a backend cannot read back.
pub fn corrupt(field: &str, reason: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        reason: format!("stored `{field}` is unreadable: {reason}"),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        let err = text("error", "a\0b", MAX_TEXT_BYTES).unwrap_err();
        assert!(err.to_string().contains("invalid error"), "{err}");
        let err = json("task", &serde_json::json!({"p": "x\u{0}"})).unwrap_err();
        assert!(err.to_string().contains("invalid task"), "{err}");
    }

    #[test]
    fn long_values_are_refused_and_unicode_passes() {
        assert!(
            text(
                "callback_url",
                &"x".repeat(MAX_URL_BYTES + 1),
                MAX_URL_BYTES
            )
            .is_err()
        );
        assert!(text("name", "数据库 'quoted' \"double\" 🚀", 100).is_ok());
        assert!(i64_of("size", u64::MAX).is_err());
    }
}
