//! Tunnels: GRE (with transparent Ethernet bridging, ERSPAN and PPTP's enhanced GRE), IP-in-IP
//! (4in4, 6in4, 4in6, 6in6), VXLAN, GENEVE, GTP-U and Teredo.
//!
//! [`examine`] looks at a decoded packet and says whether it carries a tunnel, and if so where
//! the inner frame or packet starts; [`decode_inner`] decodes that inner part. The loop that
//! follows nested tunnels, keeps the counters and falls back to the outer packet lives in
//! [`super::Decoder`]. Everything borrows the frame: no copy, no allocation.
//!
//! Protocols with their own IP protocol number (GRE 47, IPv4 4, IPv6 41) are recognised by it.
//! The UDP encapsulations have nothing but a port to go by, so their headers are checked strictly
//! (reserved flag bits, versions, message types, lengths against the datagram) and a datagram
//! that fails the check is left as the plain UDP packet it may well be.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::link::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::{Fragment, Packet, Skip, Transport, net};

/// Nested tunnels followed at most; a packet with more levels is returned at this depth (and
/// counted in [`super::DecodeStats::tunnel_depth_exceeded`]).
pub const TUNNEL_DEPTH_MAX: u8 = 4;

/// An encapsulation this decoder opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// GRE (RFC 2784/2890) carrying IPv4, IPv6 or an Ethernet frame (0x6558); also PPTP's
    /// enhanced GRE (RFC 2637) carrying PPP.
    Gre,
    /// ERSPAN types I, II and III over GRE (0x88BE, 0x22EB): a mirrored Ethernet frame.
    Erspan,
    /// IPv4 in IPv4 (IP protocol 4, RFC 2003).
    Ipip,
    /// IPv6 in IPv4 (IP protocol 41, RFC 4213).
    SixIn4,
    /// IPv4 in IPv6 (IP protocol 4, RFC 2473).
    FourIn6,
    /// IPv6 in IPv6 (IP protocol 41, RFC 2473).
    Ip6ip6,
    /// VXLAN (RFC 7348), UDP port 4789: an Ethernet frame.
    Vxlan,
    /// GENEVE (RFC 8926), UDP port 6081: an Ethernet frame or an IP packet.
    Geneve,
    /// GTP-U G-PDU (3GPP TS 29.281), UDP port 2152: an IP packet of a mobile subscriber.
    Gtpu,
    /// Teredo (RFC 4380), UDP port 3544: IPv6 in UDP over IPv4.
    Teredo,
}

impl TunnelKind {
    /// Every kind, in the order of [`TunnelCounts`].
    pub const ALL: [TunnelKind; 10] = [
        TunnelKind::Gre,
        TunnelKind::Erspan,
        TunnelKind::Ipip,
        TunnelKind::SixIn4,
        TunnelKind::FourIn6,
        TunnelKind::Ip6ip6,
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
        TunnelKind::Gtpu,
        TunnelKind::Teredo,
    ];

    /// A stable name for reports: gre, erspan, ipip, 6in4, 4in6, ip6ip6, vxlan, geneve, gtpu,
    /// teredo.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Ipip => "ipip",
            TunnelKind::SixIn4 => "6in4",
            TunnelKind::FourIn6 => "4in6",
            TunnelKind::Ip6ip6 => "ip6ip6",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gtpu => "gtpu",
            TunnelKind::Teredo => "teredo",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for TunnelKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The tunnel a packet was found in: the OUTERMOST one, whose endpoints are the addresses the
/// capture saw on the wire (where the traffic really leaves), and how many levels were opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// The outermost encapsulation.
    pub kind: TunnelKind,
    /// Source address of the outermost IP header.
    pub outer_src: IpAddr,
    /// Destination address of the outermost IP header.
    pub outer_dst: IpAddr,
    /// Levels of encapsulation opened: 1 for a plain tunnel, 2 for VXLAN in GRE, … at most
    /// [`TUNNEL_DEPTH_MAX`].
    pub depth: u8,
}

