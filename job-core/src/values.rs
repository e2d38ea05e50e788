//! Values checked once at the edge.
//!
//! Each type here can only hold a valid value: it is built by a constructor that names the
//! field and the reason when it refuses, and from then on nothing inside re-checks it.
//! Deserializing goes through the same constructors, so a JSON body or a row read back from a
//! store can never smuggle in an invalid value.

use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result};

pub use crate::callback::CallbackUrl;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Implements `Deserialize` through a `TryFrom<Raw>` constructor whose error is [`Error`].
macro_rules! deserialize_via {
    ($ty:ty, $raw:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = <$raw>::deserialize(d)?;
                <$ty>::try_from(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A display name: 1–128 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let v = value.trim();
        if v.is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if v.chars().count() > Self::MAX_CHARS {
            return Err(Error::invalid(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if has_control(v) {
            return Err(Error::invalid(field, "must not contain control characters"));
        }
        Ok(Self(v.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("name", &v)
    }
}
deserialize_via!(Name, String);

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text such as a description: at most 4,096 characters; newlines and tabs allowed,
/// other control characters refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Longest accepted description, in characters.
    pub const MAX_CHARS: usize = 4096;

    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Error::invalid(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(Error::invalid(field, "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Description {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("description", &v)
    }
}
deserialize_via!(Description, String);

/// How many days a staged file is kept: 1–365, 7 by default. There is no "keep forever".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ExpireDays(u16);

impl ExpireDays {
    /// The default retention.
    pub const DEFAULT: Self = Self(7);
    /// Shortest retention.
    pub const MIN: u16 = 1;
    /// Longest retention.
    pub const MAX: u16 = 365;

    /// Checks `days` as the field `field`.
    pub fn new(field: &str, days: i64) -> Result<Self> {
        if !(i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&days) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be between {} and {} days, got {days}",
                    Self::MIN,
                    Self::MAX
                ),
            ));
        }
        Ok(Self(days as u16))
    }

    /// The number of days.
    pub fn days(self) -> u16 {
        self.0
    }
}

impl Default for ExpireDays {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for ExpireDays {
    type Error = Error;
    fn try_from(v: i64) -> Result<Self> {
        Self::new("expire_days", v)
    }
}
deserialize_via!(ExpireDays, i64);

/// A run's timeout: 1–86,400 seconds (one day), 600 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TimeoutSecs(u32);

impl TimeoutSecs {
    /// The default timeout.
    pub const DEFAULT: Self = Self(600);
    /// Shortest timeout.
    pub const MIN: u32 = 1;
    /// Longest timeout.
    pub const MAX: u32 = 86_400;

    /// Checks `secs` as the field `field`.
    pub fn new(field: &str, secs: i64) -> Result<Self> {
        if !(i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&secs) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be between {} and {} seconds, got {secs}",
                    Self::MIN,
                    Self::MAX
                ),
            ));
        }
        Ok(Self(secs as u32))
    }

    /// The timeout in seconds.
    pub fn secs(self) -> u32 {
        self.0
    }

    /// The timeout as a duration.
    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.0))
    }
}

impl Default for TimeoutSecs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for TimeoutSecs {
    type Error = Error;
    fn try_from(v: i64) -> Result<Self> {
        Self::new("timeout", v)
    }
}
deserialize_via!(TimeoutSecs, i64);

/// A TCP port, 1–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    /// The SSH default, 22.
    pub const SSH: Self = Self(22);

    /// Checks `port` as the field `field`.
    pub fn new(field: &str, port: i64) -> Result<Self> {
        match u16::try_from(port) {
            Ok(p) if p != 0 => Ok(Self(p)),
            _ => Err(Error::invalid(
                field,
                format!("must be a port between 1 and 65535, got {port}"),
            )),
        }
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Port {
    type Error = Error;
    fn try_from(v: i64) -> Result<Self> {
        Self::new("port", v)
    }
}
deserialize_via!(Port, i64);

/// A host address: an IPv4 or IPv6 address, or a DNS host name (RFC 1123 labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let v = value.trim();
        if let Ok(ip) = v
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Self(ip.to_string()));
        }
        let bad = || {
            Error::invalid(
                field,
                format!("`{v}` is neither an IP address nor a host name"),
            )
        };
        if v.is_empty() || v.len() > 253 {
            return Err(bad());
        }
        let host = v.strip_suffix('.').unwrap_or(v);
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(bad());
            }
        }
        Ok(Self(host.to_ascii_lowercase()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as an IP, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }
}

