use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::capture::{Frame, LinkType};
use crate::craft;
use proptest::test_runner::TestCaseError;

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
fn the_fragment_tracker_stays_within_its_cap_and_keeps_the_newest() {
    let mut d = Decoder::with_fragment_cap(10);
    let datagram = |i: u16| {
        let dst: SocketAddr = format!("203.0.113.{}:9999", i / 256).parse().unwrap();
        let ip = craft::udp(sa("192.168.1.50:4000"), dst, &[1; 3000]);
        let mut frags = craft::fragment_ipv4(&ip, 1480);
        // Give each datagram its own identification (bytes 4..6; checksums are not checked).
        for f in &mut frags {
            f[4..6].copy_from_slice(&i.to_be_bytes());
        }
        frags
    };
    for i in 0..1000u16 {
        let frags = datagram(i);
        d.decode(&frame(LinkType::RAW, &frags[0])).unwrap();
    }
    // Two generations of 5: each time the young one is full, the old one (5) is dropped.
    assert_eq!(d.stats().fragments_evicted, 1000 - 10);
    let newest = datagram(999);
    let p = d.decode(&frame(LinkType::RAW, &newest[1])).unwrap();
    assert_eq!(p.dst_port, 9999, "the newest first fragment is still known");
    let oldest = datagram(0);
    d.decode(&frame(LinkType::RAW, &oldest[1])).unwrap();
    assert_eq!(d.stats().fragments_unmatched, 1, "the oldest is gone");
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

// ---------------------------------------------------------------------------------------------
// Tunnels.

const INNER_DEV: Mac = Mac([0x02, 0, 0, 0, 0, 0x77]);
const INNER_GW: Mac = Mac([0x02, 0, 0, 0, 0, 0x78]);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The tunnel endpoints.
fn outer() -> (IpAddr, IpAddr) {
    (ip("198.51.100.1"), ip("203.0.113.254"))
}

fn outer6() -> (IpAddr, IpAddr) {
    (ip("2001:db8:ffff::1"), ip("2001:db8:eeee::2"))
}

/// The inner packet: a device's TLS segment.
fn inner_tcp() -> Vec<u8> {
    craft::tcp(
        sa("192.168.1.50:40000"),
        sa("93.184.216.34:443"),
        craft::tcp_flags::PSH | craft::tcp_flags::ACK,
        b"inner payload",
    )
}

fn inner_tcp6() -> Vec<u8> {
    craft::tcp(
        sa("[2001:db8:1::50]:40000"),
        sa("[2606:2800:220:1::1]:443"),
        craft::tcp_flags::ACK,
        b"inner payload",
    )
}

fn inner_frame(ip: &[u8]) -> Vec<u8> {
    craft::ethernet(INNER_DEV, INNER_GW, &[], ip)
}

/// Decodes an outer IP packet framed in Ethernet with a fresh decoder; returns the packet fields
/// that matter here and the decoder's counters.
fn open(outer_ip: &[u8]) -> (Option<Packet<'static>>, DecodeStats) {
    let f = craft::ethernet(DEV, GW, &[], outer_ip);
    let f: &'static [u8] = Box::leak(f.into_boxed_slice());
    let mut d = Decoder::new();
    let p = d.decode(&frame(LinkType::ETHERNET, f));
    if let Some(p) = &p {
        // Zero-copy: the payload lies inside the frame.
        let range = f.as_ptr_range();
        let pr = p.payload.as_ptr_range();
        assert!(
            p.payload.is_empty() || (range.start <= pr.start && pr.end <= range.end),
            "payload borrows the frame"
        );
    }
    (p, d.stats().clone())
}

fn assert_inner_tcp(p: &Packet<'_>) {
    assert_eq!(p.src, ip("192.168.1.50"));
    assert_eq!(p.dst, ip("93.184.216.34"));
    assert_eq!((p.src_port, p.dst_port), (40000, 443));
    assert_eq!(p.transport, Transport::Tcp);
    assert_eq!(p.payload, b"inner payload");
    assert_eq!(p.ip_len, 20 + 20 + 13, "inner IP length, not the outer");
    assert_eq!(p.tcp_flags, craft::tcp_flags::PSH | craft::tcp_flags::ACK);
}

fn tunnel(kind: TunnelKind, (src, dst): (IpAddr, IpAddr), depth: u8) -> Option<Tunnel> {
    Some(Tunnel {
        kind,
        outer_src: src,
        outer_dst: dst,
        depth,
    })
}

/// Only `kind` was opened, once, and nothing was counted against tunnels.
fn assert_opened_once(s: &DecodeStats, kind: TunnelKind) {
    assert_eq!(s.tunnels.get(kind), 1, "{kind}");
    assert_eq!(s.tunnels.total(), 1, "{kind}");
    assert_eq!(
        (
            s.tunnel_malformed,
            s.tunnel_not_decoded,
            s.tunnel_depth_exceeded
        ),
        (0, 0, 0),
        "{kind}"
    );
    assert_eq!(s.packets, 1);
}

fn assert_nothing_opened(s: &DecodeStats) {
    assert_eq!(s.tunnels.total(), 0);
}

#[test]
fn kinds_have_stable_names() {
    let names: Vec<_> = TunnelKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "gre", "erspan", "ipip", "6in4", "4in6", "ip6ip6", "vxlan", "geneve", "gtpu", "teredo"
        ]
    );
    let mut c = TunnelCounts::default();
    c.add(TunnelKind::Vxlan);
    c.add(TunnelKind::Gre);
    c.add(TunnelKind::Vxlan);
    assert_eq!(
        c.to_map().into_iter().collect::<Vec<_>>(),
        [("gre", 1), ("vxlan", 2)]
    );
    assert_eq!(
        serde_json::to_string(&TunnelKind::SixIn4).unwrap(),
        "\"6in4\""
    );
}

