//! Tunnels: the real captures of ../shared/pcaps (the "re-routing set") opened by the decoder,
//! their flows through the binary compared with golden lists, and the same inner session plain
//! and tunnelled giving the same flows.
//!
//! Flow byte counts of a tunnelled conversation are the INNER packets' IP lengths (`ip_len` of
//! the decoded inner packet): the tunnel's own headers are not counted, so a session gives the
//! same bytes whichever way it travelled.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use common::{golden, run, write_pcap};
use egresswatch::capture::{Frame, LinkType, Replay};
use egresswatch::craft::{self, tcp_flags::*};
use egresswatch::decode::{DecodeStats, Decoder, Transport, Tunnel, TunnelKind};
use egresswatch::flow::{FlowConfig, FlowTable, Sides};
use proptest::prelude::*;
use serde_json::{Value, json};

use common::lab::{CAMERA as DEV, GATEWAY as GW, MS, T0};

/// The captures this file reads, by golden name.
const CAPTURES: &[(&str, &str)] = &[
    ("tunnel_gre_pptp", "ndpi_gre.pcapng"),
    ("tunnel_gre_sample", "sv_gre-sample.pcap"),
    ("tunnel_erspan", "tcpdump_erspan-type-ii-3.pcap"),
    ("tunnel_vxlan", "ndpi_vxlan.pcap"),
    ("tunnel_geneve", "tcpdump_geneve.pcap"),
    ("tunnel_gtpu", "ndpi_ipv6_in_gtp.pcap"),
    ("tunnel_6in4", "ndpi_6in4tunnel.pcap"),
    ("tunnel_teredo", "sv_teredo.pcap"),
    ("tunnel_gre_heapoverflow", "tcpdump_gre-heapoverflow-1.pcap"),
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// One decoded packet, as far as these tests look.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    kind: Option<&'static str>,
    outer: Option<(IpAddr, IpAddr)>,
    depth: u8,
    src: IpAddr,
    dst: IpAddr,
    transport: Transport,
    src_port: u16,
    dst_port: u16,
    vlan: Option<u16>,
}

/// Every packet of a capture through [`Replay`] and [`Decoder`].
fn scan(name: &str) -> Option<(Vec<Seen>, DecodeStats)> {
    let path = common::shared_capture(name)?;
    let mut replay = Replay::open(&[path]).unwrap();
    let mut decoder = Decoder::new();
    let mut seen = Vec::new();
    while let Some(frame) = replay.next_frame().unwrap() {
        if let Some(p) = decoder.decode(&frame) {
            seen.push(Seen {
                kind: p.tunnel.map(|t| t.kind.as_str()),
                outer: p.tunnel.map(|t| (t.outer_src, t.outer_dst)),
                depth: p.tunnel.map_or(0, |t| t.depth),
                src: p.src,
                dst: p.dst,
                transport: p.transport,
                src_port: p.src_port,
                dst_port: p.dst_port,
                vlan: p.vlan,
            });
        }
    }
    Some((seen, decoder.stats().clone()))
}

/// The (kind, sorted endpoint pair, transport) conversations seen.
fn conversations(seen: &[Seen]) -> BTreeSet<(Option<&'static str>, IpAddr, IpAddr, Transport)> {
    seen.iter()
        .map(|s| {
            let (a, b) = if s.src <= s.dst {
                (s.src, s.dst)
            } else {
                (s.dst, s.src)
            };
            (s.kind, a, b, s.transport)
        })
        .collect()
}

fn only_kind(stats: &DecodeStats, kind: TunnelKind, n: u64) {
    assert_eq!(stats.tunnels.get(kind), n, "{kind}");
    assert_eq!(stats.tunnels.total(), n, "{kind}: no other kind");
    assert_eq!(
        (
            stats.tunnel_malformed,
            stats.tunnel_not_decoded,
            stats.tunnel_depth_exceeded
        ),
        (0, 0, 0),
        "{kind}"
    );
}

