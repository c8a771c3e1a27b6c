//! Network and transport layers: IPv4 (options, fragments), IPv6 (extension headers), TCP, UDP,
//! ICMP, ICMPv6; and the tracker that gives a later fragment the ports of its first fragment.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::{DecodeStats, Fragment, Packet, Skip, Transport};

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
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Decodes the IP packet carried with this EtherType.
pub(super) fn decode_ip(ethertype: u16, data: &[u8]) -> Result<Packet<'_>, Skip> {
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(data),
        ETHERTYPE_IPV6 => ipv6(data),
        _ => Err(Skip::NotIp),
    }
}

/// IPv4, RFC 791 §3.1.
fn ipv4(data: &[u8]) -> Result<Packet<'_>, Skip> {
    let first = *data.first().ok_or(Skip::Truncated)?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed);
    }
    if data.len() < 20 {
        return Err(Skip::Truncated);
    }
    let total_len = usize::from(be16(data, 2).ok_or(Skip::Truncated)?);
    if total_len < ihl {
        // Some stacks (TSO offload captures) write 0 here; fall back to what was captured.
        if total_len != 0 {
            return Err(Skip::Malformed);
        }
    }
    let total_len = if total_len == 0 {
        data.len()
    } else {
        total_len
    };
    let id = u32::from(be16(data, 4).ok_or(Skip::Truncated)?);
    let frag = be16(data, 6).ok_or(Skip::Truncated)?;
    let more_fragments = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let proto = data[9];
    let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
    let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
    let fragment = match (offset, more_fragments) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First { id },
        _ => Fragment::Later { id },
    };
    // Captured bytes of this packet: never past the IP total length (Ethernet padding), nor past
    // the capture (snaplen).
    let end = total_len.min(data.len());
    let body = data.get(ihl..end).unwrap_or(&[]);
    let body_wire_len = total_len.saturating_sub(ihl);
    transport(
        IpAddr::V4(src),
        IpAddr::V4(dst),
        proto,
        body,
        body_wire_len,
        total_len,
        fragment,
    )
}

/// IPv6, RFC 8200 §3, with the extension headers of §4.
fn ipv6(data: &[u8]) -> Result<Packet<'_>, Skip> {
    let first = *data.first().ok_or(Skip::Truncated)?;
    if first >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    if data.len() < 40 {
        return Err(Skip::Truncated);
    }
    let payload_len = usize::from(be16(data, 4).ok_or(Skip::Truncated)?);
    let mut next = data[6];
    let addr = |at: usize| -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&data[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let src = addr(8);
    let dst = addr(24);
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
    transport(
        IpAddr::V6(src),
        IpAddr::V6(dst),
        next,
        body,
        body_wire_len,
        total_len,
        fragment,
    )
}

/// Reads the transport header (unless this is a later fragment, which has none).
fn transport<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    body: &'a [u8],
    body_wire_len: usize,
    ip_len: usize,
    fragment: Fragment,
) -> Result<Packet<'a>, Skip> {
    let mut p = Packet {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        src,
        dst,
        transport: Transport::from_ip_proto(proto),
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        seq: 0,
        ip_len: u32::try_from(ip_len).unwrap_or(u32::MAX),
        payload_len: u32::try_from(body_wire_len).unwrap_or(u32::MAX),
        payload: body,
        fragment,
        tunnel: None,
    };
    if matches!(fragment, Fragment::Later { .. }) {
        return Ok(p);
    }
    match proto {
        PROTO_TCP => {
            // RFC 9293 §3.1: ports (4), seq (4), ack (4), data offset (4 bits), flags (byte 13).
            let src_port = be16(body, 0).ok_or(Skip::Truncated)?;
            let dst_port = be16(body, 2).ok_or(Skip::Truncated)?;
            p.src_port = src_port;
            p.dst_port = dst_port;
            p.seq = be32(body, 4).unwrap_or(0);
            // A snaplen cut may leave the ports but not the rest of the header: keep the packet.
            if let (Some(off), Some(flags)) = (body.get(12), body.get(13)) {
                let header_len = usize::from(off >> 4) * 4;
                if header_len < 20 {
                    return Err(Skip::Malformed);
                }
                p.tcp_flags = *flags;
                p.payload = body.get(header_len..).unwrap_or(&[]);
                p.payload_len =
                    u32::try_from(body_wire_len.saturating_sub(header_len)).unwrap_or(u32::MAX);
            } else {
                p.payload = &[];
                p.payload_len = 0;
            }
        }
        PROTO_UDP => {
            // RFC 768: ports (4), length (2), checksum (2).
            p.src_port = be16(body, 0).ok_or(Skip::Truncated)?;
            p.dst_port = be16(body, 2).ok_or(Skip::Truncated)?;
            p.payload = body.get(8..).unwrap_or(&[]);
            p.payload_len = u32::try_from(body_wire_len.saturating_sub(8)).unwrap_or(u32::MAX);
        }
        _ => {}
    }
    Ok(p)
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: Transport,
    id: u32,
}

/// Remembers the ports of first fragments so later fragments join the same flow.
#[derive(Default)]
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
