use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::capture::{Frame, LinkType};
use crate::craft;

const DEV: Mac = Mac([0x02, 0, 0, 0, 0, 0x50]);
const GW: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn frame(link_type: LinkType, data: &[u8]) -> Frame<'_> {
    Frame {
        ts_ns: 1_700_000_000_000_000_000,
        link_type,
        data,
        wire_len: data.len() as u32,
        source: 0,
        index: 1,
    }
}

fn decode_one(link_type: LinkType, data: &[u8]) -> Option<Packet<'_>> {
    Decoder::new().decode(&frame(link_type, data))
}

#[test]
fn ethernet_ipv4_tcp() {
    let ip = craft::tcp(
        sa("192.168.1.50:51514"),
        sa("203.0.113.7:443"),
        craft::tcp_flags::SYN,
        b"",
    );
    let f = craft::ethernet(DEV, GW, &[], &ip);
    let p = decode_one(LinkType::ETHERNET, &f).unwrap();
    assert_eq!(p.src, "192.168.1.50".parse::<IpAddr>().unwrap());
    assert_eq!(p.dst, "203.0.113.7".parse::<IpAddr>().unwrap());
    assert_eq!((p.src_port, p.dst_port), (51514, 443));
    assert_eq!(p.transport, Transport::Tcp);
    assert_eq!(p.tcp_flags, craft::tcp_flags::SYN);
    assert_eq!(p.seq, 1000);
    assert_eq!(p.src_mac, Some(DEV));
    assert_eq!(p.dst_mac, Some(GW));
    assert_eq!(p.ip_len, 40);
    assert_eq!(p.payload_len, 0);
}

#[test]
fn qinq_tags_give_the_outer_vlan() {
    let ip = craft::udp(sa("10.0.0.2:5000"), sa("198.51.100.1:53"), b"abc");
    let f = craft::ethernet(DEV, GW, &[100, 200], &ip);
    let p = decode_one(LinkType::ETHERNET, &f).unwrap();
    assert_eq!(p.vlan, Some(100));
    assert_eq!(p.payload, b"abc");
    assert_eq!(p.transport, Transport::Udp);
}

#[test]
fn ipv6_with_extension_headers() {
    let inner = craft::udp(sa("[2001:db8::1]:5353"), sa("[2001:db8::2]:53"), b"xyz");
    // Insert a hop-by-hop (8 bytes) and a destination-options header (8 bytes).
    let mut p = inner[..40].to_vec();
    let udp = &inner[40..];
    p[6] = 0; // next: hop-by-hop
    let plen = (udp.len() + 16) as u16;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop → dest opts, PadN
    p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // dest opts → UDP
    p.extend_from_slice(udp);
    let got = decode_one(LinkType::IPV6, &p).unwrap();
    assert_eq!(got.transport, Transport::Udp);
    assert_eq!((got.src_port, got.dst_port), (5353, 53));
    assert_eq!(got.payload, b"xyz");
    assert_eq!(got.payload_len, 3);
}