#[test]
fn gre_sample_opens_every_packet() {
    let Some((seen, stats)) = scan("sv_gre-sample.pcap") else {
        return;
    };
    assert_eq!(seen.len(), 40);
    only_kind(&stats, TunnelKind::Gre, 40);
    let endpoints = [ip("172.27.1.66"), ip("66.59.109.137")];
    for s in &seen {
        let (a, b) = s.outer.unwrap();
        assert!(endpoints.contains(&a) && endpoints.contains(&b) && a != b);
        assert_eq!((s.kind, s.depth), (Some("gre"), 1));
    }
    // The inner conversations: SSH, DNS and ping between two hosts, and NTP to three servers.
    let ssh = seen
        .iter()
        .filter(|s| s.transport == Transport::Tcp && s.dst_port == 22)
        .count();
    assert!(ssh > 0);
    let convs = conversations(&seen);
    let g = Some("gre");
    for want in [
        (g, ip("66.59.111.190"), ip("172.28.2.3"), Transport::Tcp),
        (g, ip("66.59.111.190"), ip("172.28.2.3"), Transport::Udp),
        (g, ip("66.59.111.190"), ip("172.28.2.3"), Transport::Icmp),
        (g, ip("66.59.111.190"), ip("129.170.17.4"), Transport::Udp),
        (g, ip("18.26.4.105"), ip("66.59.111.190"), Transport::Udp),
        (g, ip("66.59.111.182"), ip("66.59.111.190"), Transport::Udp),
    ] {
        assert!(convs.contains(&want), "{want:?} in {convs:?}");
    }
    assert_eq!(convs.len(), 6);
}

#[test]
fn pptp_enhanced_gre_opens_to_the_ppp_payload() {
    let Some((seen, stats)) = scan("ndpi_gre.pcapng") else {
        return;
    };
    only_kind(&stats, TunnelKind::Gre, 1);
    let s = &seen[0];
    assert_eq!(s.outer, Some((ip("109.105.228.253"), ip("10.177.98.84"))));
    assert_eq!((s.src, s.dst), (ip("192.168.10.210"), ip("192.168.103.40")));
    assert_eq!(
        (s.transport, s.src_port, s.dst_port),
        (Transport::Udp, 5060, 5060)
    );
    assert!(s.vlan.is_some(), "the capture link's tag stays");
}

#[test]
fn erspan_mirrors_of_non_ip_frames_stay_the_gre_packets() {
    let Some((seen, stats)) = scan("tcpdump_erspan-type-ii-3.pcap") else {
        return;
    };
    // STP, CDP-like LLC and ARP frames mirrored: nothing to open, every packet counted.
    assert_eq!(seen.len(), 108);
    assert_eq!(stats.tunnel_not_decoded, 108);
    assert_eq!(stats.tunnels.total(), 0);
    for s in &seen {
        assert_eq!(s.kind, None);
        assert_eq!((s.src, s.dst), (ip("192.168.1.172"), ip("192.168.1.249")));
        assert_eq!(s.transport, Transport::Other(47));
    }
}

#[test]
fn a_real_erspan_header_is_read_at_the_right_offset() {
    let Some(path) = common::shared_capture("tcpdump_erspan-type-ii-3.pcap") else {
        return;
    };
    let mut replay = Replay::open(&[path]).unwrap();
    let frame = replay.next_frame().unwrap().unwrap();
    let data = frame.data.to_vec();
    // Ethernet 14, IPv4 20, GRE with sequence number 8, ERSPAN II 8: the mirrored frame at 50.
    assert_eq!(&data[14 + 20..14 + 20 + 4], &[0x10, 0x00, 0x88, 0xbe]);
    assert_eq!(data[14 + 28] >> 4, 1, "ERSPAN version 1 (type II)");
    // Put an IP frame in the place of the mirrored STP frame, keeping the real headers.
    let inner = craft::tcp(sa("10.9.8.7:1234"), sa("203.0.113.5:443"), SYN, b"");
    let mut f = data[..50].to_vec();
    f.extend_from_slice(&craft::ethernet(DEV, GW, &[], &inner));
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    let mut d = Decoder::new();
    let p = d
        .decode(&Frame {
            data: &f,
            wire_len: f.len() as u32,
            ..frame
        })
        .unwrap();
    assert_eq!(
        p.tunnel,
        Some(Tunnel {
            kind: TunnelKind::Erspan,
            outer_src: ip("192.168.1.172"),
            outer_dst: ip("192.168.1.249"),
            depth: 1
        })
    );
    assert_eq!((p.dst, p.dst_port), (ip("203.0.113.5"), 443));
    assert_eq!(p.src_mac, Some(DEV), "the mirrored frame's MAC");
}

