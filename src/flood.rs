//! Flood captures: hostile input that tries to make a run hold or write without bound.
//!
//! Deterministic builders (no randomness needed: every item differs by its index) used by
//! `examples/gen_flood.rs`, `scripts/bench.sh --floods` and `tests/floods.rs`. Each flood is a
//! sequence of Ethernet frames from one device, `192.168.1.7`, after one non-IP frame at
//! [`T0`]; the flood itself starts [`FLOOD_START_NS`] later, past the hard-coded-address grace
//! period, and its frames are 1 µs apart, so no flow goes idle. Nothing is sent anywhere: this
//! only builds bytes. Not on any analysis path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::craft;
use crate::decode::Mac;

/// 2026-01-15T10:00:00Z.
pub const T0: i64 = 1_768_471_200_000_000_000;
/// The flood starts this long after [`T0`] (past the 60 s hard-coded grace).
pub const FLOOD_START_NS: i64 = 61_000_000_000;
/// The device every flood comes from (or goes to).
pub const DEVICE: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 7);
/// The resolver DNS floods answer from (public, so the flow is egress).
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(9, 9, 9, 9);
const DEVICE_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x07]);
const GATEWAY_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);

/// The kinds of flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// `n` SYNs to `n` distinct public addresses and ports (one flow each).
    Scan,
    /// `n` DNS responses, each naming a distinct name at a distinct address, on one UDP flow.
    DnsNames,
    /// `n` DNS responses of [`ANSWERS_PER_MESSAGE`] A records each.
    DnsAnswers,
    /// `n` DNS responses whose CNAME chain is [`CNAME_DEPTH`] deep (more than followed), and
    /// `n` more whose chain loops back to the question.
    CnameChains,
    /// `n` DNS responses whose question name is a compression pointer to itself.
    PointerLoops,
    /// `n` first fragments of IPv4 datagrams and `n` of IPv6 datagrams that never complete,
    /// each with a distinct identification, plus `n` later fragments whose first never came.
    Fragments,
    /// `n` TCP flows to port 443 each sending the first [`PARTIAL_HELLO_BYTES`] of a
    /// ClientHello that never completes.
    PartialHellos,
    /// `n` distinct local devices (10.0.0.0/8, spoofed sources) each sending one datagram.
    Devices,
}

/// A records in each [`Flood::DnsAnswers`] message.
pub const ANSWERS_PER_MESSAGE: usize = 300;
/// CNAME links in each long chain of [`Flood::CnameChains`].
pub const CNAME_DEPTH: usize = 40;
/// TTL of the DNS floods' answers unless given, in seconds.
pub const DNS_TTL: u32 = 300;
/// Bytes of ClientHello each [`Flood::PartialHellos`] flow sends.
pub const PARTIAL_HELLO_BYTES: usize = 1000;

