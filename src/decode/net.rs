//! Network and transport layers: IPv4 (options, fragments), IPv6 (extension headers), TCP, UDP,
//! ICMP, ICMPv6; and the tracker that gives a later fragment the ports of its first fragment.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, Link, chunk};
use super::{DecodeStats, Fragment, Mac, Packet, Skip, Transport};

/// IPv6 extension headers followed before the packet is called malformed.
pub const IPV6_EXT_HEADERS_MAX: usize = 8;
/// First fragments remembered at once so that later fragments find their ports.
pub const FRAGMENTS_MAX_TRACKED: usize = 4096;
/// How long, in packet time, a first fragment's ports are remembered (RFC 8200 §4.5 sets a
/// 60-second reassembly timeout; IPv4 stacks use 15 to 60 seconds).
const FRAGMENT_TIMEOUT_NS: i64 = 60_000_000_000;

// IP protocol numbers (IANA).
const PROTO_HOPOPTS: u8 = 0;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ROUTING: u8 = 43;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_DSTOPTS: u8 = 60;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    chunk(b, at).map(|&x| u16::from_be_bytes(x))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    chunk(b, at).map(|&x| u32::from_be_bytes(x))
}

/// Decodes the IP packet the link layer found, keeping the link's MACs and VLAN tag.
///
/// This and the layers it calls are inlined so that the packet is written once, where the
/// caller keeps it (see [`super::Decoder::decode`]).
#[inline(always)]
pub(super) fn decode_ip<'a>(l2: &Link<'a>) -> Result<Packet<'a>, Skip> {
    let ip = match l2.ethertype {
        ETHERTYPE_IPV4 => ipv4(l2.payload)?,
        ETHERTYPE_IPV6 => ipv6(l2.payload)?,
        _ => return Err(Skip::NotIp),
    };
    transport(l2, ip)
}

/// What the IP layer says about a packet.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// The captured part of the IP payload (after IPv6 extension headers).
    body: &'a [u8],
    /// The IP payload's length on the wire.
    body_wire_len: usize,
    /// The IP packet's length on the wire.
    ip_len: usize,
    fragment: Fragment,
}

/// IPv4, RFC 791 §3.1.
#[inline(always)]
fn ipv4(data: &[u8]) -> Result<Ip<'_>, Skip> {
    let first = *data.first().ok_or(Skip::Truncated)?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed);
    }
    // One length check for the fixed header; every field below is read from it.
    let Some(h) = data.first_chunk::<20>() else {
        return Err(Skip::Truncated);
    };
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Some stacks (TSO offload captures) write 0 here; fall back to what was captured.
    let total_len = match total_len {
        0 => data.len(),
        n if n < ihl => return Err(Skip::Malformed),
        n => n,
    };
    let id = u32::from(u16::from_be_bytes([h[4], h[5]]));
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let more_fragments = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let fragment = match (offset, more_fragments) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First { id },
        _ => Fragment::Later { id },
    };
    // Captured bytes of this packet: never past the IP total length (Ethernet padding), nor past
    // the capture (snaplen).
    let end = total_len.min(data.len());
    Ok(Ip {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        proto: h[9],
        body: data.get(ihl..end).unwrap_or(&[]),
        body_wire_len: total_len.saturating_sub(ihl),
        ip_len: total_len,
        fragment,
    })
}