impl TryFrom<String> for Address {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("address", &v)
    }
}
deserialize_via!(Address, String);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name for users: 1–64 of `A–Z a–z 0–9 _ . @ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
            && value.as_bytes()[0].is_ascii_alphanumeric();
        if !ok {
            return Err(Error::invalid(
                field,
                "must be 1-64 characters of letters, digits, `_ . @ -`, starting with a letter or digit",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("username", &v)
    }
}
deserialize_via!(Username, String);

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A target tag, `key=value`. Keys are 1–63 of `A–Z a–z 0–9 _ . / -`; values are at most
/// 255 characters without control characters (they may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    key: String,
    value: String,
}

impl Tag {
    /// Builds a tag from its parts, naming `field` on refusal.
    pub fn new(field: &str, key: &str, value: &str) -> Result<Self> {
        let key_ok = (1..=63).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b));
        if !key_ok {
            return Err(Error::invalid(
                field,
                format!("tag key `{key}` must be 1-63 characters of letters, digits, `_ . / -`"),
            ));
        }
        if value.chars().count() > 255 || has_control(value) {
            return Err(Error::invalid(
                field,
                format!(
                    "tag `{key}` value must be at most 255 characters without control characters"
                ),
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// Parses `key=value` (a bare `key` means an empty value).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let (k, v) = text.split_once('=').unwrap_or((text, ""));
        Self::new(field, k.trim(), v.trim())
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl TryFrom<String> for Tag {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("tags", &v)
    }
}
deserialize_via!(Tag, String);

/// A list that holds at least one and at most `MAX` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NonEmpty<T>(Vec<T>);

impl<T> NonEmpty<T> {
    /// The most items a list may hold (a fleet of this many hosts in one run is the ceiling).
    pub const MAX: usize = 100_000;

    /// Checks `items` as the field `field`.
    pub fn new(field: &str, items: Vec<T>) -> Result<Self> {
        if items.is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if items.len() > Self::MAX {
            return Err(Error::invalid(
                field,
                format!("must hold at most {} items, got {}", Self::MAX, items.len()),
            ));
        }
        Ok(Self(items))
    }

    /// The first item (there always is one).
    pub fn first(&self) -> &T {
        &self.0[0]
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The items, owned.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T> Deref for NonEmpty<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> TryFrom<Vec<T>> for NonEmpty<T> {
    type Error = Error;
    fn try_from(v: Vec<T>) -> Result<Self> {
        Self::new("items", v)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = Vec::<T>::deserialize(d)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A script body: not blank, at most 1 MiB, no NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ScriptContent(String);

impl ScriptContent {
    /// Largest accepted script, in bytes.
    pub const MAX_BYTES: usize = 1024 * 1024;

    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        if value.trim().is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if value.len() > Self::MAX_BYTES {
            return Err(Error::invalid(
                field,
                format!(
                    "must be at most {} bytes, got {}",
                    Self::MAX_BYTES,
                    value.len()
                ),
            ));
        }
        if value.contains('\0') {
            return Err(Error::invalid(field, "must not contain NUL bytes"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The script text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScriptContent {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("script_content", &v)
    }
}
deserialize_via!(ScriptContent, String);

/// A lowercase hex SHA-256 digest (64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Checks `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(field, "must be 64 hexadecimal characters"));
        }
        Ok(Self(value.to_ascii_lowercase()))
    }

    /// The digest as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = Error;
    fn try_from(v: String) -> Result<Self> {
        Self::parse("sha256", &v)
    }
}
deserialize_via!(Sha256Hex, String);

/// Parsing of the typed ids of [`crate::ids`] from what a caller sent.
macro_rules! parse_ids {
    ($($id:ident),* $(,)?) => {$(
        impl crate::ids::$id {
            /// Parses an id given by a caller, naming `field` if it is not a UUID.
            pub fn parse_field(field: &str, value: &str) -> Result<Self> {
                uuid::Uuid::parse_str(value.trim())
                    .map(Self::from_uuid)
                    .map_err(|_| {
                        Error::invalid(
                            field,
                            format!("not a valid {} id (expected a UUID)", Self::LABEL),
                        )
                    })
            }
        }

        impl std::str::FromStr for crate::ids::$id {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse_field("id", s)
            }
        }
    )*};
}

