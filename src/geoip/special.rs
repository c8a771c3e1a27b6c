//! Which addresses are globally routed unicast, and so may have a country.
//!
//! The tables follow the IANA registries, read in 2026:
//! - IANA IPv4 Special-Purpose Address Registry (RFC 6890, updated by RFC 8190):
//!   <https://www.iana.org/assignments/iana-ipv4-special-registry/>
//! - IANA IPv6 Special-Purpose Address Registry (RFC 6890, updated by RFC 8190):
//!   <https://www.iana.org/assignments/iana-ipv6-special-registry/>
//! - IANA IPv6 Address Space Registry (global unicast is `2000::/3`, RFC 4291 §2.4):
//!   <https://www.iana.org/assignments/ipv6-address-space/>
//!
//! An address is public when it is unicast and no registry entry covering it says "Globally
//! Reachable: False". Where a narrower entry says "True" inside a wider "False" block (the anycast
//! addresses in `192.0.0.0/24` and `2001::/23`), the narrower entry wins, as the registry notes say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A block given as (network, prefix length), compared on the address's integer value.
type V4Block = (u32, u8);
/// A block given as (network, prefix length), compared on the address's integer value.
type V6Block = (u128, u8);

/// IPv4 blocks the IPv4 Special-Purpose registry marks "Globally Reachable: False", plus multicast
/// (`224.0.0.0/4`, RFC 5771), which is not unicast at all.
const V4_NOT_GLOBAL: &[V4Block] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", RFC 791 §3.2
    (0x0A00_0000, 8),  // 10.0.0.0/8 private-use, RFC 1918
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space, RFC 6598
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback, RFC 1122 §3.2.1.3
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local, RFC 3927
    (0xAC10_0000, 12), // 172.16.0.0/12 private-use, RFC 1918
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments, RFC 6890 §2.1
    (0xC000_0200, 24), // 192.0.2.0/24 documentation (TEST-NET-1), RFC 5737
    (0xC0A8_0000, 16), // 192.168.0.0/16 private-use, RFC 1918
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking, RFC 2544
    (0xC633_6400, 24), // 198.51.100.0/24 documentation (TEST-NET-2), RFC 5737
    (0xCB00_7100, 24), // 203.0.113.0/24 documentation (TEST-NET-3), RFC 5737
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast, RFC 5771
    (0xF000_0000, 4), // 240.0.0.0/4 reserved, RFC 1112 §4; includes 255.255.255.255 broadcast (RFC 919)
];

/// Entries inside [`V4_NOT_GLOBAL`] blocks that the registry marks "Globally Reachable: True".
const V4_GLOBAL_EXCEPTIONS: &[V4Block] = &[
    (0xC000_0009, 32), // 192.0.0.9/32 Port Control Protocol anycast, RFC 7723
    (0xC000_000A, 32), // 192.0.0.10/32 TURN anycast, RFC 8155
];