/// IPv6, RFC 8200 §3, with the extension headers of §4.
#[inline]
fn ipv6(data: &[u8]) -> Result<Ip<'_>, Skip> {
    let first = *data.first().ok_or(Skip::Truncated)?;
    if first >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    // One length check for the fixed header; every field below is read from it.
    let Some(h) = data.first_chunk::<40>() else {
        return Err(Skip::Truncated);
    };
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut next = h[6];
    // (`h` holds 40 bytes: both addresses are always there.)
    let addr = |at: usize| chunk::<16>(h, at).map_or(Ipv6Addr::UNSPECIFIED, |&a| Ipv6Addr::from(a));
    let (src, dst) = (addr(8), addr(24));
    let total_len = 40 + payload_len;
    let end = total_len.min(data.len());
    let mut body = data.get(40..end).unwrap_or(&[]);
    let mut body_wire_len = payload_len;
    let mut fragment = Fragment::None;
    for _ in 0..IPV6_EXT_HEADERS_MAX {
        match next {
            PROTO_HOPOPTS | PROTO_ROUTING | PROTO_DSTOPTS => {
                // Next header (1), header extension length in 8-octet units not counting the first 8.
                let nh = *body.first().ok_or(Skip::Truncated)?;
                let len = (usize::from(*body.get(1).ok_or(Skip::Truncated)?) + 1) * 8;
                body = body.get(len..).ok_or(Skip::Truncated)?;
                body_wire_len = body_wire_len.checked_sub(len).ok_or(Skip::Malformed)?;
                next = nh;
            }
            PROTO_FRAGMENT => {
                // Next header (1), reserved (1), offset + flags (2), identification (4).
                let nh = *body.first().ok_or(Skip::Truncated)?;
                let off_flags = be16(body, 2).ok_or(Skip::Truncated)?;
                let id = be32(body, 4).ok_or(Skip::Truncated)?;
                let offset = off_flags >> 3;
                let more = off_flags & 1 != 0;
                fragment = match (offset, more) {
                    (0, false) => Fragment::None, // an atomic fragment (RFC 6946)
                    (0, true) => Fragment::First { id },
                    _ => Fragment::Later { id },
                };
                body = body.get(8..).ok_or(Skip::Truncated)?;
                body_wire_len = body_wire_len.checked_sub(8).ok_or(Skip::Malformed)?;
                next = nh;
                if matches!(fragment, Fragment::Later { .. }) {
                    break;
                }
            }
            _ => break,
        }
    }
    if matches!(next, PROTO_HOPOPTS | PROTO_ROUTING | PROTO_DSTOPTS)
        && !matches!(fragment, Fragment::Later { .. })
    {
        return Err(Skip::Malformed);
    }
    Ok(Ip {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        proto: next,
        body,
        body_wire_len,
        ip_len: total_len,
        fragment,
    })
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads the transport header (unless this is a later fragment, which has none) and builds the
/// packet, once, from the three layers.
#[inline(always)]
fn transport<'a>(l2: &Link<'a>, ip: Ip<'a>) -> Result<Packet<'a>, Skip> {
    let body = ip.body;
    let mut ports = (0, 0);
    let mut tcp_flags = 0;
    let mut seq = 0;
    let mut payload = body;
    let mut payload_len = ip.body_wire_len;
    if !matches!(ip.fragment, Fragment::Later { .. }) {
        match ip.proto {
            PROTO_TCP => {
                // RFC 9293 §3.1: ports (4), seq (4), ack (4), data offset (4 bits), flags (byte 13).
                ports = ports_of(body)?;
                seq = be32(body, 4).unwrap_or(0);
                // A snaplen cut may leave the ports but not the rest of the header: keep the packet.
                if let Some(&[off, flags]) = chunk::<2>(body, 12) {
                    let header_len = usize::from(off >> 4) * 4;
                    if header_len < 20 {
                        return Err(Skip::Malformed);
                    }
                    tcp_flags = flags;
                    payload = body.get(header_len..).unwrap_or(&[]);
                    payload_len = ip.body_wire_len.saturating_sub(header_len);
                } else {
                    payload = &[];
                    payload_len = 0;
                }
            }
            PROTO_UDP => {
                // RFC 768: ports (4), length (2), checksum (2).
                ports = ports_of(body)?;
                payload = body.get(8..).unwrap_or(&[]);
                payload_len = ip.body_wire_len.saturating_sub(8);
            }
            _ => {}
        }
    }
    Ok(Packet {
        src_mac: l2.src_mac.map(|&m| Mac(m)),
        dst_mac: l2.dst_mac.map(|&m| Mac(m)),
        vlan: l2.vlan,
        src: ip.src,
        dst: ip.dst,
        transport: Transport::from_ip_proto(ip.proto),
        src_port: ports.0,
        dst_port: ports.1,
        tcp_flags,
        seq,
        ip_len: saturating_u32(ip.ip_len),
        payload_len: saturating_u32(payload_len),
        payload,
        fragment: ip.fragment,
        tunnel: None,
    })
}

/// The source and destination ports at the start of a TCP or UDP header.
fn ports_of(header: &[u8]) -> Result<(u16, u16), Skip> {
    match chunk::<4>(header, 0) {
        Some(&[s0, s1, d0, d1]) => Ok((u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1]))),
        None => Err(Skip::Truncated),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: Transport,
    id: u32,
}

/// Remembers the ports of first fragments so later fragments join the same flow.
#[derive(Clone, Default)]
pub(super) struct FragmentTracker {
    firsts: HashMap<FragKey, (u16, u16, i64)>,
    /// The older generation (see `resolve`).
    old: HashMap<FragKey, (u16, u16, i64)>,
    /// First fragments held at most, both generations; `None`: [`FRAGMENTS_MAX_TRACKED`].
    pub(super) cap: Option<usize>,
}

impl FragmentTracker {
    /// Records a first fragment, or fills a later fragment's ports from its first.
    pub(super) fn resolve(&mut self, p: &mut Packet<'_>, ts_ns: i64, stats: &mut DecodeStats) {
        let (id, later) = match p.fragment {
            Fragment::None => return,
            Fragment::First { id } => (id, false),
            Fragment::Later { id } => (id, true),
        };
        let key = FragKey {
            src: p.src,
            dst: p.dst,
            proto: p.transport,
            id,
        };
        if later {
            match self.firsts.get(&key).or_else(|| self.old.get(&key)) {
                Some(&(sp, dp, seen)) if ts_ns.saturating_sub(seen) <= FRAGMENT_TIMEOUT_NS => {
                    p.src_port = sp;
                    p.dst_port = dp;
                }
                _ => stats.fragments_unmatched += 1,
            }
            return;
        }
        // Two generations of half the cap: when the young one is full the old one is dropped
        // (counted) and the young one becomes old. O(1) per first fragment; a sweep for
        // timed-out entries at every insert past the cap was quadratic under a flood.
        let young_max = (self.cap.unwrap_or(FRAGMENTS_MAX_TRACKED) / 2).max(1);
        if let Some(held) = self.old.get_mut(&key) {
            *held = (p.src_port, p.dst_port, ts_ns);
            return;
        }
        if self.firsts.len() >= young_max && !self.firsts.contains_key(&key) {
            stats.fragments_evicted += self.old.len() as u64;
            self.old = std::mem::take(&mut self.firsts);
        }
        self.firsts.insert(key, (p.src_port, p.dst_port, ts_ns));
    }
}