#[test]
fn vxlan_capture_opens_to_the_overlay() {
    let Some((seen, stats)) = scan("ndpi_vxlan.pcap") else {
        return;
    };
    assert_eq!(seen.len(), 127);
    only_kind(&stats, TunnelKind::Vxlan, 127);
    let convs = conversations(&seen);
    let v = Some("vxlan");
    assert_eq!(
        convs,
        BTreeSet::from([
            (v, ip("10.10.20.4"), ip("157.240.224.35"), Transport::Tcp),
            (v, ip("8.8.8.8"), ip("10.10.20.4"), Transport::Udp),
        ])
    );
    for s in &seen {
        let (a, b) = s.outer.unwrap();
        assert_eq!(
            BTreeSet::from([a, b]),
            BTreeSet::from([ip("192.168.22.4"), ip("192.168.22.5")])
        );
        assert!(s.vlan.is_some(), "the capture link's tag");
    }
    assert!(seen.iter().any(|s| s.dst_port == 443));
    assert!(seen.iter().any(|s| s.dst_port == 53));
}

#[test]
fn geneve_capture_opens_to_the_overlay() {
    let Some((seen, stats)) = scan("tcpdump_geneve.pcap") else {
        return;
    };
    assert_eq!(seen.len(), 39);
    only_kind(&stats, TunnelKind::Geneve, 39);
    let g = Some("geneve");
    assert_eq!(
        conversations(&seen),
        BTreeSet::from([
            (g, ip("30.0.0.1"), ip("30.0.0.2"), Transport::Tcp),
            (g, ip("30.0.0.1"), ip("30.0.0.2"), Transport::Icmp),
        ])
    );
    assert!(seen.iter().any(|s| s.dst_port == 22));
    for s in &seen {
        let (a, b) = s.outer.unwrap();
        assert_eq!(
            BTreeSet::from([a, b]),
            BTreeSet::from([ip("20.0.0.1"), ip("20.0.0.2")])
        );
    }
}

#[test]
fn gtpu_capture_opens_to_the_subscribers_ipv6() {
    let Some((seen, stats)) = scan("ndpi_ipv6_in_gtp.pcap") else {
        return;
    };
    only_kind(&stats, TunnelKind::Gtpu, 2);
    assert_eq!(
        seen[0].outer,
        Some((ip("10.238.80.26"), ip("10.238.254.75")))
    );
    assert_eq!(
        (seen[0].src, seen[0].dst),
        (
            ip("2607:fc20:4052:39e:490a:ea4d:17fe:e09c"),
            ip("fd00:976a:bc67:193e::7")
        )
    );
    assert_eq!(
        (seen[0].transport, seen[0].src_port, seen[0].dst_port),
        (Transport::Udp, 49120, 25658)
    );
    assert_eq!(
        seen[1].outer,
        Some((ip("10.238.36.92"), ip("10.238.254.77")))
    );
    assert_eq!(
        (seen[1].src, seen[1].dst, seen[1].transport),
        (
            ip("2a01:4c8:c014:144e:1:2:945b:6761"),
            ip("2a01:4c8:f000:f49::4"),
            Transport::Other(50)
        )
    );
}