/// Decapsulated packets by kind, one counter per level opened (VXLAN in GRE counts one gre and
/// one vxlan). A fixed array: counting never allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelCounts([u64; TunnelKind::ALL.len()]);

impl TunnelCounts {
    /// Packets opened at a level of this kind.
    pub fn get(&self, kind: TunnelKind) -> u64 {
        self.0[kind.index()]
    }

    pub(super) fn add(&mut self, kind: TunnelKind) {
        self.0[kind.index()] += 1;
    }

    /// All levels of all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The kinds seen, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (TunnelKind, u64)> + '_ {
        TunnelKind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }

    /// The kinds seen by name (`{"gre": 12, "vxlan": 3}`), for reports.
    pub fn to_map(&self) -> BTreeMap<&'static str, u64> {
        self.iter().map(|(k, n)| (k.as_str(), n)).collect()
    }
}

// Ports of the UDP encapsulations (IANA service names registry).
pub(super) const PORT_VXLAN: u16 = 4789;
pub(super) const PORT_GENEVE: u16 = 6081;
pub(super) const PORT_GTPU: u16 = 2152;
pub(super) const PORT_TEREDO: u16 = 3544;

// IP protocol numbers.
const PROTO_IPV4: u8 = 4;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;

// GRE protocol types (EtherTypes).
const GRE_PROTO_TEB: u16 = 0x6558;
const GRE_PROTO_ERSPAN_2: u16 = 0x88be;
const GRE_PROTO_ERSPAN_3: u16 = 0x22eb;
const GRE_PROTO_PPP: u16 = 0x880b;

/// GTP-U message type of a G-PDU (a user packet); the others are signalling (echo, error
/// indication, end marker).
const GTPU_G_PDU: u8 = 255;
/// GTP-U extension headers followed before the header is called malformed.
const GTPU_EXT_HEADERS_MAX: usize = 16;

/// What a tunnel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inner<'a> {
    /// An IP packet of this EtherType.
    Ip(u16, &'a [u8]),
    /// An Ethernet II frame.
    Ethernet(&'a [u8]),
}

/// What [`examine`] found in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found<'a> {
    /// No tunnel: the packet is what it looks like.
    Plain,
    /// A tunnel of this kind, carrying this.
    Tunnel(TunnelKind, Inner<'a>),
    /// A tunnel whose own header is broken or cut short.
    Malformed,
    /// A tunnel carrying something other than IP or Ethernet (PPP control, MPLS, an unknown
    /// protocol type, a mirrored non-IP frame, …): not opened.
    NotDecoded,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

/// Whether (and how) this packet carries a tunnel. Only whole datagrams are looked into: an
/// outer fragment stays the outer packet (its later fragments could not be opened anyway).
pub(super) fn examine<'a>(p: &Packet<'a>) -> Found<'a> {
    if p.fragment != Fragment::None || !may_carry(p) {
        return Found::Plain;
    }
    let outer_v4 = p.src.is_ipv4();
    match p.transport {
        Transport::Other(PROTO_GRE) => gre(p.payload),
        Transport::Other(PROTO_IPV4) => {
            let kind = if outer_v4 {
                TunnelKind::Ipip
            } else {
                TunnelKind::FourIn6
            };
            Found::Tunnel(kind, Inner::Ip(ETHERTYPE_IPV4, p.payload))
        }
        Transport::Other(PROTO_IPV6) => {
            let kind = if outer_v4 {
                TunnelKind::SixIn4
            } else {
                TunnelKind::Ip6ip6
            };
            Found::Tunnel(kind, Inner::Ip(ETHERTYPE_IPV6, p.payload))
        }
        Transport::Udp => udp(p),
        _ => Found::Plain,
    }
}

/// Whether [`examine`] could find a tunnel in this packet, by its protocol and (for UDP) its
/// ports alone: the cheap test that lets the common packet skip the rest. False means
/// [`examine`] says [`Found::Plain`].
#[inline]
pub(super) fn may_carry(p: &Packet<'_>) -> bool {
    match p.transport {
        Transport::Other(PROTO_GRE | PROTO_IPV4 | PROTO_IPV6) => true,
        // The ports `udp` looks at.
        Transport::Udp => {
            matches!(
                p.dst_port,
                PORT_VXLAN | PORT_GENEVE | PORT_GTPU | PORT_TEREDO
            ) || matches!(p.src_port, PORT_GTPU | PORT_TEREDO)
        }
        _ => false,
    }
}

