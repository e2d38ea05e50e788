use super::*;

fn reason(url: &str) -> String {
    match CallbackUrl::parse("callback_url", url) {
        Ok(u) => panic!("{url} was accepted as {u:?}"),
        Err(Error::Invalid { field, reason }) => {
            assert_eq!(field, "callback_url");
            reason
        }
        Err(other) => panic!("{url}: {other:?}"),
    }
}

#[test]
fn a_url_must_be_absolute_http_or_https_with_a_host_and_no_credentials() {
    for (url, why) in [
        ("", "must not be empty"),
        ("ftp://example.com/", "scheme `ftp` is not http or https"),
        ("/relative", "must be an absolute http or https URL"),
        ("example.com/hook", "must be an absolute http or https URL"),
        ("http:///path", "has no host"),
        (
            "https://user:pw@example.com/",
            "must not carry credentials in the URL",
        ),
        (
            "https://user@example.com/",
            "must not carry credentials in the URL",
        ),
        (
            "https://exa mple.com/",
            "must not contain spaces or control characters",
        ),
        (
            "https://example.com:0/",
            "port `0` is not a number from 1 to 65535",
        ),
        (
            "https://example.com:70000/",
            "port `70000` is not a number from 1 to 65535",
        ),
        (
            "https://example.com:+80/",
            "port `+80` is not a number from 1 to 65535",
        ),
        ("https://[::1/", "has an unclosed `[` in its host"),
        ("https://[zz::1]/", "host `[zz::1]` is not an IPv6 address"),
        (
            "https://exa%6dple.com/",
            "host `exa%6dple.com` is not a valid host name (ASCII letters, digits, `-` and dots)",
        ),
        (
            "https://bücher.example/",
            "host `bücher.example` is not a valid host name (ASCII letters, digits, `-` and dots)",
        ),
    ] {
        assert_eq!(reason(url), why, "{url}");
    }
    let long = format!("https://example.com/{}", "a".repeat(CallbackUrl::MAX_LEN));
    assert_eq!(reason(&long), "must be at most 2048 characters");
}

#[test]
fn internal_literal_addresses_are_refused_naming_the_range() {
    assert_eq!(
        reason("http://127.0.0.1:9000/h"),
        "127.0.0.1 is a loopback address (127.0.0.0/8), which callbacks may not reach"
    );
    assert_eq!(
        reason("http://[fd00:ec2::254]/latest"),
        "fd00:ec2::254 is the cloud metadata service, which callbacks may not reach"
    );
    assert_eq!(
        reason("http://[::ffff:127.0.0.1]/"),
        "::ffff:127.0.0.1 is an IPv4-mapped address (::ffff:0:0/96), which callbacks may not reach"
    );
    for url in [
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:a00:1::]/",
    ] {
        assert!(
            reason(url).ends_with("which callbacks may not reach"),
            "{url}"
        );
    }
}

#[test]
fn hosts_http_clients_would_read_as_ipv4_must_be_dotted_quads() {
    for url in [
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
    ] {
        let why = reason(url);
        assert!(
            why.contains("is not a dotted-quad IPv4 address"),
            "{url}: {why}"
        );
    }
}

#[test]
fn loopback_and_cloud_metadata_names_are_refused() {
    for host in [
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    ] {
        let why = reason(&format!("http://{host}/h"));
        assert!(
            why.ends_with("names the platform itself or a cloud metadata service"),
            "{host}: {why}"
        );
    }
}

#[test]
fn public_urls_are_kept_as_given_with_their_host_and_port() {
    let url = CallbackUrl::parse("callback_url", "  https://Hooks.Example.com/done?x=1  ").unwrap();
    assert_eq!(url.as_str(), "https://Hooks.Example.com/done?x=1");
    assert_eq!(url.host(), &CallbackHost::Name("hooks.example.com".into()));
    assert_eq!(url.port(), 443);
    let url = CallbackUrl::parse("callback_url", "HTTP://[2606:4700::1111]:8443/x").unwrap();
    assert_eq!(
        url.host(),
        &CallbackHost::Ip("2606:4700::1111".parse().unwrap())
    );
    assert_eq!(url.port(), 8443);
    let url = CallbackUrl::parse("callback_url", "http://93.184.216.34").unwrap();
    assert_eq!(url.port(), 80);
}

#[test]
fn deserializing_goes_through_the_constructor() {
    let ok: CallbackUrl = serde_json::from_str("\"https://hooks.example.com/\"").unwrap();
    assert_eq!(
        serde_json::to_string(&ok).unwrap(),
        "\"https://hooks.example.com/\""
    );
    let err = serde_json::from_str::<CallbackUrl>("\"http://10.0.0.1/\"").unwrap_err();
    assert!(
        err.to_string().contains("invalid callback_url: 10.0.0.1"),
        "{err}"
    );
}