#[test]
fn gre_with_checksum_key_and_sequence() {
    let fields = craft::GreFields {
        checksum: true,
        key: Some(0xdead_beef),
        seq: Some(42),
    };
    let (s, d) = outer();
    let pkt = craft::gre(s, d, fields, 0x0800, &inner_tcp());
    let f = craft::ethernet(DEV, GW, &[7], &pkt);
    let mut dec = Decoder::new();
    let p = dec.decode(&frame(LinkType::ETHERNET, &f)).unwrap();
    assert_inner_tcp(&p);
    assert_eq!(p.tunnel, tunnel(TunnelKind::Gre, outer(), 1));
    // An IP packet tunnelled without a frame: the outer MACs are not the inner hosts'.
    assert_eq!((p.src_mac, p.dst_mac), (None, None));
    assert_eq!(p.vlan, Some(7), "the capture link's tag stays");
    assert_opened_once(dec.stats(), TunnelKind::Gre);
    // Every combination of the optional fields.
    for bits in 0..8u8 {
        let fields = craft::GreFields {
            checksum: bits & 1 != 0,
            key: (bits & 2 != 0).then_some(1),
            seq: (bits & 4 != 0).then_some(2),
        };
        let (p, st) = open(&craft::gre(s, d, fields, 0x0800, &inner_tcp()));
        assert_inner_tcp(&p.unwrap());
        assert_opened_once(&st, TunnelKind::Gre);
    }
}

#[test]
fn gre_over_ipv6_carrying_ipv6() {
    let (s, d) = outer6();
    let (p, st) = open(&craft::gre_ip(s, d, &inner_tcp6()));
    let p = p.unwrap();
    assert_eq!(p.src, ip("2001:db8:1::50"));
    assert_eq!(p.dst, ip("2606:2800:220:1::1"));
    assert_eq!(p.dst_port, 443);
    assert_eq!(p.tunnel, tunnel(TunnelKind::Gre, outer6(), 1));
    assert_opened_once(&st, TunnelKind::Gre);
}

#[test]
fn gre_bridging_gives_the_inner_frame_macs_and_tag() {
    let (s, d) = outer();
    let frame_in = craft::ethernet(INNER_DEV, INNER_GW, &[42], &inner_tcp());
    let (p, st) = open(&craft::gre(
        s,
        d,
        craft::GreFields::default(),
        craft::ETHERTYPE_TEB,
        &frame_in,
    ));
    let p = p.unwrap();
    assert_inner_tcp(&p);
    assert_eq!((p.src_mac, p.dst_mac), (Some(INNER_DEV), Some(INNER_GW)));
    assert_eq!(p.vlan, Some(42), "no outer tag: the inner frame's");
    assert_eq!(p.tunnel, tunnel(TunnelKind::Gre, outer(), 1));
    assert_opened_once(&st, TunnelKind::Gre);
}

#[test]
fn erspan_types_one_two_and_three() {
    let (s, d) = outer();
    let mirrored = inner_frame(&inner_tcp());
    let type1 = craft::gre(s, d, craft::GreFields::default(), 0x88be, &mirrored);
    for pkt in [
        type1,
        craft::erspan2(s, d, 100, &mirrored),
        craft::erspan3(s, d, 100, false, &mirrored),
        craft::erspan3(s, d, 100, true, &mirrored),
    ] {
        let (p, st) = open(&pkt);
        let p = p.unwrap();
        assert_inner_tcp(&p);
        assert_eq!(p.src_mac, Some(INNER_DEV));
        assert_eq!(p.tunnel, tunnel(TunnelKind::Erspan, outer(), 1));
        assert_opened_once(&st, TunnelKind::Erspan);
    }
}

#[test]
fn a_mirrored_arp_frame_leaves_the_erspan_packet() {
    let (s, d) = outer();
    let arp = craft::ethernet_raw(INNER_DEV, INNER_GW, 0x0806, &[0; 28]);
    let (p, st) = open(&craft::erspan2(s, d, 1, &arp));
    let p = p.unwrap();
    assert_eq!(p.transport, Transport::Other(47));
    assert_eq!((p.src, p.dst), outer());
    assert_eq!(p.tunnel, None);
    assert_eq!(st.tunnel_not_decoded, 1);
    assert_nothing_opened(&st);
}