/// The UDP encapsulations, by port; the first whose header checks out wins.
fn udp<'a>(p: &Packet<'a>) -> Found<'a> {
    let (sport, dport) = (p.src_port, p.dst_port);
    let b = p.payload;
    // The datagram's payload length on the wire (the capture may hold less).
    let wire = usize::try_from(p.payload_len).unwrap_or(usize::MAX);
    let candidates = [
        (dport == PORT_VXLAN).then(|| vxlan(b)),
        (dport == PORT_GENEVE).then(|| geneve(b)),
        (dport == PORT_GTPU || sport == PORT_GTPU).then(|| gtpu(b, wire)),
        // Teredo servers listen on 3544; a relay or client answers from it.
        (dport == PORT_TEREDO || sport == PORT_TEREDO).then(|| teredo(b, wire)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|f| *f != Found::Plain)
        .unwrap_or(Found::Plain)
}

/// GRE, RFC 2784 §2 with the key and sequence number of RFC 2890 §2; version 1 is PPTP's
/// enhanced GRE, RFC 2637 §4.1.
pub(super) fn gre(b: &[u8]) -> Found<'_> {
    let (Some(&f0), Some(&f1), Some(proto)) = (b.first(), b.get(1), be16(b, 2)) else {
        return Found::Malformed;
    };
    let checksum = f0 & 0x80 != 0;
    let routing = f0 & 0x40 != 0;
    let key = f0 & 0x20 != 0;
    let seq = f0 & 0x10 != 0;
    match f1 & 0x07 {
        0 => {
            if routing {
                // RFC 1701 source routing, obsolete: RFC 2784 receivers discard it.
                return Found::NotDecoded;
            }
            let len = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
            let Some(rest) = b.get(len..) else {
                return Found::Malformed;
            };
            match proto {
                ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                    Found::Tunnel(TunnelKind::Gre, Inner::Ip(proto, rest))
                }
                GRE_PROTO_TEB => Found::Tunnel(TunnelKind::Gre, Inner::Ethernet(rest)),
                GRE_PROTO_ERSPAN_2 if !seq => {
                    // ERSPAN type I: no sequence number and no ERSPAN header.
                    Found::Tunnel(TunnelKind::Erspan, Inner::Ethernet(rest))
                }
                GRE_PROTO_ERSPAN_2 => erspan2(rest),
                GRE_PROTO_ERSPAN_3 => erspan3(rest),
                _ => Found::NotDecoded,
            }
        }
        1 => {
            // Enhanced GRE: key present (payload length, call id), no checksum, no routing,
            // optional sequence number, optional acknowledgement (bit A, 0x80 of the 2nd byte).
            let ack = f1 & 0x80 != 0;
            if !key || checksum || routing || proto != GRE_PROTO_PPP {
                return Found::Malformed;
            }
            let len = 8 + 4 * (usize::from(seq) + usize::from(ack));
            let Some(rest) = b.get(len..) else {
                return Found::Malformed;
            };
            if !seq {
                // No sequence number means no payload: an acknowledgement only.
                return Found::Plain;
            }
            ppp(rest)
        }
        _ => Found::Malformed,
    }
}