/// IPv6 blocks the IPv6 Special-Purpose registry marks "Globally Reachable: False", plus the
/// non-unicast or non-global scopes the Address Space registry defines.
const V6_NOT_GLOBAL: &[V6Block] = &[
    (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48 local-use IPv4/IPv6 translation, RFC 8215
    (0x0100 << 112, 64),          // 100::/64 discard-only, RFC 6666
    ((0x0100 << 112) | (1 << 64), 64), // 100:0:0:1::/64 dummy IPv6 prefix, RFC 9780
    (0x2001 << 112, 23), // 2001::/23 IETF protocol assignments, RFC 2928 (includes Teredo 2001::/32)
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation, RFC 3849
    (0x3fff << 112, 20), // 3fff::/20 documentation, RFC 9637
    (0x5f00 << 112, 16), // 5f00::/16 segment routing SIDs, RFC 9602
    (0xfc00 << 112, 7),  // fc00::/7 unique local, RFC 4193
    (0xfe80 << 112, 10), // fe80::/10 link-local unicast, RFC 4291 §2.5.6
    (0xff00 << 112, 8),  // ff00::/8 multicast, RFC 4291 §2.7
];

/// Entries inside [`V6_NOT_GLOBAL`] blocks that the registry marks "Globally Reachable: True".
const V6_GLOBAL_EXCEPTIONS: &[V6Block] = &[
    ((0x2001_0001 << 96) | 1, 128), // 2001:1::1/128 Port Control Protocol anycast, RFC 7723
    ((0x2001_0001 << 96) | 2, 128), // 2001:1::2/128 TURN anycast, RFC 8155
    ((0x2001_0001 << 96) | 3, 128), // 2001:1::3/128 DNS-SD service registration anycast, RFC 9665
    (0x2001_0003 << 96, 32),        // 2001:3::/32 AMT, RFC 7450
    (0x2001_0004_0112 << 80, 48),   // 2001:4:112::/48 AS112-v6, RFC 7535
    (0x2001_0020 << 96, 28),        // 2001:20::/28 ORCHIDv2, RFC 7343
    (0x2001_0030 << 96, 28),        // 2001:30::/28 drone remote ID tags, RFC 9374
];

/// Outside the special-purpose blocks, only global unicast space (`2000::/3`, IPv6 Address Space
/// registry, RFC 4291 §2.4) is routed; the rest is reserved by the IETF.
const V6_GLOBAL_UNICAST: V6Block = (0x2000 << 112, 3);

/// The IPv4/IPv6 translation well-known prefix `64:ff9b::/96` (RFC 6052), which the registry marks
/// "Globally Reachable: True" although it lies outside `2000::/3`.
const V6_NAT64_WELL_KNOWN: V6Block = (0x0064_ff9b << 96, 96);

/// IPv4-mapped addresses `::ffff:0:0/96` (RFC 4291 §2.5.5.2): judged by the IPv4 address inside.
const V6_IPV4_MAPPED: V6Block = (0xffff << 32, 96);

/// Whether `ip` is a globally routed unicast address: only those get a country.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged by the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let value = u32::from(ip);
    let within = |&(net, len): &V4Block| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        value & mask == net
    };
    V4_GLOBAL_EXCEPTIONS.iter().any(within) || !V4_NOT_GLOBAL.iter().any(within)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let value = u128::from(ip);
    let within = |&(net, len): &V6Block| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        value & mask == net
    };
    if within(&V6_IPV4_MAPPED) {
        // The low 32 bits are the IPv4 address; the truncation is the point.
        return is_public_v4(Ipv4Addr::from(value as u32));
    }
    if V6_GLOBAL_EXCEPTIONS.iter().any(within) {
        return true;
    }
    if V6_NOT_GLOBAL.iter().any(within) {
        return false;
    }
    within(&V6_GLOBAL_UNICAST) || within(&V6_NAT64_WELL_KNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn ipv4_special_purpose_blocks_are_not_public() {
        for addr in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.5",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(addr), "{addr} should not be public");
        }
    }

    #[test]
    fn ipv4_unicast_is_public() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.3.0",
            "192.88.99.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(public(addr), "{addr} should be public");
        }
    }

    #[test]
    fn ipv6_special_purpose_blocks_are_not_public() {
        for addr in [
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::1",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
        ] {
            assert!(!public(addr), "{addr} should not be public");
        }
    }

    #[test]
    fn ipv6_global_unicast_is_public() {
        for addr in [
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2001:1::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "2002:c000:204::1",
            "3ffe::1",
            "64:ff9b::8.8.8.8",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(addr), "{addr} should be public");
        }
    }

    #[test]
    fn block_constants_are_canonical() {
        // A set host bit below the prefix would make a block never match.
        for &(net, len) in V4_NOT_GLOBAL.iter().chain(V4_GLOBAL_EXCEPTIONS) {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            assert_eq!(net & host, 0, "{}/{len}", Ipv4Addr::from(net));
        }
        for &(net, len) in V6_NOT_GLOBAL.iter().chain(V6_GLOBAL_EXCEPTIONS).chain([
            &V6_GLOBAL_UNICAST,
            &V6_NAT64_WELL_KNOWN,
            &V6_IPV4_MAPPED,
        ]) {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            assert_eq!(net & host, 0, "{}/{len}", Ipv6Addr::from(net));
        }
    }

    proptest::proptest! {
        #[test]
        fn mapped_addresses_follow_their_ipv4(raw: u32) {
            let v4 = Ipv4Addr::from(raw);
            proptest::prop_assert_eq!(is_public(IpAddr::V4(v4)), is_public(IpAddr::V6(v4.to_ipv6_mapped())));
        }

        #[test]
        fn agrees_with_std_where_std_is_certain(raw: u32) {
            let v4 = Ipv4Addr::from(raw);
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_multicast()
                || v4.is_broadcast() || v4.is_documentation() || v4.is_unspecified()
            {
                proptest::prop_assert!(!is_public(IpAddr::V4(v4)));
            }
        }
    }
}