#[test]
fn the_allow_list_takes_names_addresses_and_ranges() {
    let allow = CallbackAllow::parse(
        "http.callback_allow",
        &[
            "Hooks.Internal".into(),
            "10.0.0.5".into(),
            "192.168.0.0/16".into(),
            "[fd12::]/16".into(),
            "::1".into(),
        ],
    )
    .unwrap();
    let ok = |url: &str| CallbackUrl::parse_allowing("callback_url", url, &allow).is_ok();
    assert!(ok("http://hooks.internal:9000/h"));
    assert!(ok("http://10.0.0.5/h"));
    assert!(!ok("http://10.0.0.6/h"));
    assert!(ok("http://192.168.44.1/h"));
    assert!(
        ok("http://192.169.0.1/h"),
        "a public address stays accepted"
    );
    assert!(ok("http://[fd12:ab::1]/"));
    assert!(!ok("http://[fd13::1]/"));
    assert!(ok("http://[::1]/"));
    assert!(!ok("http://127.0.0.1/"));
    for (entry, why) in [
        ("10.0.0.0/33", "`/33` is not a prefix length from 0 to 32"),
        ("10.0.0/8", "`10.0.0` is not an IP address in `10.0.0/8`"),
        (
            "not a host",
            "host `not a host` is not a valid host name (ASCII letters, digits, `-` and dots)",
        ),
    ] {
        let err = CallbackAllow::parse("http.callback_allow", &["ok.example".into(), entry.into()])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid http.callback_allow[1]: {why}"),
            "{entry}"
        );
    }
}

mod guard {
    use super::*;

    fn guard(allow: &[&str]) -> CallbackGuard {
        let resolver = FixedResolver::new([
            (
                "hooks.example.com",
                &["93.184.216.34", "2606:4700::1111"][..],
            ),
            ("rebind.example.com", &["93.184.216.34", "10.0.0.7"][..]),
            ("internal.example.com", &["10.0.0.7"][..]),
            ("nat64.example.com", &["64:ff9b::7f00:1"][..]),
            ("hooks.internal", &["192.168.1.10"][..]),
        ]);
        let allow: Vec<String> = allow.iter().map(|a| (*a).to_owned()).collect();
        CallbackGuard::new(
            CallbackAllow::parse("callback_allow", &allow).unwrap(),
            Arc::new(resolver),
        )
    }

    async fn refused(guard: &CallbackGuard, url: &str) -> String {
        match guard.check("callback_url", url).await {
            Err(Error::Invalid { field, reason }) if field == "callback_url" => reason,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_name_is_accepted_only_when_every_address_it_resolves_to_is_public() {
        let g = guard(&[]);
        let url = g
            .check("callback_url", "https://hooks.example.com/done")
            .await
            .unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com/done");
        assert_eq!(
            refused(&g, "https://rebind.example.com/").await,
            "host `rebind.example.com` resolves to 10.0.0.7, a private address (10.0.0.0/8), which callbacks may not reach"
        );
        assert!(
            refused(&g, "https://nat64.example.com/")
                .await
                .contains("NAT64")
        );
        assert_eq!(
            refused(&g, "https://nowhere.example.com/").await,
            "host `nowhere.example.com` cannot be resolved"
        );
    }

    #[tokio::test]
    async fn an_allowed_range_accepts_a_name_resolving_into_it_and_an_allowed_name_anything() {
        assert!(
            guard(&["10.0.0.0/8"])
                .check("callback_url", "http://internal.example.com/")
                .await
                .is_ok()
        );
        assert!(
            guard(&["10.0.0.0/8"])
                .check("callback_url", "http://rebind.example.com/")
                .await
                .is_ok()
        );
        assert!(
            guard(&["10.1.0.0/16"])
                .check("callback_url", "http://internal.example.com/")
                .await
                .is_err()
        );
        assert!(
            guard(&["hooks.internal"])
                .check("callback_url", "http://hooks.internal/")
                .await
                .is_ok()
        );
        assert!(
            guard(&[])
                .check("callback_url", "http://hooks.internal/")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_recheck_before_delivery_returns_the_checked_addresses_with_the_port() {
        let g = guard(&[]);
        let url = CallbackUrl::parse("callback_url", "https://hooks.example.com:8443/").unwrap();
        let addrs = g.recheck(&url).await.unwrap();
        assert_eq!(
            addrs,
            vec![
                "93.184.216.34:8443".parse::<SocketAddr>().unwrap(),
                "[2606:4700::1111]:8443".parse().unwrap()
            ]
        );
        // A name accepted once that now resolves inside is refused at delivery.
        let url = CallbackUrl::parse("callback_url", "https://internal.example.com/").unwrap();
        assert!(g.recheck(&url).await.is_err());
    }
}