/// A PPP frame (RFC 1661 §2) as PPTP carries it: address and control (0xFF 0x03) unless
/// compressed away, then a one- or two-byte protocol field.
fn ppp(b: &[u8]) -> Found<'_> {
    let b = match b {
        [0xff, 0x03, rest @ ..] => rest,
        _ => b,
    };
    let (proto, rest) = match b {
        // Protocol-field compression: an odd first byte is the whole (one-byte) field.
        [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
        [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
        _ => return Found::Malformed,
    };
    match proto {
        0x0021 => Found::Tunnel(TunnelKind::Gre, Inner::Ip(ETHERTYPE_IPV4, rest)),
        0x0057 => Found::Tunnel(TunnelKind::Gre, Inner::Ip(ETHERTYPE_IPV6, rest)),
        // LCP, IPCP, CCP, MPPE-compressed or encrypted data, …
        _ => Found::NotDecoded,
    }
}

/// ERSPAN type II (draft-foschiano-erspan §4.1): version 1, VLAN, CoS, encapsulation, truncated
/// bit, session id, index; 8 bytes, then the mirrored Ethernet frame.
fn erspan2(b: &[u8]) -> Found<'_> {
    match (b.first().map(|v| v >> 4), b.get(8..)) {
        (Some(1), Some(frame)) => Found::Tunnel(TunnelKind::Erspan, Inner::Ethernet(frame)),
        _ => Found::Malformed,
    }
}

/// ERSPAN type III (draft-foschiano-erspan §4.2): version 2, 12 bytes, then an 8-byte platform
/// specific subheader when the O bit (the last bit of the 12th byte) is set. The frame type says
/// what follows: 0 an Ethernet frame, 2 an IP packet.
fn erspan3(b: &[u8]) -> Found<'_> {
    let (Some(&v), Some(&ft_byte), Some(&o_byte)) = (b.first(), b.get(10), b.get(11)) else {
        return Found::Malformed;
    };
    if v >> 4 != 2 {
        return Found::Malformed;
    }
    let len = if o_byte & 1 != 0 { 20 } else { 12 };
    let Some(rest) = b.get(len..) else {
        return Found::Malformed;
    };
    match (ft_byte >> 2) & 0x1f {
        0 => Found::Tunnel(TunnelKind::Erspan, Inner::Ethernet(rest)),
        2 => match rest.first().map(|v| v >> 4) {
            Some(4) => Found::Tunnel(TunnelKind::Erspan, Inner::Ip(ETHERTYPE_IPV4, rest)),
            Some(6) => Found::Tunnel(TunnelKind::Erspan, Inner::Ip(ETHERTYPE_IPV6, rest)),
            _ => Found::Malformed,
        },
        _ => Found::NotDecoded,
    }
}

/// VXLAN, RFC 7348 §5: flags (I set; the others zero but for the group-policy G bit of
/// draft-smith-vxlan-group-policy), 24 reserved bits, the VNI, 8 reserved bits; then an Ethernet
/// frame.
pub(super) fn vxlan(b: &[u8]) -> Found<'_> {
    match (b.first(), b.get(8..)) {
        (Some(&flags), Some(frame)) if flags & 0x08 != 0 && flags & 0x77 == 0 => {
            Found::Tunnel(TunnelKind::Vxlan, Inner::Ethernet(frame))
        }
        _ => Found::Plain,
    }
}

/// GENEVE, RFC 8926 §3.4: version (2 bits, 0), options length (6 bits, 4-byte words), O and C
/// bits, reserved, protocol type, VNI, reserved; then the options and the payload. Only the
/// protocol types this decoder reads count as GENEVE at all.
pub(super) fn geneve(b: &[u8]) -> Found<'_> {
    let (Some(&v), Some(proto)) = (b.first(), be16(b, 2)) else {
        return Found::Plain;
    };
    if v >> 6 != 0 || !matches!(proto, GRE_PROTO_TEB | ETHERTYPE_IPV4 | ETHERTYPE_IPV6) {
        return Found::Plain;
    }
    let len = 8 + usize::from(v & 0x3f) * 4;
    match b.get(len..) {
        None => Found::Malformed,
        Some(rest) if proto == GRE_PROTO_TEB => {
            Found::Tunnel(TunnelKind::Geneve, Inner::Ethernet(rest))
        }
        Some(rest) => Found::Tunnel(TunnelKind::Geneve, Inner::Ip(proto, rest)),
    }
}

