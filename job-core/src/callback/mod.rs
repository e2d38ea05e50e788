//! Callback URLs: where an execution posts its result when it is final.
//!
//! A [`CallbackUrl`] is an absolute `http`/`https` URL with a host and no credentials whose
//! host is neither an internal address ([`refusal`] lists the refused ranges) nor a cloud
//! metadata or loopback name. Names are resolved through the injected [`HostResolver`]
//! (job-core does no I/O) by a [`CallbackGuard`], which checks every resolved address: at
//! creation ([`CallbackGuard::check`]) and again before every delivery
//! ([`CallbackGuard::recheck`], which returns the checked addresses to connect to, as DNS can
//! change in between). A [`CallbackAllow`] list from the configuration (host names,
//! addresses and CIDR ranges) lets callers use an internal receiver.

mod address;
mod allow;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

pub use address::refusal;
pub use allow::CallbackAllow;

/// The wire name of the field, used by deserialization.
const FIELD: &str = "callback_url";

/// Names that reach the platform itself or a cloud provider's metadata service, whatever
/// they resolve to.
const REFUSED_NAMES: [&str; 8] = [
    "localhost",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// The host of a [`CallbackUrl`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallbackHost {
    /// A literal address (`203.0.113.9`, `[2606:4700::1111]`).
    Ip(IpAddr),
    /// A DNS name, lowercased, without a trailing dot.
    Name(String),
}

impl fmt::Display for CallbackHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// A checked callback URL (see the [module documentation](self)); serializes as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallbackUrl {
    text: String,
    host: CallbackHost,
    port: u16,
}

