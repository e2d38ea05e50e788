//! The DNS side of the callback guard: job-core's [`CallbackGuard`] checks every address a
//! `callback_url` host resolves to through a [`HostResolver`]; this is the real one, which
//! jobd injects into both edges (REST and the NATS open interfaces).
//!
//! [`CallbackGuard`]: job_core::callback::CallbackGuard

use std::net::IpAddr;

use job_core::callback::HostResolver;

/// Resolves host names with the system resolver (tokio's `lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsResolver;

#[async_trait::async_trait]
impl HostResolver for DnsResolver {
    async fn resolve(&self, host: &str, port: u16) -> job_core::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| job_core::Error::unavailable(format!("resolving `{host}`"), e))?;
        let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
        ips.dedup();
        Ok(ips)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use job_core::callback::{CallbackAllow, CallbackGuard};

    use super::*;

    #[tokio::test]
    async fn the_system_resolver_finds_loopback_names_and_the_guard_refuses_them() {
        let ips = DnsResolver.resolve("localhost", 80).await.unwrap();
        assert!(
            !ips.is_empty() && ips.iter().all(IpAddr::is_loopback),
            "{ips:?}"
        );
        let guard = CallbackGuard::new(CallbackAllow::default(), Arc::new(DnsResolver));
        let err = guard
            .check("callback_url", "http://localhost:9000/h")
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid callback_url:"),
            "{err}"
        );
        assert!(
            DnsResolver
                .resolve("no-such-host.invalid", 80)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_allow_listed_internal_receiver_is_accepted() {
        let allow = CallbackAllow::parse("callback_allow", &["localhost".to_owned()]).unwrap();
        let guard = CallbackGuard::new(allow, Arc::new(DnsResolver));
        let url = guard
            .check("callback_url", "http://localhost:9000/h")
            .await
            .unwrap();
        assert_eq!(url.port(), 9000);
    }
}