#[test]
fn pptp_enhanced_gre_carries_ppp() {
    let (s, d) = outer();
    let (p, st) = open(&craft::pptp(s, d, 9, 0x0021, Some(&inner_tcp())));
    assert_inner_tcp(&p.unwrap());
    assert_opened_once(&st, TunnelKind::Gre);
    // Address/control and protocol-field compression (RFC 1661 §6.5, §6.6).
    let mut pkt = craft::pptp(s, d, 9, 0x0021, Some(&inner_tcp()));
    let at = 20 + 16;
    assert_eq!(&pkt[at..at + 4], &[0xff, 0x03, 0x00, 0x21]);
    pkt.splice(at..at + 4, [0x21]);
    let (p, _) = open(&pkt);
    assert_eq!(p.unwrap().dst_port, 443);
    // LCP (or MPPE-encrypted data) is not an IP packet.
    let (p, st) = open(&craft::pptp(s, d, 9, 0xc021, Some(&[1, 1, 0, 4])));
    assert_eq!(p.unwrap().tunnel, None);
    assert_eq!(st.tunnel_not_decoded, 1);
    // An acknowledgement alone: a plain GRE packet, nothing counted.
    let (p, st) = open(&craft::pptp(s, d, 9, 0, None));
    assert_eq!(p.unwrap().transport, Transport::Other(47));
    assert_eq!((st.tunnel_not_decoded, st.tunnel_malformed), (0, 0));
    assert_nothing_opened(&st);
}

#[test]
fn ip_in_ip_kinds_by_family() {
    let v4 = inner_tcp();
    let v6 = inner_tcp6();
    let cases = [
        (outer(), &v4, TunnelKind::Ipip),
        (outer(), &v6, TunnelKind::SixIn4),
        (outer6(), &v4, TunnelKind::FourIn6),
        (outer6(), &v6, TunnelKind::Ip6ip6),
    ];
    for ((s, d), inner, kind) in cases {
        let (p, st) = open(&craft::ipip(s, d, inner));
        let p = p.unwrap();
        assert_eq!(p.dst_port, 443, "{kind}");
        assert_eq!(p.ip_len as usize, inner.len(), "{kind}");
        assert_eq!(p.tunnel, tunnel(kind, (s, d), 1));
        assert_opened_once(&st, kind);
    }
}

#[test]
fn vxlan_opens_the_inner_frame() {
    let (s, d) = outer();
    let pkt = craft::vxlan(
        SocketAddr::new(s, 51000),
        d,
        5001,
        &inner_frame(&inner_tcp()),
    );
    let (p, st) = open(&pkt);
    let p = p.unwrap();
    assert_inner_tcp(&p);
    assert_eq!((p.src_mac, p.dst_mac), (Some(INNER_DEV), Some(INNER_GW)));
    assert_eq!(p.tunnel, tunnel(TunnelKind::Vxlan, outer(), 1));
    assert_opened_once(&st, TunnelKind::Vxlan);
}

#[test]
fn other_traffic_on_the_vxlan_port_stays_udp() {
    let (s, d) = outer();
    let mut pkt = craft::vxlan(SocketAddr::new(s, 51000), d, 1, &inner_frame(&inner_tcp()));
    // Without the I flag it is not VXLAN.
    pkt[28] = 0;
    let (p, st) = open(&pkt);
    let p = p.unwrap();
    assert_eq!(
        (p.transport, p.dst_port, p.tunnel),
        (Transport::Udp, 4789, None)
    );
    assert_eq!((st.tunnel_malformed, st.tunnel_not_decoded), (0, 0));
    assert_nothing_opened(&st);
    // Too short for a header.
    let (p, st) = open(&craft::udp(
        SocketAddr::new(s, 1),
        SocketAddr::new(d, 4789),
        b"hi",
    ));
    assert_eq!(p.unwrap().tunnel, None);
    assert_nothing_opened(&st);
    // VXLAN carrying ARP: recognised, not opened.
    let arp = craft::ethernet_raw(INNER_DEV, INNER_GW, 0x0806, &[0; 28]);
    let (p, st) = open(&craft::vxlan(SocketAddr::new(s, 1), d, 1, &arp));
    assert_eq!(p.unwrap().transport, Transport::Udp);
    assert_eq!(st.tunnel_not_decoded, 1);
}