impl CallbackUrl {
    /// The longest accepted URL, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Parses `value` as the field `field` with no allow-list: the syntax, a literal
    /// address and the host name are checked; a name is not resolved (that is
    /// [`CallbackGuard::check`]'s part).
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        Self::parse_allowing(field, value, &CallbackAllow::default())
    }

    /// Like [`CallbackUrl::parse`], but a host or address on `allow` is accepted although
    /// it is internal.
    pub fn parse_allowing(field: &str, value: &str, allow: &CallbackAllow) -> Result<Self> {
        let refused = |reason: String| Error::invalid(field, reason);
        let text = value.trim();
        if text.is_empty() {
            return Err(refused("must not be empty".to_owned()));
        }
        if text.len() > Self::MAX_LEN {
            return Err(refused(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refused(
                "must not contain spaces or control characters".to_owned(),
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(refused("must be an absolute http or https URL".to_owned()));
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(refused(format!("scheme `{scheme}` is not http or https"))),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(refused("must not carry credentials in the URL".to_owned()));
        }
        let (host, port) = split_authority(authority).map_err(refused)?;
        let port = match port {
            None | Some("") => default_port,
            Some(p) => Some(p)
                .filter(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| refused(format!("port `{p}` is not a number from 1 to 65535")))?,
        };
        let host = parse_host(host).map_err(refused)?;
        if !allow.allows_host(&host) {
            match &host {
                CallbackHost::Ip(ip) => {
                    if let Some(why) = refusal(*ip) {
                        return Err(refused(format!(
                            "{ip} is {why}, which callbacks may not reach"
                        )));
                    }
                }
                CallbackHost::Name(name) => {
                    if REFUSED_NAMES.contains(&name.as_str()) || name.ends_with(".localhost") {
                        return Err(refused(format!(
                            "host `{name}` names the platform itself or a cloud metadata service"
                        )));
                    }
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            host,
            port,
        })
    }

    /// The URL as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL's host.
    pub fn host(&self) -> &CallbackHost {
        &self.host
    }

    /// The port to connect to (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL's text, owned.
    pub fn into_string(self) -> String {
        self.text
    }
}

/// Splits an authority into its host and its port text (if a `:` follows the host).
fn split_authority(authority: &str) -> std::result::Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "has an unclosed `[` in its host".to_owned())?;
        return match after {
            "" => Ok((authority_v6(host)?, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((authority_v6(host)?, Some(port))),
                None => Err(format!("has `{after}` after its host")),
            },
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn authority_v6(host: &str) -> std::result::Result<&str, String> {
    if host.parse::<Ipv6Addr>().is_err() {
        return Err(format!("host `[{host}]` is not an IPv6 address"));
    }
    Ok(host)
}

/// Parses a host: an IPv6 address (brackets already removed), a dotted-quad IPv4 address,
/// or a DNS name of letters, digits, `-`, `_` and dots. A name whose last label is numeric
/// is refused: HTTP clients read `127.1` or `0x7f000001` as IPv4 addresses.
fn parse_host(host: &str) -> std::result::Result<CallbackHost, String> {
    if host.is_empty() {
        return Err("has no host".to_owned());
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(CallbackHost::Ip(IpAddr::V6(v6)));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let last = name.rsplit('.').next().unwrap_or_default();
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    if numeric {
        return match name.parse::<Ipv4Addr>() {
            Ok(v4) => Ok(CallbackHost::Ip(IpAddr::V4(v4))),
            Err(_) => Err(format!(
                "host `{host}` is not a dotted-quad IPv4 address (like 203.0.113.9)"
            )),
        };
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!(
            "host `{host}` is not a valid host name (ASCII letters, digits, `-` and dots)"
        ));
    }
    Ok(CallbackHost::Name(name))
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CallbackUrl {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(FIELD, &raw).map_err(serde::de::Error::custom)
    }
}

/// Resolves a host name to its addresses: the seam through which job-core, which does no
/// I/O, learns where a callback would go. jobd injects a DNS resolver; tests a fixed map
/// (`job_core::testkit::FixedResolver`).
#[async_trait::async_trait]
pub trait HostResolver: Send + Sync + fmt::Debug {
    /// Every address `host` resolves to for `port`; an error when it cannot be resolved.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>>;
}

/// Checks callback URLs with the configured allow-list and a resolver; cheap to clone.
#[derive(Debug, Clone)]
pub struct CallbackGuard {
    allow: Arc<CallbackAllow>,
    resolver: Arc<dyn HostResolver>,
}

impl CallbackGuard {
    /// A guard accepting what `allow` lists, resolving names through `resolver`.
    pub fn new(allow: CallbackAllow, resolver: Arc<dyn HostResolver>) -> Self {
        Self {
            allow: Arc::new(allow),
            resolver,
        }
    }

    /// The allow-list in force.
    pub fn allow(&self) -> &CallbackAllow {
        &self.allow
    }

    /// Parses `value` as the field `field` and, for a name, resolves it and checks every
    /// address it resolves to: all must be allowed.
    pub async fn check(&self, field: &str, value: &str) -> Result<CallbackUrl> {
        let url = CallbackUrl::parse_allowing(field, value, &self.allow)?;
        self.addresses(field, &url).await?;
        Ok(url)
    }

    /// Checks `url` again just before a delivery and returns the addresses to connect to
    /// (connect only to these: DNS may answer differently a second time).
    pub async fn recheck(&self, url: &CallbackUrl) -> Result<Vec<SocketAddr>> {
        // The text was accepted once, but the allow-list may have changed since.
        let url = CallbackUrl::parse_allowing(FIELD, url.as_str(), &self.allow)?;
        self.addresses(FIELD, &url).await
    }

    async fn addresses(&self, field: &str, url: &CallbackUrl) -> Result<Vec<SocketAddr>> {
        let name = match url.host() {
            CallbackHost::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, url.port())]),
            CallbackHost::Name(name) => name,
        };
        let resolved = self
            .resolver
            .resolve(name, url.port())
            .await
            .ok()
            .filter(|ips| !ips.is_empty())
            .ok_or_else(|| Error::invalid(field, format!("host `{name}` cannot be resolved")))?;
        if !self.allow.allows_name(name) {
            for ip in &resolved {
                if self.allow.allows_ip(*ip) {
                    continue;
                }
                if let Some(why) = refusal(*ip) {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "host `{name}` resolves to {ip}, {why}, which callbacks may not reach"
                        ),
                    ));
                }
            }
        }
        Ok(resolved
            .into_iter()
            .map(|ip| SocketAddr::new(ip, url.port()))
            .collect())
    }
}

#[cfg(any(test, feature = "testkit"))]
mod fixed;
#[cfg(any(test, feature = "testkit"))]
pub use fixed::FixedResolver;

#[cfg(test)]
mod tests;