/// GTP-U, 3GPP TS 29.281 §5.1: version 1, protocol type 1, message type, length (of what follows
/// the first 8 bytes), TEID; the sequence number, N-PDU number and next extension header type
/// when any of E, S, PN is set; then the chain of extension headers (§5.2: length in 4-byte
/// units, content, next type) when E is set. Only a G-PDU carries a user packet: IPv4 or IPv6 by
/// its version nibble.
pub(super) fn gtpu(b: &[u8], wire: usize) -> Found<'_> {
    let (Some(&flags), Some(&msg), Some(len)) = (b.first(), b.get(1), be16(b, 2)) else {
        return Found::Plain;
    };
    if flags >> 5 != 1 || flags & 0x10 == 0 || msg != GTPU_G_PDU {
        return Found::Plain;
    }
    // The header's length must fit the datagram.
    let end = 8 + usize::from(len);
    if end > wire || b.len() < 8 {
        return Found::Plain;
    }
    let mut at = 8;
    if flags & 0x07 != 0 {
        if len < 4 {
            return Found::Malformed;
        }
        at = 12;
        if flags & 0x04 != 0 {
            let Some(&first) = b.get(11) else {
                return Found::Malformed;
            };
            let mut next = first;
            let mut followed = 0;
            while next != 0 {
                followed += 1;
                let Some(&units) = b.get(at) else {
                    return Found::Malformed;
                };
                let ext_len = usize::from(units) * 4;
                if units == 0 || followed > GTPU_EXT_HEADERS_MAX || at + ext_len > end {
                    return Found::Malformed;
                }
                let Some(&n) = b.get(at + ext_len - 1) else {
                    return Found::Malformed;
                };
                next = n;
                at += ext_len;
            }
        }
    }
    let Some(pdu) = b.get(at..end.min(b.len())) else {
        return Found::Malformed;
    };
    match pdu.first().map(|v| v >> 4) {
        Some(4) => Found::Tunnel(TunnelKind::Gtpu, Inner::Ip(ETHERTYPE_IPV4, pdu)),
        Some(6) => Found::Tunnel(TunnelKind::Gtpu, Inner::Ip(ETHERTYPE_IPV6, pdu)),
        Some(_) => Found::NotDecoded,
        None => Found::Malformed,
    }
}

/// Teredo, RFC 4380 §5.1.1: an IPv6 packet, possibly preceded by an authentication indicator
/// (0x0001, client id and authentication value lengths, the two, an 8-byte nonce, a confirmation
/// byte) and an origin indication (0x0000, obfuscated port and address: 8 bytes), in that order.
/// Port 3544 carries other things too: it is Teredo only when an IPv6 header follows whose
/// payload length accounts for exactly the rest of the datagram.
pub(super) fn teredo(b: &[u8], wire: usize) -> Found<'_> {
    let mut at = 0;
    if be16(b, 0) == Some(0x0001) {
        let (Some(&id_len), Some(&au_len)) = (b.get(2), b.get(3)) else {
            return Found::Plain;
        };
        at = 4 + usize::from(id_len) + usize::from(au_len) + 8 + 1;
    }
    if be16(b, at) == Some(0x0000) {
        at += 8;
    }
    let (Some(&v), Some(plen)) = (b.get(at), be16(b, at + 4)) else {
        return Found::Plain;
    };
    if v >> 4 != 6 || at + 40 + usize::from(plen) != wire {
        return Found::Plain;
    }
    match b.get(at..) {
        Some(packet) => Found::Tunnel(TunnelKind::Teredo, Inner::Ip(ETHERTYPE_IPV6, packet)),
        None => Found::Plain,
    }
}

/// Decodes what a tunnel carries. An Ethernet frame gives its MAC addresses and VLAN tag to the
/// packet; a bare IP packet has none (the outer frame's MACs are the tunnel endpoints', not the
/// inner hosts').
pub(super) fn decode_inner(inner: Inner<'_>) -> Result<Packet<'_>, Skip> {
    let l2 = match inner {
        Inner::Ip(ethertype, data) => link::Link::ip(ethertype, data),
        Inner::Ethernet(frame) => link::ethernet(frame)?,
    };
    net::decode_ip(&l2)
}
