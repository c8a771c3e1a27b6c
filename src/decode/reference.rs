//! The decoder as it was before the single-pass rewrite of issue 5 (commit e56182d), kept for
//! the property tests: [`super::Decoder`] must give the same packet and the same counters as
//! this one on any bytes. The tunnel header parsers and the fragment tracker are shared (they
//! did not change); the layers, the dispatch of `examine` and the `Decoder` plumbing are the
//! old ones, unchanged but for paths.

use crate::capture::{Frame, LinkType};
use crate::decode::net::FragmentTracker;
use crate::decode::{DecodeStats, Fragment, Packet, Skip, TUNNEL_DEPTH_MAX, Tunnel};

use crate::decode::tunnel::Found;

/// The old decoder.
#[derive(Default)]
pub(super) struct Decoder {
    fragments: FragmentTracker,
    pub(super) stats: DecodeStats,
}

impl Decoder {
    /// Decodes one frame; a frame that gives no packet is counted in [`Decoder::stats`].
    pub(super) fn decode<'a>(&mut self, frame: &Frame<'a>) -> Option<Packet<'a>> {
        match self.try_decode(frame.link_type, frame.data, frame.ts_ns) {
            Ok(p) => {
                self.stats.packets += 1;
                Some(p)
            }
            Err(skip) => {
                match skip {
                    Skip::UnsupportedLinkType(n) => {
                        *self.stats.unsupported_link_types.entry(n).or_default() += 1
                    }
                    Skip::NotIp => self.stats.not_ip += 1,
                    Skip::Truncated => self.stats.truncated += 1,
                    Skip::Malformed => self.stats.malformed += 1,
                }
                None
            }
        }
    }

    fn try_decode<'a>(
        &mut self,
        link_type: LinkType,
        data: &'a [u8],
        ts_ns: i64,
    ) -> Result<Packet<'a>, Skip> {
        let l2 = link::decode(link_type, data)?;
        let mut p = net::decode_ip(l2.ethertype, l2.payload)?;
        p.src_mac = l2.src_mac;
        p.dst_mac = l2.dst_mac;
        p.vlan = l2.vlan;
        // Fragments are tracked by the addresses of the packet returned: the inner ones.
        let mut p = self.decapsulate(p);
        if p.fragment != Fragment::None {
            self.stats.fragments += 1;
        }
        self.fragments.resolve(&mut p, ts_ns, &mut self.stats);
        Ok(p)
    }

    /// Opens nested tunnels, up to [`TUNNEL_DEPTH_MAX`] levels. A level that cannot be opened
    /// (broken, cut short, not carrying IP) leaves the packet of the level above, counted.
    fn decapsulate<'a>(&mut self, outer: Packet<'a>) -> Packet<'a> {
        let mut p = outer;
        let mut depth = 0u8;
        loop {
            let (kind, inner) = match tunnel::examine(&p) {
                Found::Plain => break,
                Found::Malformed => {
                    self.stats.tunnel_malformed += 1;
                    break;
                }
                Found::NotDecoded => {
                    self.stats.tunnel_not_decoded += 1;
                    break;
                }
                Found::Tunnel(kind, inner) => (kind, inner),
            };
            if depth >= TUNNEL_DEPTH_MAX {
                self.stats.tunnel_depth_exceeded += 1;
                break;
            }
            let mut q = match tunnel::decode_inner(inner) {
                Ok(q) => q,
                Err(Skip::NotIp) => {
                    self.stats.tunnel_not_decoded += 1;
                    break;
                }
                Err(_) => {
                    self.stats.tunnel_malformed += 1;
                    break;
                }
            };
            self.stats.tunnels.add(kind);
            depth += 1;
            q.vlan = p.vlan.or(q.vlan);
            q.tunnel = Some(match p.tunnel {
                Some(outermost) => Tunnel { depth, ..outermost },
                None => Tunnel {
                    kind,
                    outer_src: p.src,
                    outer_dst: p.dst,
                    depth,
                },
            });
            p = q;
        }
        p
    }
}

mod link {
    use crate::capture::LinkType;
    use crate::decode::{Mac, Skip};

    /// EtherType of IPv4 (IEEE 802 numbers registry).
    pub(in crate::decode) const ETHERTYPE_IPV4: u16 = 0x0800;
    /// EtherType of IPv6.
    pub(in crate::decode) const ETHERTYPE_IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    const ETHERTYPE_VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    const ETHERTYPE_QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still emitted by some switches.
    const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
    /// Values below this in the EtherType position are 802.3 lengths, not types (IEEE 802.3 clause 3.2.6).
    const ETHERTYPE_MIN: u16 = 0x0600;
    /// How many stacked VLAN tags are followed before the frame is called malformed.
    const VLAN_TAGS_MAX: usize = 4;