impl Flood {
    pub const ALL: [Flood; 8] = [
        Flood::Scan,
        Flood::DnsNames,
        Flood::DnsAnswers,
        Flood::CnameChains,
        Flood::PointerLoops,
        Flood::Fragments,
        Flood::PartialHellos,
        Flood::Devices,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flood::Scan => "scan",
            Flood::DnsNames => "dns-names",
            Flood::DnsAnswers => "dns-answers",
            Flood::CnameChains => "cname-chains",
            Flood::PointerLoops => "pointer-loops",
            Flood::Fragments => "fragments",
            Flood::PartialHellos => "partial-hellos",
            Flood::Devices => "devices",
        }
    }

    pub fn from_name(name: &str) -> Option<Flood> {
        Flood::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Builds the flood of size `n`, handing each frame (packet time, Ethernet frame) to `out`.
    pub fn build(self, n: u64, out: impl FnMut(i64, &[u8])) {
        self.build_spaced(n, 1_000, out);
    }

    /// [`Flood::build`] with the flood's frames `spacing_ns` apart (spread over the DNS TTL or
    /// the fragment timeout, entries expire one by one while new ones arrive).
    pub fn build_spaced(self, n: u64, spacing_ns: i64, out: impl FnMut(i64, &[u8])) {
        self.build_with(n, spacing_ns, DNS_TTL, out);
    }

    /// [`Flood::build_spaced`] with the TTL of the DNS floods' answers.
    pub fn build_with(self, n: u64, spacing_ns: i64, ttl: u32, mut out: impl FnMut(i64, &[u8])) {
        // One non-IP frame first: the capture's start, for the hard-coded grace period.
        out(
            T0,
            &craft::ethernet_raw(DEVICE_MAC, GATEWAY_MAC, 0x88b5, &[0; 46]),
        );
        let mut t = T0 + FLOOD_START_NS;
        let mut emit = |from_device: bool, packet: &[u8]| {
            let (src, dst) = if from_device {
                (DEVICE_MAC, GATEWAY_MAC)
            } else {
                (GATEWAY_MAC, DEVICE_MAC)
            };
            out(t, &craft::ethernet(src, dst, &[], packet));
            t += spacing_ns;
        };
        let device = IpAddr::V4(DEVICE);
        let resolver = SocketAddr::new(IpAddr::V4(RESOLVER), 53);
        let client = SocketAddr::new(device, 53_000);
        match self {
            Flood::Scan => {
                for i in 0..n {
                    let port = 1 + (i % 65_000) as u16;
                    let src = SocketAddr::new(device, 40_000 + (i % 1000) as u16);
                    let p = craft::tcp(
                        src,
                        SocketAddr::new(public_v4(i), port),
                        craft::tcp_flags::SYN,
                        &[],
                    );
                    emit(true, &p);
                }
            }
            Flood::DnsNames => {
                for i in 0..n {
                    let name = format!("n{i}.flood.example");
                    let msg = craft::dns_response(i as u16, &name, &[], &[public_v4(i)], ttl);
                    emit(false, &craft::udp(resolver, client, &msg));
                }
            }
            Flood::DnsAnswers => {
                for i in 0..n {
                    let addrs: Vec<IpAddr> = (0..ANSWERS_PER_MESSAGE as u64)
                        .map(|k| public_v4(i * ANSWERS_PER_MESSAGE as u64 + k))
                        .collect();
                    let name = format!("many{i}.flood.example");
                    let msg = craft::dns_response(i as u16, &name, &[], &addrs, ttl);
                    emit(false, &craft::udp(resolver, client, &msg));
                }
            }
            Flood::CnameChains => {
                for i in 0..n {
                    let names: Vec<String> = (0..CNAME_DEPTH)
                        .map(|k| format!("c{k}.chain{i}.flood.example"))
                        .collect();
                    let links: Vec<&str> = names.iter().map(String::as_str).collect();
                    let query = format!("chain{i}.flood.example");
                    let msg = craft::dns_response(i as u16, &query, &links, &[public_v4(i)], ttl);
                    emit(false, &craft::udp(resolver, client, &msg));
                    // A loop: query → other → query.
                    let query = format!("loop{i}.flood.example");
                    let other = format!("back{i}.flood.example");
                    let msg = craft::dns_response(
                        i as u16,
                        &query,
                        &[&other, &query],
                        &[public_v4(i)],
                        ttl,
                    );
                    emit(false, &craft::udp(resolver, client, &msg));
                }
            }
            Flood::PointerLoops => {
                for i in 0..n {
                    let mut msg = Vec::new();
                    msg.extend_from_slice(&(i as u16).to_be_bytes());
                    // A response with one question and one answer.
                    msg.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
                    // The question's name: a compression pointer to offset 12, itself.
                    msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
                    // An A record owned by the same looping name.
                    msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
                    msg.extend_from_slice(&[20, 0, 0, 1]);
                    emit(false, &craft::udp(resolver, client, &msg));
                }
            }
            Flood::Fragments => {
                // IPv4 identifications are 16 bits: a new remote every 65 536 datagrams keeps
                // every first fragment distinct. Later fragments go to a remote no first
                // fragment went to.
                let remote = |i: u64| SocketAddr::new(public_v4(1 + (i >> 16)), 4500);
                let orphan = SocketAddr::new(public_v4(0x00ff_fff0), 4500);
                let remote6 =
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2a00, 1, 0, 0, 0, 0, 0, 1)), 4500);
                let device6 =
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)), 4500);
                let payload = [0x5a; 64];
                for i in 0..n {
                    let id = i as u32;
                    let from = SocketAddr::new(device, 4500);
                    let whole = craft::udp(from, remote(i), &payload);
                    emit(true, &ipv4_fragment(&whole, id as u16, true));
                    emit(true, &ipv6_first_fragment(device6, remote6, id, &payload));
                    // A later fragment of a datagram whose first never came.
                    let whole = craft::udp(from, orphan, &payload);
                    emit(true, &ipv4_fragment(&whole, id as u16, false));
                }
            }
            Flood::PartialHellos => {
                let hello = craft::tls_client_hello("partial.flood.example", 16_000);
                let part = &hello[..PARTIAL_HELLO_BYTES.min(hello.len())];
                for i in 0..n {
                    let src = SocketAddr::new(device, 1024 + (i % 60_000) as u16);
                    let dst = SocketAddr::new(public_v4(i / 60_000), 443);
                    let p = craft::tcp(src, dst, craft::tcp_flags::ACK | 0x08, part);
                    emit(true, &p);
                }
            }
            Flood::Devices => {
                let dst = SocketAddr::new(public_v4(1), 443);
                for i in 0..n {
                    let b = (i as u32 & 0x00ff_ffff).to_be_bytes();
                    let src =
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b[1], b[2], b[3])), 50_000);
                    emit(true, &craft::udp(src, dst, b"flood"));
                }
            }
        }
    }
}

/// The `i`-th of distinct public IPv4 addresses (20.0.0.0 and up: Microsoft's, in the US).
pub fn public_v4(i: u64) -> IpAddr {
    let base = u32::from(Ipv4Addr::new(20, 0, 0, 0));
    IpAddr::V4(Ipv4Addr::from(base.wrapping_add(i as u32 & 0x00ff_ffff)))
}

/// An IPv4 packet cut to a first fragment (more fragments, offset 0) or to a later one
/// (offset 8 bytes, last), with identification `id`.
fn ipv4_fragment(packet: &[u8], id: u16, first: bool) -> Vec<u8> {
    let mut p: Vec<u8> = craft::fragment_ipv4(packet, 40)
        .into_iter()
        .nth(if first { 0 } else { 1 })
        .unwrap_or_default();
    if p.len() < 20 {
        return p;
    }
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let mut sum = 0u32;
    for pair in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// An IPv6 first fragment (RFC 8200 §4.5: offset 0, M set) of a UDP datagram.
fn ipv6_first_fragment(src: SocketAddr, dst: SocketAddr, id: u32, payload: &[u8]) -> Vec<u8> {
    let whole = craft::udp(src, dst, payload);
    // The UDP header and the first 8 payload bytes go in the first fragment.
    let udp = whole.get(40..56).unwrap_or(&[]);
    let mut ext = vec![17, 0, 0, 1];
    ext.extend_from_slice(&id.to_be_bytes());
    ext.extend_from_slice(udp);
    craft::ip(src.ip(), dst.ip(), 44, &ext)
}