#[test]
fn six_in_four_capture_opens_every_packet() {
    let Some((seen, stats)) = scan("ndpi_6in4tunnel.pcap") else {
        return;
    };
    assert_eq!(seen.len(), 127);
    only_kind(&stats, TunnelKind::SixIn4, 127);
    for s in &seen {
        let (a, b) = s.outer.unwrap();
        assert_eq!(
            BTreeSet::from([a, b]),
            BTreeSet::from([ip("174.3.73.24"), ip("184.105.255.26")])
        );
        assert!(s.src.is_ipv6() && s.dst.is_ipv6());
    }
    let convs = conversations(&seen);
    let k = Some("6in4");
    assert!(convs.contains(&(
        k,
        ip("2001:470:1f17:13f:3e97:eff:fe73:4dec"),
        ip("2a03:2880:1010:6f03:face:b00c:0:2"),
        Transport::Tcp
    )));
    assert!(convs.contains(&(
        k,
        ip("2001:470:1f16:13f::2"),
        ip("2a03:2880:fffe:b:face:b00c:0:99"),
        Transport::Udp
    )));
}

#[test]
fn teredo_capture_opens_only_the_teredo_packets() {
    let Some((seen, stats)) = scan("sv_teredo.pcap") else {
        return;
    };
    assert_eq!(seen.len(), 78);
    only_kind(&stats, TunnelKind::Teredo, 4);
    let teredo: Vec<&Seen> = seen.iter().filter(|s| s.kind.is_some()).collect();
    assert_eq!(teredo.len(), 4);
    for s in &teredo {
        assert!(s.src.is_ipv6() && s.dst.is_ipv6());
        let (a, b) = s.outer.unwrap();
        assert!(a == ip("192.168.2.16") || b == ip("192.168.2.16"));
    }
    // The router solicitation to the server, the echo request via Teredo, and a bubble.
    assert!(
        teredo
            .iter()
            .any(|s| s.src == ip("2001:0:4137:9e50:8000:f12a:b9c8:2815")
                && s.dst == ip("2001:4860:0:2001::68")
                && s.transport == Transport::Icmpv6)
    );
    assert!(teredo.iter().any(|s| s.dst == ip("ff02::2")));
    assert!(teredo.iter().any(|s| s.transport == Transport::Other(59)));
    // The rest of the capture (HTTP, DNS, NetBIOS, DHCP, and UDP to the relay) is not Teredo.
    for s in seen.iter().filter(|s| s.kind.is_none()) {
        assert!(s.src.is_ipv4());
    }
}

#[test]
fn gre_heap_overflow_reproducer_yields_nothing_and_no_panic() {
    let Some((seen, stats)) = scan("tcpdump_gre-heapoverflow-1.pcap") else {
        return;
    };
    // Frame 1 has EtherType 0x3030 (not IP); frame 2 an IPv4 header of version 0: the damage is
    // before any GRE header, so both are skipped by the IP decoder.
    assert!(seen.is_empty());
    assert_eq!((stats.not_ip, stats.malformed, stats.packets), (1, 1, 0));
    assert_eq!(stats.tunnels.total(), 0);
}

/// The flows of a run of the binary, as (remote ip, remote port, transport), in output order.
fn flow_remotes(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|f| {
            json!({
                "remote": f["remote"]["ip"],
                "port": f["remote"]["port"],
                "transport": f["transport"],
            })
        })
        .collect()
}

#[test]
fn captures_give_the_golden_inner_flows() {
    if common::shared().is_none() {
        return;
    }
    for (golden_name, file) in CAPTURES {
        let r = common::replay_flows(&common::shared_capture(file).unwrap());
        golden(golden_name, &flow_remotes(&r.json()));
    }
}

// ---------------------------------------------------------------------------------------------
// The same inner session, plain and tunnelled.

/// One packet of a session: from the device, TCP flags, payload length.
type Step = (bool, u8, usize);

fn session_steps() -> Vec<Step> {
    vec![
        (true, SYN, 0),
        (false, SYN | ACK, 0),
        (true, ACK, 0),
        (true, PSH | ACK, 300),
        (false, PSH | ACK, 1200),
        (false, ACK, 700),
        (true, FIN | ACK, 0),
        (false, FIN | ACK, 0),
        (true, ACK, 0),
    ]
}

const DEVICE: &str = "192.168.1.50:40000";
const REMOTE: &str = "93.184.216.34:443";