    /// The link layer's view of a frame.
    pub(in crate::decode) struct Link<'a> {
        pub src_mac: Option<Mac>,
        pub dst_mac: Option<Mac>,
        pub vlan: Option<u16>,
        pub ethertype: u16,
        pub payload: &'a [u8],
    }

    impl<'a> Link<'a> {
        fn ip(ethertype: u16, payload: &'a [u8]) -> Link<'a> {
            Link {
                src_mac: None,
                dst_mac: None,
                vlan: None,
                ethertype,
                payload,
            }
        }
    }

    fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
        match b.get(at..at + 2) {
            Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
            _ => Err(Skip::Truncated),
        }
    }

    fn mac(b: &[u8], at: usize) -> Result<Mac, Skip> {
        b.get(at..at + 6)
            .and_then(|m| <[u8; 6]>::try_from(m).ok())
            .map(Mac)
            .ok_or(Skip::Truncated)
    }

    /// Finds the network layer of a frame of the given link type.
    pub(in crate::decode) fn decode(link_type: LinkType, data: &[u8]) -> Result<Link<'_>, Skip> {
        match link_type {
            LinkType::ETHERNET => ethernet(data),
            LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 => raw(data),
            LinkType::IPV4 => Ok(Link::ip(ETHERTYPE_IPV4, data)),
            LinkType::IPV6 => Ok(Link::ip(ETHERTYPE_IPV6, data)),
            LinkType::LINUX_SLL => sll(data),
            LinkType::LINUX_SLL2 => sll2(data),
            LinkType::NULL => null(data, false),
            LinkType::LOOP => null(data, true),
            LinkType(other) => Err(Skip::UnsupportedLinkType(other)),
        }
    }

    /// Raw IP: the version nibble says which.
    fn raw(data: &[u8]) -> Result<Link<'_>, Skip> {
        match data.first().map(|b| b >> 4) {
            Some(4) => Ok(Link::ip(ETHERTYPE_IPV4, data)),
            Some(6) => Ok(Link::ip(ETHERTYPE_IPV6, data)),
            Some(_) => Err(Skip::Malformed),
            None => Err(Skip::Truncated),
        }
    }

    /// Ethernet II: destination, source, EtherType, then any stack of VLAN tags.
    pub(in crate::decode) fn ethernet(data: &[u8]) -> Result<Link<'_>, Skip> {
        let dst = mac(data, 0)?;
        let src = mac(data, 6)?;
        let (vlan, ethertype, at) = vlan_stack(data, 12)?;
        Ok(Link {
            src_mac: Some(src),
            dst_mac: Some(dst),
            vlan,
            ethertype,
            payload: data.get(at..).ok_or(Skip::Truncated)?,
        })
    }

    /// Reads the EtherType at `at` and follows 802.1Q/802.1ad tags; returns the outermost VLAN id,
    /// the inner EtherType and the offset of the payload.
    fn vlan_stack(data: &[u8], mut at: usize) -> Result<(Option<u16>, u16, usize), Skip> {
        let mut vlan = None;
        for _ in 0..=VLAN_TAGS_MAX {
            let ethertype = be16(data, at)?;
            match ethertype {
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                    // Tag control information: PCP (3 bits), DEI (1), VLAN id (12).
                    let tci = be16(data, at + 2)?;
                    vlan.get_or_insert(tci & 0x0fff);
                    at += 4;
                }
                t if t < ETHERTYPE_MIN => return Err(Skip::NotIp),
                t => return Ok((vlan, t, at + 2)),
            }
        }
        Err(Skip::Malformed)
    }

    /// ARPHRD_ETHER: the SLL address field holds a 6-byte MAC.
    const ARPHRD_ETHER: u16 = 1;

    /// Linux cooked capture v1: packet type (2), ARPHRD type (2), address length (2), address (8),
    /// protocol (2). <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>
    fn sll(data: &[u8]) -> Result<Link<'_>, Skip> {
        let hatype = be16(data, 2)?;
        let addr_len = be16(data, 4)?;
        let (vlan, ethertype, at) = vlan_stack(data, 14)?;
        let src_mac = (hatype == ARPHRD_ETHER && addr_len == 6)
            .then(|| mac(data, 6).ok())
            .flatten();
        Ok(Link {
            src_mac,
            dst_mac: None,
            vlan,
            ethertype,
            payload: data.get(at..).ok_or(Skip::Truncated)?,
        })
    }

    /// Linux cooked capture v2: protocol (2), reserved (2), interface index (4), ARPHRD type (2),
    /// packet type (1), address length (1), address (8). <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>
    fn sll2(data: &[u8]) -> Result<Link<'_>, Skip> {
        if data.len() < 20 {
            return Err(Skip::Truncated);
        }
        let hatype = be16(data, 8)?;
        let addr_len = data.get(11).copied().ok_or(Skip::Truncated)?;
        let (vlan, ethertype, at) = match be16(data, 0)? {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // The tag itself sits at the start of the payload, after the 20-byte header.
                let tci = be16(data, 20)?;
                let (_, t, at) = vlan_stack(data, 22)?;
                (Some(tci & 0x0fff), t, at)
            }
            t if t < ETHERTYPE_MIN => return Err(Skip::NotIp),
            t => (None, t, 20),
        };
        let src_mac = (hatype == ARPHRD_ETHER && addr_len == 6)
            .then(|| mac(data, 12).ok())
            .flatten();
        Ok(Link {
            src_mac,
            dst_mac: None,
            vlan,
            ethertype,
            payload: data.get(at..).ok_or(Skip::Truncated)?,
        })
    }

    /// BSD null/loopback: a 4-byte protocol family, in the capturing host's byte order for NULL (so
    /// either order here) and network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is 24
    /// (NetBSD, OpenBSD), 28 (FreeBSD, DragonFly) or 30 (macOS).
    /// <https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html>
    fn null(data: &[u8], network_order: bool) -> Result<Link<'_>, Skip> {
        let head: [u8; 4] = data
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or(Skip::Truncated)?;
        let be = u32::from_be_bytes(head);
        let family = if network_order || be < 256 {
            be
        } else {
            u32::from_le_bytes(head)
        };
        let payload = data.get(4..).ok_or(Skip::Truncated)?;
        match family {
            2 => Ok(Link::ip(ETHERTYPE_IPV4, payload)),
            24 | 28 | 30 => Ok(Link::ip(ETHERTYPE_IPV6, payload)),
            _ => Err(Skip::NotIp),
        }
    }
}

