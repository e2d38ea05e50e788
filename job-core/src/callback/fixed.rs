//! A resolver that answers from a fixed map, for tests of the callback guard (re-exported
//! by `testkit`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::HostResolver;
use crate::{Error, Result};

/// Resolves the names it was given to their fixed addresses; any other name cannot be
/// resolved.
#[derive(Debug, Clone, Default)]
pub struct FixedResolver {
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl FixedResolver {
    /// A resolver knowing `hosts`: `(name, addresses)` pairs (addresses as text; one that
    /// does not parse is a bug in the test and panics).
    pub fn new<'a>(hosts: impl IntoIterator<Item = (&'a str, &'a [&'a str])>) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|(name, ips)| {
                    let ips = ips
                        .iter()
                        .map(|ip| ip.parse().unwrap_or_else(|_| panic!("bad address {ip}")))
                        .collect();
                    (name.to_ascii_lowercase(), ips)
                })
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl HostResolver for FixedResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<IpAddr>> {
        self.hosts
            .get(host)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("host {host}")))
    }
}