parse_ids!(
    TeamId,
    UserId,
    TokenId,
    TargetId,
    GroupId,
    CredentialId,
    ScriptId,
    ScriptVersionId,
    PlaybookId,
    PlaybookVersionId,
    FileId,
    RuleId,
    CronJobId,
    ExecutionId,
    DeliveryId,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn expire_days_accepts_1_to_365_and_defaults_to_7() {
        assert_eq!(ExpireDays::default().days(), 7);
        assert_eq!(ExpireDays::new("expire_days", 1).unwrap().days(), 1);
        assert_eq!(ExpireDays::new("expire_days", 365).unwrap().days(), 365);
        for bad in [0, -1, 366, i64::MAX] {
            assert_eq!(
                field_of(ExpireDays::new("expire_days", bad).unwrap_err()),
                "expire_days"
            );
        }
    }

    #[test]
    fn timeout_refuses_zero_and_a_year() {
        assert!(TimeoutSecs::new("timeout", 86_400).is_ok());
        let err = TimeoutSecs::new("timeout", 0).unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
        assert!(TimeoutSecs::new("timeout", 365 * 86_400).is_err());
    }

    #[test]
    fn deserializing_goes_through_the_same_checks() {
        let err = serde_json::from_str::<TimeoutSecs>("0").unwrap_err();
        assert!(err.to_string().contains("between 1 and 86400"), "{err}");
        assert!(serde_json::from_str::<NonEmpty<u8>>("[]").is_err());
        assert!(serde_json::from_str::<Name>("\"  \"").is_err());
        assert_eq!(serde_json::from_str::<ExpireDays>("30").unwrap().days(), 30);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("name", "  web  ").unwrap().as_str(), "web");
        assert!(Name::parse("name", &"x".repeat(129)).is_err());
        assert!(Name::parse("name", "a\u{7}b").is_err());
        assert!(Name::parse("name", "数据库 🚀").is_ok());
    }

    #[test]
    fn addresses_accept_ips_and_host_names_only() {
        assert_eq!(
            Address::parse("address", "127.0.0.1").unwrap().as_str(),
            "127.0.0.1"
        );
        assert_eq!(Address::parse("address", "[::1]").unwrap().as_str(), "::1");
        assert_eq!(
            Address::parse("address", "Web-01.Example.com")
                .unwrap()
                .as_str(),
            "web-01.example.com"
        );
        for bad in [
            "",
            "a b",
            "-x.com",
            "x..com",
            "host;rm -rf /",
            "ex\u{0}ample",
        ] {
            assert_eq!(
                field_of(Address::parse("address", bad).unwrap_err()),
                "address"
            );
        }
    }

    #[test]
    fn tags_parse_key_value_pairs() {
        let t = Tag::parse("tags", "env=prod").unwrap();
        assert_eq!((t.key(), t.value()), ("env", "prod"));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"env=prod\"");
        assert!(Tag::parse("tags", "=x").is_err());
        assert!(Tag::parse("tags", "bad key=x").is_err());
    }

    #[test]
    fn non_empty_refuses_empty_and_huge_lists() {
        assert!(NonEmpty::<u8>::new("targets", vec![]).is_err());
        assert!(NonEmpty::new("targets", vec![0u8; NonEmpty::<u8>::MAX + 1]).is_err());
        assert_eq!(*NonEmpty::new("targets", vec![3]).unwrap().first(), 3);
    }

    #[test]
    fn script_content_refuses_blank_nul_and_oversize() {
        assert!(ScriptContent::parse("script_content", " \n").is_err());
        assert!(ScriptContent::parse("script_content", "echo \0").is_err());
        assert!(
            ScriptContent::parse("script_content", &"x".repeat(ScriptContent::MAX_BYTES + 1))
                .is_err()
        );
        assert!(ScriptContent::parse("script_content", "echo hi").is_ok());
    }

    #[test]
    fn usernames_and_ports() {
        assert!(Username::parse("username", "admin").is_ok());
        assert!(Username::parse("username", ".admin").is_err());
        assert!(Username::parse("username", "ad min").is_err());
        assert!(Port::new("port", 0).is_err());
        assert!(Port::new("port", 65_536).is_err());
        assert_eq!(Port::new("port", 2222).unwrap().get(), 2222);
    }
}
