//! The configured exceptions to the callback guard: internal receivers callers may use.

use std::net::IpAddr;

use super::{CallbackHost, parse_host};
use crate::{Error, Result};

/// Host names, addresses and CIDR ranges accepted as callback targets although they are
/// internal (an internal webhook receiver). A listed name is accepted whatever it resolves
/// to; a listed address or range accepts a literal address in it and a name that resolves
/// only to allowed or public addresses. Names compare case-insensitively. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackAllow {
    names: Vec<String>,
    ranges: Vec<(IpAddr, u8)>,
}

impl CallbackAllow {
    /// Parses the configured entries as the field `field`: each a host name
    /// (`hooks.internal`), an address (`10.0.0.5`, `::1`, `[::1]`) or a CIDR range
    /// (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse(field: &str, entries: &[String]) -> Result<Self> {
        let mut allow = Self::default();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let entry = entry.trim();
            if let Some((addr, bits)) = entry.split_once('/') {
                let ip = addr.trim_start_matches('[').trim_end_matches(']');
                let ip: IpAddr = ip.parse().map_err(|_| {
                    Error::invalid(&at, format!("`{addr}` is not an IP address in `{entry}`"))
                })?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| {
                        Error::invalid(
                            &at,
                            format!("`/{bits}` is not a prefix length from 0 to {max}"),
                        )
                    })?;
                allow.ranges.push((ip, bits));
                continue;
            }
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            match parse_host(bare) {
                Ok(CallbackHost::Ip(ip)) => {
                    allow.ranges.push((ip, if ip.is_ipv4() { 32 } else { 128 }))
                }
                Ok(CallbackHost::Name(name)) => allow.names.push(name),
                Err(reason) => return Err(Error::invalid(at, reason)),
            }
        }
        Ok(allow)
    }

    /// Whether nothing is allowed beyond public addresses.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.ranges.is_empty()
    }

    /// Whether the host of a URL is allowed as it is written.
    pub(super) fn allows_host(&self, host: &CallbackHost) -> bool {
        match host {
            CallbackHost::Ip(ip) => self.allows_ip(*ip),
            CallbackHost::Name(name) => self.allows_name(name),
        }
    }

    /// Whether the name `name` (lowercase) is listed.
    pub(super) fn allows_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Whether `ip` is in a listed address or range.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ranges
            .iter()
            .any(|(net, bits)| in_range(ip, *net, *bits))
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}