#[test]
fn geneve_ethernet_and_ip_payloads_with_options() {
    let (s, d) = outer();
    let src = SocketAddr::new(s, 40001);
    // One option: class 0x0102, type 0x80, length 1 word, then that word.
    let options = [0x01, 0x02, 0x80, 0x01, 0xaa, 0xbb, 0xcc, 0xdd];
    let pkt = craft::geneve(
        src,
        d,
        7,
        craft::ETHERTYPE_TEB,
        &options,
        &inner_frame(&inner_tcp()),
    );
    let (p, st) = open(&pkt);
    let p = p.unwrap();
    assert_inner_tcp(&p);
    assert_eq!(p.src_mac, Some(INNER_DEV));
    assert_eq!(p.tunnel, tunnel(TunnelKind::Geneve, outer(), 1));
    assert_opened_once(&st, TunnelKind::Geneve);
    let (p, st) = open(&craft::geneve(src, d, 7, 0x86dd, &[], &inner_tcp6()));
    assert_eq!(p.unwrap().dst, ip("2606:2800:220:1::1"));
    assert_opened_once(&st, TunnelKind::Geneve);
    // Version 1, or a protocol type not read: not GENEVE as far as this decoder goes.
    let mut v1 = craft::geneve(src, d, 7, 0x0800, &[], &inner_tcp());
    v1[28] |= 0x40;
    let other = craft::geneve(src, d, 7, 0x8847, &[], &inner_tcp());
    for pkt in [v1, other] {
        let (p, st) = open(&pkt);
        assert_eq!(p.unwrap().transport, Transport::Udp);
        assert_eq!((st.tunnel_malformed, st.tunnel_not_decoded), (0, 0));
        assert_nothing_opened(&st);
    }
    // Options running past the capture.
    let mut long = craft::geneve(src, d, 7, 0x0800, &[], &[]);
    long[28] = 0x3f;
    let (p, st) = open(&long);
    assert_eq!(p.unwrap().tunnel, None);
    assert_eq!(st.tunnel_malformed, 1);
}