#[test]
fn ipv4_fragments_join_their_first() {
    let big = vec![7u8; 3000];
    let ip = craft::udp(sa("192.168.1.50:4000"), sa("203.0.113.9:9999"), &big);
    let frags = craft::fragment_ipv4(&ip, 1480);
    assert_eq!(frags.len(), 3);
    let mut d = Decoder::new();
    let got: Vec<_> = frags
        .iter()
        .map(|f| {
            let p = d.decode(&frame(LinkType::RAW, f)).unwrap();
            (
                p.src_port,
                p.dst_port,
                matches!(p.fragment, Fragment::Later { .. }),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(4000, 9999, false), (4000, 9999, true), (4000, 9999, true)]
    );
    assert_eq!(d.stats().fragments, 3);
    assert_eq!(d.stats().fragments_unmatched, 0);
}

#[test]
fn later_fragment_without_first_is_counted() {
    let ip = craft::udp(sa("192.168.1.50:4000"), sa("203.0.113.9:9999"), &[1; 3000]);
    let frags = craft::fragment_ipv4(&ip, 1480);
    let mut d = Decoder::new();
    let p = d.decode(&frame(LinkType::RAW, &frags[1])).unwrap();
    assert_eq!((p.src_port, p.dst_port), (0, 0));
    assert_eq!(d.stats().fragments_unmatched, 1);
}

#[test]
fn snaplen_cut_keeps_wire_length() {
    let ip = craft::tcp(
        sa("192.168.1.50:1"),
        sa("203.0.113.7:80"),
        craft::tcp_flags::ACK,
        &[0u8; 1000],
    );
    let f = craft::ethernet(DEV, GW, &[], &ip);
    let p = decode_one(LinkType::ETHERNET, &f[..68]).unwrap();
    assert_eq!(p.ip_len, 1040);
    assert_eq!(p.payload_len, 1000);
    assert_eq!(p.payload.len(), 68 - 14 - 40);
    // Cut inside the TCP header, after the ports.
    let p = decode_one(LinkType::ETHERNET, &f[..14 + 20 + 6]).unwrap();
    assert_eq!(p.dst_port, 80);
}

#[test]
fn cooked_and_loopback_link_types() {
    let ip = craft::tcp(sa("10.1.1.1:1"), sa("203.0.113.1:2"), 0, b"");
    let sll = craft::linux_sll(DEV, &ip);
    let p = decode_one(LinkType::LINUX_SLL, &sll).unwrap();
    assert_eq!(p.src_mac, Some(DEV));
    assert_eq!(p.dst_port, 2);
    let sll2 = craft::linux_sll2(DEV, &ip);
    let p = decode_one(LinkType::LINUX_SLL2, &sll2).unwrap();
    assert_eq!(p.src_mac, Some(DEV));
    assert_eq!(p.dst_port, 2);
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&ip);
    assert!(decode_one(LinkType::NULL, &null_le).is_some());
    let ip6 = craft::udp(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"), b"");
    let mut null6 = 30u32.to_be_bytes().to_vec();
    null6.extend_from_slice(&ip6);
    assert!(decode_one(LinkType::NULL, &null6).is_some());
    let mut lo = 24u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&ip6);
    assert!(decode_one(LinkType::LOOP, &lo).is_some());
    assert!(decode_one(LinkType::IPV4, &ip).is_some());
    assert!(decode_one(LinkType::RAW_12, &ip6).is_some());
}

#[test]
fn skips_are_counted_by_kind() {
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LinkType(160), b"whatever")).is_none());
    let mut arp = craft::ethernet(DEV, GW, &[], &[0x45; 28]);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(d.decode(&frame(LinkType::ETHERNET, &arp)).is_none());
    assert!(d.decode(&frame(LinkType::ETHERNET, &arp[..10])).is_none());
    assert!(d.decode(&frame(LinkType::RAW, &[0x41; 30])).is_none());
    let s = d.stats();
    assert_eq!(s.unsupported_link_types.get(&160), Some(&1));
    assert_eq!((s.not_ip, s.truncated, s.malformed), (1, 1, 1));
}

#[test]
fn icmp_and_icmpv6() {
    let v4 = craft::echo_request("10.0.0.1".parse().unwrap(), "8.8.8.8".parse().unwrap());
    assert_eq!(
        decode_one(LinkType::RAW, &v4).unwrap().transport,
        Transport::Icmp
    );
    let v6 = craft::echo_request(
        "2001:db8::1".parse().unwrap(),
        "2001:4860::8888".parse().unwrap(),
    );
    assert_eq!(
        decode_one(LinkType::RAW, &v6).unwrap().transport,
        Transport::Icmpv6
    );
}

proptest! {
    #[test]
    fn never_panics(link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276]),
                    data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Decoder::new();
        let _ = d.decode(&frame(LinkType(link), &data));
    }

    #[test]
    fn truncation_never_panics(cut in 0usize..100) {
        let ip = craft::tcp(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"), 0, b"hello");
        let f = craft::ethernet(DEV, GW, &[5], &ip);
        let cut = cut.min(f.len());
        let _ = decode_one(LinkType::ETHERNET, &f[..cut]);
    }
}