/// The inner IP packets of a session.
fn session(steps: &[Step]) -> Vec<(bool, Vec<u8>)> {
    let (d, r) = (sa(DEVICE), sa(REMOTE));
    steps
        .iter()
        .map(|&(out, flags, len)| {
            let payload = vec![0x5a; len];
            let pkt = if out {
                craft::tcp(d, r, flags, &payload)
            } else {
                craft::tcp(r, d, flags, &payload)
            };
            (out, pkt)
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Wrap {
    Plain,
    Gre,
    Vxlan,
    Gtpu,
    Geneve,
    Ipip,
}

/// The frame that carries `inner` (from the device when `out`) the `wrap` way. The tunnel runs
/// between the site's router and a concentrator; its outer direction follows the inner one.
fn wrap(how: Wrap, out: bool, inner: &[u8]) -> Vec<u8> {
    let (site, hub) = (ip("198.51.100.1"), ip("203.0.113.254"));
    let (s, d) = if out { (site, hub) } else { (hub, site) };
    let (smac, dmac) = if out { (DEV, GW) } else { (GW, DEV) };
    let outer = match how {
        Wrap::Plain => inner.to_vec(),
        Wrap::Gre => craft::gre_ip(s, d, inner),
        Wrap::Ipip => craft::ipip(s, d, inner),
        Wrap::Vxlan => craft::vxlan(
            SocketAddr::new(s, 49152),
            d,
            77,
            &craft::ethernet(smac, dmac, &[], inner),
        ),
        Wrap::Gtpu => craft::gtpu(SocketAddr::new(s, 2152), d, 0x100, Some(1), &[], inner),
        Wrap::Geneve => craft::geneve(SocketAddr::new(s, 49152), d, 77, 0x0800, &[], inner),
    };
    craft::ethernet(smac, dmac, &[], &outer)
}

/// What must not depend on the tunnel: the endpoints and the inner packets' counts.
fn flow_facts(f: &Value) -> Value {
    json!({
        "device": f["device"]["ip"],
        "device_port": f["device"]["port"],
        "remote": f["remote"]["ip"],
        "remote_port": f["remote"]["port"],
        "transport": f["transport"],
        "start": f["start"],
        "end": f["end"],
        "bytes_out": f["bytes_out"],
        "bytes_in": f["bytes_in"],
        "packets_out": f["packets_out"],
        "packets_in": f["packets_in"],
        "payload_bytes_out": f["payload_bytes_out"],
        "payload_bytes_in": f["payload_bytes_in"],
        "flow_id": f["flow_id"],
    })
}

#[test]
fn the_same_session_plain_or_tunnelled_gives_the_same_flow_record() {
    let dir = tempfile::tempdir().unwrap();
    let packets = session(&session_steps());
    let inner_bytes: usize = packets.iter().map(|(_, p)| p.len()).sum();
    let mut records = BTreeMap::new();
    for how in [Wrap::Plain, Wrap::Gre, Wrap::Vxlan, Wrap::Gtpu] {
        let frames: Vec<(i64, Vec<u8>)> = packets
            .iter()
            .enumerate()
            .map(|(i, (out, p))| (T0 + i as i64 * MS, wrap(how, *out, p)))
            .collect();
        let pcap = dir.path().join(format!("{how:?}.pcap"));
        write_pcap(&pcap, LinkType::ETHERNET, &frames);
        let r = run(&[
            "replay".as_ref(),
            pcap.as_os_str(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
            "--events".as_ref(),
            "flow".as_ref(),
        ]);
        assert_eq!(r.code, 0, "{how:?}: {}", r.stderr);
        let flows: Vec<Value> = r.events("flow").iter().map(flow_facts).collect();
        assert_eq!(
            flows.len(),
            1,
            "{how:?}: one flow, the inner one: {flows:?}"
        );
        let f = &flows[0];
        assert_eq!(f["remote"], "93.184.216.34", "{how:?}");
        let bytes = f["bytes_out"].as_u64().unwrap() + f["bytes_in"].as_u64().unwrap();
        assert_eq!(bytes as usize, inner_bytes, "{how:?}: inner IP lengths");
        records.insert(format!("{how:?}"), flows);
    }
    let plain = records["Plain"].clone();
    for (how, flows) in &records {
        assert_eq!(flows, &plain, "{how} against plain");
    }
}

/// The flows a decoder and a flow table make of these frames: (device, remote, transport,
/// bytes out, bytes in, packets out, packets in, payload out, payload in).
type FlowFacts = (SocketAddr, SocketAddr, Transport, [u64; 6]);

fn flows_of(frames: &[Vec<u8>]) -> Vec<FlowFacts> {
    let mut table: FlowTable<()> = FlowTable::new(FlowConfig {
        max_flows: 64,
        idle_timeout_ns: 120_000_000_000,
        sides: Sides {
            local_networks: vec!["192.168.0.0/16".parse().unwrap()],
            device_networks: vec![],
            device_macs: vec![],
        },
    });
    let mut decoder = Decoder::new();
    let mut ended = Vec::new();
    for (i, data) in frames.iter().enumerate() {
        let frame = Frame {
            ts_ns: T0 + i as i64 * MS,
            link_type: LinkType::ETHERNET,
            data,
            wire_len: data.len() as u32,
            source: 0,
            index: i as u64 + 1,
        };
        let p = decoder.decode(&frame).unwrap();
        table.update(&p, frame.ts_ns, (0, i as u64 + 1), &mut ended);
    }
    table.drain(&mut ended);
    let mut out: Vec<FlowFacts> = ended
        .into_iter()
        .map(|(f, _)| {
            (
                SocketAddr::new(f.device.ip, f.device.port),
                SocketAddr::new(f.remote.ip, f.remote.port),
                f.transport,
                [
                    f.bytes_out,
                    f.bytes_in,
                    f.packets_out,
                    f.packets_in,
                    f.payload_out,
                    f.payload_in,
                ],
            )
        })
        .collect();
    out.sort_by_key(|f| (f.0, f.1));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any session shape, any encapsulation: the flows are those of the plain session.
    #[test]
    fn tunnelled_sessions_count_like_plain_ones(
        steps in prop::collection::vec(
            (any::<bool>(), prop::sample::select(vec![ACK, PSH | ACK, SYN, FIN | ACK]), 0usize..1400),
            1..20),
        how in prop::sample::select(vec![Wrap::Gre, Wrap::Vxlan, Wrap::Gtpu, Wrap::Geneve, Wrap::Ipip]),
    ) {
        let packets = session(&steps);
        let plain: Vec<Vec<u8>> = packets.iter().map(|(o, p)| wrap(Wrap::Plain, *o, p)).collect();
        let wrapped: Vec<Vec<u8>> = packets.iter().map(|(o, p)| wrap(how, *o, p)).collect();
        let a = flows_of(&plain);
        let b = flows_of(&wrapped);
        // A SYN after both FINs starts a new flow: one flow or more, but the same ones.
        prop_assert!(!a.is_empty());
        prop_assert_eq!(a, b);
    }
}

#[test]
fn teredo_session_counts_like_the_plain_ipv6_one() {
    let (d, r) = (sa("[2001:0:4137:9e50::1]:50000"), sa("[2001:4860::68]:443"));
    let client = sa("192.168.2.16:3797");
    let server = sa("65.55.158.80:3544");
    let origin: SocketAddrV4 = "65.55.158.80:3544".parse().unwrap();
    let mut plain = Vec::new();
    let mut tunnelled = Vec::new();
    for (i, (out, len)) in [(true, 100), (false, 900), (true, 0)]
        .into_iter()
        .enumerate()
    {
        let pkt = if out {
            craft::tcp(d, r, ACK, &vec![1; len])
        } else {
            craft::tcp(r, d, ACK, &vec![2; len])
        };
        plain.push(craft::ethernet(DEV, GW, &[], &pkt));
        let udp = if out {
            craft::teredo(client, server, false, None, &pkt)
        } else {
            craft::teredo(server, client, i == 1, Some(origin), &pkt)
        };
        tunnelled.push(craft::ethernet(DEV, GW, &[], &udp));
    }
    assert_eq!(flows_of(&plain), flows_of(&tunnelled));
}