#[test]
fn gtpu_with_and_without_optional_fields_and_extensions() {
    let (s, d) = outer();
    let enb = SocketAddr::new(s, 2152);
    let pdu_session: &[u8] = &[0x10, 0x09]; // PDU session container: UL, QFI 9
    type Extensions<'e> = &'e [(u8, &'e [u8])];
    let cases: [(Option<u16>, Extensions<'_>); 4] = [
        (None, &[]),
        (Some(77), &[]),
        (None, &[(0x85, pdu_session)]),
        (Some(1), &[(0x85, pdu_session), (0x40, &[0, 0, 0, 0, 0, 0])]),
    ];
    for (seq, ext) in cases {
        let (p, st) = open(&craft::gtpu(enb, d, 0x1234, seq, ext, &inner_tcp()));
        let p = p.unwrap();
        assert_inner_tcp(&p);
        assert_eq!(p.tunnel, tunnel(TunnelKind::Gtpu, outer(), 1));
        assert_opened_once(&st, TunnelKind::Gtpu);
    }
    let (p, st) = open(&craft::gtpu(enb, d, 1, None, &[], &inner_tcp6()));
    assert_eq!(p.unwrap().src, ip("2001:db8:1::50"));
    assert_opened_once(&st, TunnelKind::Gtpu);
    // From port 2152 to another port (a gateway answering from 2152): still GTP-U.
    let back = craft::gtpu(SocketAddr::new(d, 2152), s, 1, None, &[], &inner_tcp());
    let mut back_other_port = back.clone();
    back_other_port[22..24].copy_from_slice(&49120u16.to_be_bytes());
    let (p, _) = open(&back_other_port);
    assert_eq!(p.unwrap().tunnel.map(|t| t.kind), Some(TunnelKind::Gtpu));
}

#[test]
fn gtpu_signalling_and_impostors_stay_udp() {
    let (s, d) = outer();
    let enb = SocketAddr::new(s, 2152);
    let good = craft::gtpu(enb, d, 1, None, &[], &inner_tcp());
    let mut echo = good.clone();
    echo[29] = 1; // echo request
    let mut too_long = good.clone();
    too_long[30..32].copy_from_slice(&9999u16.to_be_bytes());
    let mut v2 = good.clone();
    v2[28] = 0x50; // version 2
    let mut gtp_prime = good.clone();
    gtp_prime[28] = 0x20; // protocol type 0
    for pkt in [echo, too_long, v2, gtp_prime] {
        let (p, st) = open(&pkt);
        let p = p.unwrap();
        assert_eq!((p.transport, p.tunnel), (Transport::Udp, None));
        assert_eq!((st.tunnel_malformed, st.tunnel_not_decoded), (0, 0));
        assert_nothing_opened(&st);
    }
    // An extension header of length 0 is broken.
    let mut bad_ext = craft::gtpu(enb, d, 1, None, &[(0x85, &[0x10, 0x09])], &inner_tcp());
    bad_ext[28 + 12] = 0;
    let (p, st) = open(&bad_ext);
    assert_eq!(p.unwrap().tunnel, None);
    assert_eq!(st.tunnel_malformed, 1);
    // A G-PDU that is not IP.
    let (p, st) = open(&craft::gtpu(enb, d, 1, None, &[], &[0x11; 30]));
    assert_eq!(p.unwrap().transport, Transport::Udp);
    assert_eq!(st.tunnel_not_decoded, 1);
}

#[test]
fn teredo_with_origin_and_authentication() {
    let client = sa("192.0.2.10:3797");
    let server = sa("203.0.113.254:3544");
    let origin: std::net::SocketAddrV4 = "198.51.100.9:40000".parse().unwrap();
    for (auth, origin) in [
        (false, None),
        (false, Some(origin)),
        (true, Some(origin)),
        (true, None),
    ] {
        for (src, dst) in [(client, server), (server, client)] {
            let (p, st) = open(&craft::teredo(src, dst, auth, origin, &inner_tcp6()));
            let p = p.unwrap();
            assert_eq!(p.dst, ip("2606:2800:220:1::1"));
            assert_eq!(p.dst_port, 443);
            assert_eq!(
                p.tunnel,
                tunnel(TunnelKind::Teredo, (src.ip(), dst.ip()), 1)
            );
            assert_opened_once(&st, TunnelKind::Teredo);
        }
    }
}

#[test]
fn other_traffic_on_the_teredo_port_stays_udp() {
    let client = sa("192.0.2.10:3797");
    let server = sa("203.0.113.254:3544");
    // Not IPv6 at all.
    let (p, st) = open(&craft::udp(client, server, &[0x45; 60]));
    assert_eq!(p.unwrap().tunnel, None);
    assert_nothing_opened(&st);
    // IPv6-looking, but the payload length does not account for the datagram.
    let mut bad = craft::teredo(client, server, false, None, &inner_tcp6());
    bad[28 + 5] ^= 1;
    let (p, st) = open(&bad);
    assert_eq!(p.unwrap().transport, Transport::Udp);
    assert_eq!((st.tunnel_malformed, st.tunnel_not_decoded), (0, 0));
    assert_nothing_opened(&st);
}

#[test]
fn vxlan_in_gre_is_two_levels_named_by_the_outermost() {
    let (s, d) = outer();
    let mid = (ip("10.200.0.1"), ip("10.200.0.2"));
    let vx = craft::vxlan(
        SocketAddr::new(mid.0, 50000),
        mid.1,
        9,
        &inner_frame(&inner_tcp()),
    );
    let (p, st) = open(&craft::gre_ip(s, d, &vx));
    let p = p.unwrap();
    assert_inner_tcp(&p);
    assert_eq!(p.tunnel, tunnel(TunnelKind::Gre, outer(), 2));
    assert_eq!(p.src_mac, Some(INNER_DEV));
    assert_eq!(st.tunnels.get(TunnelKind::Gre), 1);
    assert_eq!(st.tunnels.get(TunnelKind::Vxlan), 1);
    assert_eq!(st.packets, 1);
}

#[test]
fn nesting_stops_at_the_cap() {
    let (s, d) = outer();
    let wrap = |levels: usize| {
        let mut pkt = inner_tcp();
        for _ in 0..levels {
            pkt = craft::ipip(s, d, &pkt);
        }
        pkt
    };
    let cap = usize::from(TUNNEL_DEPTH_MAX);
    let (p, st) = open(&wrap(cap));
    let p = p.unwrap();
    assert_inner_tcp(&p);
    assert_eq!(p.tunnel.unwrap().depth, TUNNEL_DEPTH_MAX);
    assert_eq!(st.tunnel_depth_exceeded, 0);
    let (p, st) = open(&wrap(cap + 2));
    let p = p.unwrap();
    // The packet at the cap: still an IP-in-IP packet, two levels short of the TCP segment.
    assert_eq!(p.transport, Transport::Other(4));
    assert_eq!(p.tunnel.unwrap().depth, TUNNEL_DEPTH_MAX);
    assert_eq!(st.tunnel_depth_exceeded, 1);
    assert_eq!(
        st.tunnels.get(TunnelKind::Ipip),
        u64::from(TUNNEL_DEPTH_MAX)
    );
}

#[test]
fn a_broken_level_leaves_the_level_above() {
    let (s, d) = outer();
    let mid = (ip("10.200.0.1"), ip("10.200.0.2"));
    // GRE in GRE, the inner GRE of an unknown version.
    let mut inner_gre = craft::gre_ip(mid.0, mid.1, &inner_tcp());
    inner_gre[21] = 3;
    let (p, st) = open(&craft::gre_ip(s, d, &inner_gre));
    let p = p.unwrap();
    assert_eq!((p.src, p.dst), mid);
    assert_eq!(p.transport, Transport::Other(47));
    assert_eq!(p.tunnel, tunnel(TunnelKind::Gre, outer(), 1));
    assert_eq!(st.tunnel_malformed, 1);
    assert_eq!(st.tunnels.total(), 1);
}

/// Each encapsulation of [`inner_tcp`] (or its IPv6 twin), and where its inner IP header starts
/// in the outer IP packet.
fn samples() -> Vec<(&'static str, Vec<u8>, usize)> {
    let (s, d) = outer();
    let (s6, d6) = outer6();
    let us = SocketAddr::new(s, 50000);
    let eth = inner_frame(&inner_tcp());
    vec![
        ("gre", craft::gre_ip(s, d, &inner_tcp()), 20 + 4),
        (
            "gre-teb",
            craft::gre(s, d, Default::default(), craft::ETHERTYPE_TEB, &eth),
            20 + 4 + 14,
        ),
        ("erspan2", craft::erspan2(s, d, 1, &eth), 20 + 8 + 8 + 14),
        (
            "erspan3",
            craft::erspan3(s, d, 1, true, &eth),
            20 + 8 + 20 + 14,
        ),
        (
            "pptp",
            craft::pptp(s, d, 1, 0x21, Some(&inner_tcp())),
            20 + 16 + 4,
        ),
        ("ipip", craft::ipip(s, d, &inner_tcp()), 20),
        ("6in4", craft::ipip(s, d, &inner_tcp6()), 20),
        ("4in6", craft::ipip(s6, d6, &inner_tcp()), 40),
        ("ip6ip6", craft::ipip(s6, d6, &inner_tcp6()), 40),
        ("vxlan", craft::vxlan(us, d, 1, &eth), 20 + 8 + 8 + 14),
        (
            "geneve",
            craft::geneve(us, d, 1, 0x0800, &[0; 8], &inner_tcp()),
            20 + 8 + 16,
        ),
        (
            "gtpu",
            craft::gtpu(us, d, 1, Some(1), &[(0x85, &[1, 2])], &inner_tcp()),
            20 + 8 + 16,
        ),
        (
            "teredo",
            craft::teredo(us, sa("203.0.113.254:3544"), true, None, &inner_tcp6()),
            20 + 8 + 13,
        ),
    ]
}

#[test]
fn every_sample_opens() {
    for (name, pkt, at) in samples() {
        let (p, st) = open(&pkt);
        let p = p.unwrap();
        assert_eq!(p.dst_port, 443, "{name}");
        assert_eq!(p.tunnel.unwrap().depth, 1, "{name}");
        assert_eq!(st.tunnels.total(), 1, "{name}");
        assert!(
            matches!(pkt[at] >> 4, 4 | 6),
            "{name}: inner header at {at}"
        );
    }
}

#[test]
fn an_inner_packet_cut_short_leaves_the_outer_packet_counted() {
    for (name, pkt, at) in samples() {
        let (s, d) = if pkt[0] >> 4 == 4 { outer() } else { outer6() };
        // Cut inside the inner IP header (the capture's snap length).
        let f = craft::ethernet(DEV, GW, &[], &pkt);
        let cut = &f[..14 + at + 10];
        let mut dec = Decoder::new();
        let p = dec.decode(&frame(LinkType::ETHERNET, cut)).unwrap();
        assert_eq!(p.tunnel, None, "{name}");
        assert_eq!(p.src, s, "{name}");
        assert_eq!(p.dst, d, "{name}");
        assert_eq!(dec.stats().tunnel_malformed, 1, "{name}");
        assert_eq!(dec.stats().tunnels.total(), 0, "{name}");
        // Every cut: no panic, and always a packet once the outer headers are there.
        let mut dec = Decoder::new();
        for n in 0..=f.len() {
            let got = dec.decode(&frame(LinkType::ETHERNET, &f[..n]));
            if n >= 14 + at {
                assert!(got.is_some(), "{name}: cut at {n}");
            }
        }
    }
}

#[test]
fn a_broken_inner_header_leaves_the_outer_packet_counted() {
    for (name, pkt, at) in samples() {
        let mut bad = pkt.clone();
        bad[at] = (bad[at] & 0x0f) | 0x50; // IP version 5
        let (p, st) = open(&bad);
        let p = p.unwrap();
        assert_eq!(p.tunnel, None, "{name}");
        // UDP encapsulations check the inner version before calling it a tunnel at all.
        let counted = st.tunnel_malformed + st.tunnel_not_decoded;
        if matches!(name, "gtpu") {
            assert_eq!(st.tunnel_not_decoded, 1, "{name}");
        } else if matches!(name, "teredo") {
            assert_eq!(counted, 0, "{name}: plain UDP");
        } else {
            assert_eq!(st.tunnel_malformed, 1, "{name}");
        }
        assert_eq!(st.tunnels.total(), 0, "{name}");
    }
}

#[test]
fn inner_fragments_join_by_inner_addresses() {
    let (s, d) = outer();
    let inner = craft::udp(sa("192.168.1.50:4000"), sa("203.0.113.9:9999"), &[5; 3000]);
    let mut dec = Decoder::new();
    for f in craft::fragment_ipv4(&inner, 1480) {
        let pkt = craft::ethernet(DEV, GW, &[], &craft::gre_ip(s, d, &f));
        let p = dec.decode(&frame(LinkType::ETHERNET, &pkt)).unwrap();
        assert_eq!(p.src, ip("192.168.1.50"));
        assert_eq!((p.src_port, p.dst_port), (4000, 9999));
        assert_eq!(p.tunnel.unwrap().kind, TunnelKind::Gre);
    }
    assert_eq!(dec.stats().fragments, 3);
    assert_eq!(dec.stats().fragments_unmatched, 0);
    assert_eq!(dec.stats().tunnels.get(TunnelKind::Gre), 3);
}

#[test]
fn an_outer_fragment_is_not_opened() {
    let (s, d) = outer();
    let big = craft::tcp(
        sa("192.168.1.50:40000"),
        sa("93.184.216.34:443"),
        0x10,
        &[1; 2000],
    );
    let mut dec = Decoder::new();
    for f in craft::fragment_ipv4(&craft::gre_ip(s, d, &big), 1480) {
        let pkt = craft::ethernet(DEV, GW, &[], &f);
        let p = dec.decode(&frame(LinkType::ETHERNET, &pkt)).unwrap();
        assert_eq!((p.src, p.dst), (s, d));
        assert_eq!(p.transport, Transport::Other(47));
        assert_eq!(p.tunnel, None);
    }
    assert_eq!(dec.stats().fragments_unmatched, 0);
    assert_eq!(dec.stats().tunnels.total(), 0);
}

/// The tunnel header of each sample (everything before the inner IP header), for the fuzzing
/// below.
fn headers() -> Vec<(&'static str, Vec<u8>)> {
    samples()
        .into_iter()
        .map(|(name, pkt, at)| (name, pkt[..at].to_vec()))
        .collect()
}

/// Fixes the outer lengths (IPv4 total length, IPv6 payload length, UDP length) after the tail
/// changed, so the random bytes are what the tunnel parsers see.
fn fix_lengths(pkt: &mut [u8]) {
    let len = pkt.len();
    let (proto, ihl) = if pkt[0] >> 4 == 4 {
        pkt[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (pkt[9], usize::from(pkt[0] & 0x0f) * 4)
    } else {
        pkt[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        (pkt[6], 40)
    };
    if proto == 17 {
        pkt[ihl + 4..ihl + 6].copy_from_slice(&((len - ihl) as u16).to_be_bytes());
    }
}

proptest! {
    #[test]
    fn random_bytes_after_each_tunnel_header(which in 0usize..13,
                                             tail in prop::collection::vec(any::<u8>(), 0..120)) {
        let (name, mut pkt) = headers().swap_remove(which);
        pkt.extend_from_slice(&tail);
        fix_lengths(&mut pkt);
        let outer_src = if pkt[0] >> 4 == 4 { outer().0 } else { outer6().0 };
        let f = craft::ethernet(DEV, GW, &[], &pkt);
        let mut dec = Decoder::new();
        let p = dec.decode(&frame(LinkType::ETHERNET, &f));
        let p = p.unwrap_or_else(|| panic!("{name}: the outer packet always decodes"));
        let s = dec.stats();
        match p.tunnel {
            None => {
                prop_assert_eq!(p.src, outer_src, "{}", name);
                prop_assert_eq!(s.tunnels.total(), 0);
            }
            Some(t) => {
                prop_assert_eq!(t.outer_src, outer_src, "{}", name);
                prop_assert!(t.depth >= 1 && t.depth <= TUNNEL_DEPTH_MAX);
                prop_assert_eq!(s.tunnels.total(), u64::from(t.depth));
            }
        }
        prop_assert!(s.tunnel_malformed + s.tunnel_not_decoded + s.tunnel_depth_exceeded <= 1);
    }

    #[test]
    fn corrupted_tunnel_headers_never_panic(which in 0usize..13,
                                            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let (_, pkt, at) = samples().swap_remove(which);
        let mut pkt = pkt;
        let ihl = if pkt[0] >> 4 == 4 { 20 } else { 40 };
        // Corrupt the tunnel header and the start of the inner packet, not the outer IP header.
        for (pos, byte) in flips {
            let span = (at + 20).min(pkt.len()) - ihl;
            let i = ihl + pos % span;
            pkt[i] = byte;
        }
        let f = craft::ethernet(DEV, GW, &[], &pkt);
        let mut dec = Decoder::new();
        prop_assert!(dec.decode(&frame(LinkType::ETHERNET, &f)).is_some());
    }
}

// ---------------------------------------------------------------------------------------------
// The decoder against the old one (`reference.rs`): same packets, same counters.

/// An IPv6 UDP packet with `ext` (extension headers, the last one's next header UDP) inserted
/// after the fixed header; `first` is the first extension header's type.
fn ipv6_with(first: u8, ext: &[u8]) -> Vec<u8> {
    let plain = craft::udp(sa("[2001:db8::1]:5353"), sa("[2001:db8::2]:53"), b"query");
    let mut p = plain[..40].to_vec();
    p[6] = first;
    p[4..6].copy_from_slice(&((plain.len() - 40 + ext.len()) as u16).to_be_bytes());
    p.extend_from_slice(ext);
    p.extend_from_slice(&plain[40..]);
    p
}

/// Frames of every shape the decoder reads: the seeds the damage below starts from.
fn seed_frames() -> Vec<(LinkType, Vec<u8>)> {
    let tcp4 = craft::tcp(
        sa("192.168.1.50:51514"),
        sa("203.0.113.7:443"),
        craft::tcp_flags::SYN,
        b"hello",
    );
    let udp6 = craft::udp(sa("[2001:db8::1]:5353"), sa("[2001:db8::2]:53"), b"query");
    let icmp = craft::echo_request(ip("10.0.0.1"), ip("10.0.0.2"));
    let eth = |ip: &[u8]| (LinkType::ETHERNET, craft::ethernet(DEV, GW, &[], ip));
    let mut seeds = vec![
        eth(&tcp4),
        (LinkType::ETHERNET, craft::ethernet(DEV, GW, &[100], &udp6)),
        (
            LinkType::ETHERNET,
            craft::ethernet(DEV, GW, &[100, 200], &icmp),
        ),
        (LinkType::LINUX_SLL, craft::linux_sll(DEV, &tcp4)),
        (LinkType::LINUX_SLL2, craft::linux_sll2(DEV, &udp6)),
        (LinkType::RAW, tcp4.clone()),
        (LinkType::IPV4, icmp.clone()),
        (LinkType::IPV6, udp6.clone()),
        (LinkType::NULL, [&2u32.to_le_bytes()[..], &tcp4].concat()),
        (LinkType::LOOP, [&30u32.to_be_bytes()[..], &udp6].concat()),
        // Hop-by-hop then destination options; a first and a later IPv6 fragment.
        eth(&ipv6_with(
            0,
            &[60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0],
        )),
        eth(&ipv6_with(44, &[17, 0, 0, 1, 0, 0, 0, 9])),
        eth(&ipv6_with(44, &[17, 0, 0, 0x10, 0, 0, 0, 9])),
    ];
    let big = craft::udp(sa("10.0.0.1:1000"), sa("10.0.0.2:2000"), &[7u8; 64]);
    seeds.extend(craft::fragment_ipv4(&big, 24).iter().map(|f| eth(f)));
    seeds.extend(samples().iter().map(|(_, pkt, _)| eth(pkt)));
    seeds
}

/// Decodes `frames` in order with the decoder and with the reference; both must agree on every
/// packet and on the counters at the end.
fn same_as_reference(frames: &[(LinkType, Vec<u8>)]) -> Result<(), TestCaseError> {
    let mut new = Decoder::new();
    let mut old = reference::Decoder::default();
    for (i, (link, data)) in frames.iter().enumerate() {
        let f = Frame {
            ts_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000_000,
            ..frame(*link, data)
        };
        prop_assert_eq!(new.decode(&f), old.decode(&f), "frame {}", i);
    }
    prop_assert_eq!(new.stats(), &old.stats);
    Ok(())
}

#[test]
fn every_seed_decodes_as_the_reference_does() {
    let seeds = seed_frames();
    same_as_reference(&seeds).unwrap();
    // The seeds are packets, not skips (the damage below makes those).
    let mut d = Decoder::new();
    for (link, data) in &seeds {
        assert!(
            d.decode(&frame(*link, data)).is_some(),
            "{link:?} {data:02x?}"
        );
    }
}

proptest! {
    #[test]
    fn same_as_reference_on_any_bytes(
        link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 147, 228, 229, 276]),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        same_as_reference(&[(LinkType(link), data)])?;
    }

    #[test]
    fn same_as_reference_on_damaged_frames(
        picks in prop::collection::vec(
            (any::<prop::sample::Index>(),
             prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
             prop::option::of(any::<prop::sample::Index>())),
            1..8),
    ) {
        let seeds = seed_frames();
        let frames: Vec<_> = picks
            .into_iter()
            .map(|(which, flips, cut)| {
                let (link, mut data) = which.get(&seeds).clone();
                for (at, byte) in flips {
                    let i = at.index(data.len());
                    data[i] = byte;
                }
                if let Some(cut) = cut {
                    data.truncate(cut.index(data.len() + 1));
                }
                (link, data)
            })
            .collect();
        same_as_reference(&frames)?;
    }
}

proptest! {
    /// The cheap test in front of `examine` only skips packets the old `examine` (which had no
    /// such test) found plain; everywhere else the two agree. The packets are the outer packets
    /// of the tunnel samples with their protocol, ports or fragment changed at random.
    #[test]
    fn may_carry_skips_only_plain_packets(
        which in any::<prop::sample::Index>(),
        proto in prop::option::of(prop_oneof![
            Just(4u8), Just(6), Just(17), Just(41), Just(47), any::<u8>()
        ]),
        sport in prop::option::of(prop_oneof![Just(2152u16), Just(3544), any::<u16>()]),
        dport in prop::option::of(prop_oneof![
            Just(4789u16), Just(6081), Just(2152), Just(3544), any::<u16>()
        ]),
        first_fragment in prop::option::of(any::<u32>()),
    ) {
        let samples = samples();
        let (name, pkt, _) = which.get(&samples);
        let ethertype = if pkt[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
        let mut p = reference::net::decode_ip(ethertype, pkt).unwrap();
        if let Some(proto) = proto {
            p.transport = Transport::from_ip_proto(proto);
        }
        p.src_port = sport.unwrap_or(p.src_port);
        p.dst_port = dport.unwrap_or(p.dst_port);
        if let Some(id) = first_fragment {
            p.fragment = Fragment::First { id };
        }
        let old = reference::tunnel::examine(&p);
        prop_assert_eq!(tunnel::examine(&p), old, "{}", name);
        if !tunnel::may_carry(&p) {
            prop_assert_eq!(old, tunnel::Found::Plain, "{}", name);
        }
    }
}
