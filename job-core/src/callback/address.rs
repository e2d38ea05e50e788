//! Which addresses a callback may reach: everything public, nothing inside the platform's
//! own network or reserved for special use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` may not receive callbacks, or `None` when it is a public address.
///
/// Refused: loopback, private, link-local (with the cloud metadata service), CGNAT
/// (100.64.0.0/10), multicast, broadcast, unspecified and "this network" (0.0.0.0/8), the
/// documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), the
/// benchmark range 198.18.0.0/15, 192.0.0.0/24, 240.0.0.0/4, IPv6 unique-local (fc00::/7)
/// and site-local (fec0::/10), IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96)
/// addresses; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are refused when the IPv4
/// address they embed is.
///
/// The reason says what the address is (`a private address (10.0.0.0/8)`), not which.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (0, 0, 0, 0) => "the unspecified address",
        (0, ..) => "in 0.0.0.0/8 (this network)",
        (10, ..) => "a private address (10.0.0.0/8)",
        (100, 64..=127, ..) => "a carrier-grade NAT address (100.64.0.0/10)",
        (127, ..) => "a loopback address (127.0.0.0/8)",
        (169, 254, 169, 254) => "the cloud metadata service",
        (169, 254, ..) => "a link-local address (169.254.0.0/16)",
        (172, 16..=31, ..) => "a private address (172.16.0.0/12)",
        (192, 0, 0, _) => "an IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2, _) => "a documentation address (192.0.2.0/24)",
        (192, 168, ..) => "a private address (192.168.0.0/16)",
        (198, 18..=19, ..) => "a benchmarking address (198.18.0.0/15)",
        (198, 51, 100, _) => "a documentation address (198.51.100.0/24)",
        (203, 0, 113, _) => "a documentation address (203.0.113.0/24)",
        (224..=239, ..) => "a multicast address (224.0.0.0/4)",
        (255, 255, 255, 255) => "the broadcast address",
        (240..=255, ..) => "a reserved address (240.0.0.0/4)",
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("the loopback address");
    }
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return Some("an IPv4-mapped address (::ffff:0:0/96)");
    }
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible address (::/96)");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("the cloud metadata service");
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address (fc00::/7)");
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address (fe80::/10)");
    }
    if s[0] & 0xffc0 == 0xfec0 {
        return Some("a site-local address (fec0::/10)");
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some("a multicast address (ff00::/8)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("a documentation address (2001:db8::/32)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let embedded = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
        return refusal_v4(embedded)
            .map(|_| "a NAT64 address (64:ff9b::/96) of a refused IPv4 address");
    }
    if s[0] == 0x2002 {
        let embedded = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
        return refusal_v4(embedded)
            .map(|_| "a 6to4 address (2002::/16) of a refused IPv4 address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        refusal(text.parse().unwrap()).is_some()
    }

    /// Each refused IPv4 range with its first and last address, and the public neighbours
    /// just outside it (where they are public).
    #[test]
    fn every_refused_ipv4_range_is_refused_at_both_ends_and_its_neighbours_are_not() {
        let ranges = [
            ("0.0.0.0", "0.255.255.255", None, Some("1.0.0.0")),
            (
                "10.0.0.0",
                "10.255.255.255",
                Some("9.255.255.255"),
                Some("11.0.0.0"),
            ),
            (
                "100.64.0.0",
                "100.127.255.255",
                Some("100.63.255.255"),
                Some("100.128.0.0"),
            ),
            (
                "127.0.0.0",
                "127.255.255.255",
                Some("126.255.255.255"),
                Some("128.0.0.0"),
            ),
            (
                "169.254.0.0",
                "169.254.255.255",
                Some("169.253.255.255"),
                Some("169.255.0.0"),
            ),
            (
                "172.16.0.0",
                "172.31.255.255",
                Some("172.15.255.255"),
                Some("172.32.0.0"),
            ),
            (
                "192.0.0.0",
                "192.0.0.255",
                Some("191.255.255.255"),
                Some("192.0.1.0"),
            ),
            (
                "192.0.2.0",
                "192.0.2.255",
                Some("192.0.1.255"),
                Some("192.0.3.0"),
            ),
            (
                "192.168.0.0",
                "192.168.255.255",
                Some("192.167.255.255"),
                Some("192.169.0.0"),
            ),
            (
                "198.18.0.0",
                "198.19.255.255",
                Some("198.17.255.255"),
                Some("198.20.0.0"),
            ),
            (
                "198.51.100.0",
                "198.51.100.255",
                Some("198.51.99.255"),
                Some("198.51.101.0"),
            ),
            (
                "203.0.113.0",
                "203.0.113.255",
                Some("203.0.112.255"),
                Some("203.0.114.0"),
            ),
            (
                "224.0.0.0",
                "239.255.255.255",
                Some("223.255.255.255"),
                None,
            ),
            ("240.0.0.0", "255.255.255.255", None, None),
        ];
        for (first, last, below, above) in ranges {
            assert!(refused(first), "{first} was accepted");
            assert!(refused(last), "{last} was accepted");
            for outside in [below, above].into_iter().flatten() {
                assert!(!refused(outside), "{outside} was refused");
            }
        }
    }

    #[test]
    fn the_reason_names_the_kind_of_address_and_its_range() {
        let why = |ip: &str| refusal(ip.parse().unwrap()).unwrap();
        assert_eq!(why("169.254.169.254"), "the cloud metadata service");
        assert_eq!(
            why("100.100.1.1"),
            "a carrier-grade NAT address (100.64.0.0/10)"
        );
        assert_eq!(why("255.255.255.255"), "the broadcast address");
        assert_eq!(why("fd00:ec2::254"), "the cloud metadata service");
        assert_eq!(
            why("203.0.113.7"),
            "a documentation address (203.0.113.0/24)"
        );
    }

    #[test]
    fn every_refused_ipv6_range_is_refused_at_both_ends_and_its_neighbours_are_not() {
        let ranges = [
            ("::", "::", None, None),
            ("::1", "::1", None, None),
            ("::2", "::ffff:ffff", None, None),
            (
                "::ffff:0.0.0.0",
                "::ffff:255.255.255.255",
                None,
                Some("::1:0:0:0"),
            ),
            (
                "fc00::",
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                None,
            ),
            (
                "fe80::",
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                None,
            ),
            (
                "fec0::",
                "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                None,
                None,
            ),
            (
                "ff00::",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                None,
                None,
            ),
            (
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"),
                Some("2001:db9::"),
            ),
        ];
        for (first, last, below, above) in ranges {
            assert!(refused(first), "{first} was accepted");
            assert!(refused(last), "{last} was accepted");
            for outside in [below, above].into_iter().flatten() {
                assert!(!refused(outside), "{outside} was refused");
            }
        }
        // fe80::/10 and fec0::/10 are adjacent: the boundary between them stays refused.
        assert!(refused("febf:ffff::1") && refused("fec0::1"));
    }

    #[test]
    fn nat64_and_6to4_addresses_are_judged_by_the_ipv4_address_they_embed() {
        assert!(refused("64:ff9b::127.0.0.1"));
        assert!(refused("64:ff9b::10.0.0.1"));
        assert!(refused("64:ff9b::169.254.169.254"));
        assert!(!refused("64:ff9b::93.184.216.34"));
        // 2002:7f00:0001:: embeds 127.0.0.1; 2002:5db8:d822:: embeds 93.184.216.34.
        assert!(refused("2002:7f00:1::1"));
        assert!(refused("2002:c0a8:0101::1"));
        assert!(refused("2002:a9fe:a9fe::"));
        assert!(!refused("2002:5db8:d822::1"));
        // Just outside the NAT64 prefix the embedded address does not matter.
        assert!(!refused("64:ff9b:1::7f00:1"));
        assert!(!refused("2003::7f00:1"));
    }

    #[test]
    fn public_addresses_are_accepted() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert!(!refused(ip), "{ip} was refused");
        }
    }

    proptest::proptest! {
        /// Every IPv4-mapped address is refused, and a NAT64 address is refused exactly when
        /// the IPv4 address it embeds is.
        #[test]
        fn embedded_ipv4_addresses_decide_like_the_ipv4_address(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert!(refused(&v4.to_ipv6_mapped().to_string()));
            let [a, b, c, d] = v4.octets();
            let nat64 = Ipv6Addr::new(
                0x64, 0xff9b, 0, 0, 0, 0,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            );
            proptest::prop_assert_eq!(
                refusal(IpAddr::V6(nat64)).is_some(),
                refusal(IpAddr::V4(v4)).is_some()
            );
            let six_to_four = Ipv6Addr::new(
                0x2002,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
                0, 0, 0, 0, 1,
            );
            proptest::prop_assert_eq!(
                refusal(IpAddr::V6(six_to_four)).is_some(),
                refusal(IpAddr::V4(v4)).is_some()
            );
        }

        /// The classification agrees with the standard library where the standard library
        /// has a stable answer: none of its loopback, private, link-local, multicast,
        /// broadcast or unspecified addresses is ever accepted.
        #[test]
        fn what_std_calls_internal_is_always_refused(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            if v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_multicast()
                || v4.is_broadcast() || v4.is_unspecified() || v4.is_documentation()
            {
                proptest::prop_assert!(refusal(IpAddr::V4(v4)).is_some());
            }
        }
    }
}