pub(super) mod net {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
    use crate::decode::{Fragment, Packet, Skip, Transport};

    /// IPv6 extension headers followed before the packet is called malformed.
    const IPV6_EXT_HEADERS_MAX: usize = 8;

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
    pub(in crate::decode) fn decode_ip(ethertype: u16, data: &[u8]) -> Result<Packet<'_>, Skip> {
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
}

pub(super) mod tunnel {
    use super::{link, net};
    use crate::decode::link::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
    use crate::decode::tunnel::{
        Found, Inner, PORT_GENEVE, PORT_GTPU, PORT_TEREDO, PORT_VXLAN, TunnelKind, geneve, gre,
        gtpu, teredo, vxlan,
    };
    use crate::decode::{Fragment, Packet, Skip, Transport};

    const PROTO_IPV4: u8 = 4;
    const PROTO_IPV6: u8 = 41;
    const PROTO_GRE: u8 = 47;

    /// Whether (and how) this packet carries a tunnel. Only whole datagrams are looked into: an
    /// outer fragment stays the outer packet (its later fragments could not be opened anyway).
    pub(in crate::decode) fn examine<'a>(p: &Packet<'a>) -> Found<'a> {
        if p.fragment != Fragment::None {
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

    /// Decodes what a tunnel carries. An Ethernet frame gives its MAC addresses and VLAN tag to the
    /// packet; a bare IP packet has none (the outer frame's MACs are the tunnel endpoints', not the
    /// inner hosts').
    pub(in crate::decode) fn decode_inner(inner: Inner<'_>) -> Result<Packet<'_>, Skip> {
        match inner {
            Inner::Ip(ethertype, data) => net::decode_ip(ethertype, data),
            Inner::Ethernet(frame) => {
                let l2 = link::ethernet(frame)?;
                let mut p = net::decode_ip(l2.ethertype, l2.payload)?;
                p.src_mac = l2.src_mac;
                p.dst_mac = l2.dst_mac;
                p.vlan = l2.vlan;
                Ok(p)
            }
        }
    }
}
