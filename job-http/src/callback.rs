//! Checking a `callback_url` at the edge: http or https only, and never an address inside
//! the platform's own network (loopback, link-local, private, unspecified, multicast, the
//! cloud metadata service) — literal or after DNS resolution — unless the host is
//! allow-listed. The deliverer checks again when it connects (DNS can change).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::Uri;

use crate::error::ApiError;

const FIELD: &str = "callback_url";
/// The longest accepted callback URL.
const MAX_LEN: usize = 2048;

fn refused(reason: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(FIELD, format!("invalid {FIELD}: {reason}"))
}

/// Whether `ip` is one callbacks must not reach.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata (IPv6)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the metadata service
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
}

/// Checks a callback URL; `allow` lists hosts accepted even when internal.
pub(crate) async fn check_callback_url(url: &str, allow: &[String]) -> Result<String, ApiError> {
    let url = url.trim();
    if url.len() > MAX_LEN {
        return Err(refused(format!("must be at most {MAX_LEN} characters")));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| refused("is not a valid absolute URL"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(refused(format!("scheme `{other}` is not http or https"))),
        None => return Err(refused("must be an absolute http or https URL")),
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(refused("must not carry credentials in the URL"));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| refused("has no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if allow.iter().any(|a| {
        a.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .eq_ignore_ascii_case(bare)
    }) {
        return Ok(url.to_owned());
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if is_internal(ip) {
            return Err(refused(format!(
                "{ip} is a loopback, link-local, private or otherwise internal address"
            )));
        }
        return Ok(url.to_owned());
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs: Vec<_> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| refused(format!("host `{bare}` cannot be resolved")))?
        .collect();
    if addrs.is_empty() {
        return Err(refused(format!("host `{bare}` cannot be resolved")));
    }
    if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(refused(format!(
            "host `{bare}` resolves to {}, an internal address",
            bad.ip()
        )));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok(url: &str) -> bool {
        check_callback_url(url, &[]).await.is_ok()
    }

    #[tokio::test]
    async fn internal_and_odd_callback_urls_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.1:8080/hook",
            "http://172.16.5.4/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://localhost/hook",
            "ftp://example.com/",
            "/relative",
            "http://user:pw@93.184.216.34/",
            "not a url",
        ] {
            assert!(!ok(url).await, "{url} was accepted");
        }
    }

    #[tokio::test]
    async fn public_addresses_and_allow_listed_hosts_are_accepted() {
        assert!(ok("https://93.184.216.34/hook").await);
        assert!(ok("http://[2606:4700::1111]:8443/x").await);
        let allow = vec!["localhost".to_owned(), "10.0.0.5".to_owned()];
        assert!(
            check_callback_url("http://localhost:9000/h", &allow)
                .await
                .is_ok()
        );
        assert!(
            check_callback_url("http://10.0.0.5/h", &allow)
                .await
                .is_ok()
        );
        assert!(
            check_callback_url("http://10.0.0.6/h", &allow)
                .await
                .is_err()
        );
    }
}
