//! Decoding: link layer → IP → transport, zero-copy over a borrowed frame.
//!
//! Tunnels (GRE, ERSPAN, IP-in-IP, VXLAN, GENEVE, GTP-U, Teredo; see [`TunnelKind`]) are opened:
//! the packet returned is the innermost one, so flows are the inner conversations, and
//! [`Packet::tunnel`] says which tunnel carried it and between which outer endpoints.

use std::fmt;
use std::str::FromStr;

/// The transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// Any other IP protocol number.
    Other(u8),
}

impl Transport {
    /// From an IP protocol number (IANA "Assigned Internet Protocol Numbers").
    pub fn from_ip_proto(proto: u8) -> Transport {
        match proto {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            1 => Transport::Icmp,
            58 => Transport::Icmpv6,
            n => Transport::Other(n),
        }
    }

    /// The IP protocol number.
    pub fn ip_proto(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Icmp => 1,
            Transport::Icmpv6 => 58,
            Transport::Other(n) => n,
        }
    }

    /// Whether flows of this transport have ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp => f.write_str("tcp"),
            Transport::Udp => f.write_str("udp"),
            Transport::Icmp => f.write_str("icmp"),
            Transport::Icmpv6 => f.write_str("icmpv6"),
            Transport::Other(n) => write!(f, "ip-proto-{n}"),
        }
    }
}

/// Parses the names [`Transport`] displays as (`tcp`, `udp`, `icmp`, `icmpv6`, `ip-proto-N`).
impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Transport, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            "icmp" => Ok(Transport::Icmp),
            "icmpv6" => Ok(Transport::Icmpv6),
            other => other
                .strip_prefix("ip-proto-")
                .and_then(|n| n.parse::<u8>().ok())
                .map(Transport::from_ip_proto)
                .ok_or_else(|| {
                    format!("unknown transport {s:?}: use tcp, udp, icmp, icmpv6 or ip-proto-N")
                }),
        }
    }
}

impl serde::Serialize for Transport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators), either case.
impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let bad =
            || format!("invalid MAC address {s:?}: expected six hex pairs like aa:bb:cc:dd:ee:ff");
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

mod link;
mod net;
mod tunnel;

use std::net::IpAddr;

use crate::capture::Frame;

pub use net::FRAGMENTS_MAX_TRACKED;
pub use tunnel::{TUNNEL_DEPTH_MAX, Tunnel, TunnelCounts, TunnelKind};

use tunnel::Found;

/// How a later IPv4/IPv6 fragment relates to its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not a fragment.
    None,
    /// The first fragment (offset 0, more to come): it carries the transport header.
    First { id: u32 },
    /// A later fragment: its ports come from the first fragment, where that was seen.
    Later { id: u32 },
}

/// A decoded packet: addresses, transport, and the transport payload, borrowed from the frame.
///
/// For a tunnelled packet every field but `vlan` and `tunnel` describes the INNER packet: its
/// addresses, ports, flags, and its own lengths (`ip_len` is the inner IP packet's length, so
/// flow byte counts are inner bytes, without the tunnel's overhead); `payload` still borrows the
/// frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The MAC addresses of the Ethernet header that carried this IP packet: the capture's link
    /// layer, or for a tunnel the inner frame's (VXLAN, GENEVE or GRE bridging, ERSPAN). None for
    /// an IP packet tunnelled without a frame of its own (IP-in-IP, GRE, GTP-U, Teredo): the outer
    /// MACs are those of the tunnel endpoints, not of the inner hosts.
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// The outermost 802.1Q / 802.1ad VLAN id, if tagged: the capture link's tag, else (in a
    /// tunnel) the first inner frame's.
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport,
    /// Source port (0 for transports without ports, or a later fragment whose first was not seen).
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
    pub tcp_flags: u8,
    /// TCP sequence number (RFC 9293 §3.1); 0 for non-TCP packets and TCP headers cut before it.
    pub seq: u32,
    /// Length of the IP packet on the wire (from the IP header, so snaplen cuts do not shrink it).
    pub ip_len: u32,
    /// Transport payload length on the wire, per the IP header.
    pub payload_len: u32,
    /// The captured part of the transport payload.
    pub payload: &'a [u8],
    pub fragment: Fragment,
    /// The tunnel this packet came out of (the outermost, with the nesting depth); None for a
    /// packet that was not tunnelled, or whose tunnel could not be opened (then this packet is
    /// the tunnel packet itself).
    pub tunnel: Option<Tunnel>,
}

/// Why a frame gave no packet. Counted by kind, never logged per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type this decoder does not read.
    UnsupportedLinkType(u32),
    /// A link-layer payload that is not IP (ARP, LLDP, 802.3 LLC, …).
    NotIp,
    /// The frame ends inside a header.
    Truncated,
    /// A header contradicts itself (bad version, length below the minimum, …).
    Malformed,
}

impl Skip {
    /// A stable name for reports.
    pub fn kind(&self) -> String {
        match self {
            Skip::UnsupportedLinkType(n) => format!("unsupported_link_type_{n}"),
            Skip::NotIp => "not_ip".to_owned(),
            Skip::Truncated => "truncated".to_owned(),
            Skip::Malformed => "malformed".to_owned(),
        }
    }
}

/// Counters of what the decoder saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub packets: u64,
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    /// Frames of link types not decoded, by link type number.
    pub unsupported_link_types: std::collections::BTreeMap<u32, u64>,
    pub fragments: u64,
    /// Later fragments whose first fragment was not seen (their ports are unknown).
    pub fragments_unmatched: u64,
    /// First-fragment records dropped because the tracker was full.
    pub fragments_evicted: u64,
    /// Tunnel levels opened, by kind (a packet in VXLAN in GRE counts one of each).
    pub tunnels: TunnelCounts,
    /// Tunnels whose header or inner packet was broken or cut short: the outer packet (the
    /// tunnel's own flow) was returned instead.
    pub tunnel_malformed: u64,
    /// Tunnels carrying something other than IP (ARP or STP over ERSPAN/VXLAN, PPP control or
    /// encrypted PPTP data, other GRE protocol types): the outer packet was returned.
    pub tunnel_not_decoded: u64,
    /// Packets nested deeper than [`TUNNEL_DEPTH_MAX`]: returned as found at that depth.
    pub tunnel_depth_exceeded: u64,
}

/// Decodes frames into packets, keeping the little state decoding needs (IP fragment tracking).
#[derive(Clone, Default)]
pub struct Decoder {
    fragments: net::FragmentTracker,
    stats: DecodeStats,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder remembering at most `cap` first fragments (at least 2; the default is
    /// [`FRAGMENTS_MAX_TRACKED`]); evictions are counted in `fragments_evicted`.
    pub fn with_fragment_cap(cap: usize) -> Decoder {
        let mut d = Decoder::default();
        d.fragments.cap = Some(cap.max(2));
        d
    }

    /// Decodes one frame; a frame that gives no packet is counted in [`Decoder::stats`].
    ///
    /// The common packet (no tunnel, no fragment) is built once, in place, in the value returned:
    /// the transport layer writes every field from what the link and IP layers found, and a test
    /// on the protocol and ports tells that there is nothing to open. Only tunnels and fragments
    /// take the general path, which may replace the packet or fill in its ports.
    #[inline]
    pub fn decode<'a>(&mut self, frame: &Frame<'a>) -> Option<Packet<'a>> {
        let decoded = self.layers(frame);
        let p = decoded.as_ref()?;
        if p.fragment != Fragment::None || tunnel::may_carry(p) {
            return Some(self.open_and_track(decoded?, frame.ts_ns));
        }
        self.stats.packets += 1;
        decoded
    }

    /// The link, IP and transport layers of a frame, or None with the skip counted. (An `Option`
    /// rather than a `Result`, like [`Decoder::decode`], so that the packet needs no copy.)
    #[inline(always)]
    fn layers<'a>(&mut self, frame: &Frame<'a>) -> Option<Packet<'a>> {
        match link::decode(frame.link_type, frame.data).and_then(|l2| net::decode_ip(&l2)) {
            Ok(p) => Some(p),
            Err(skip) => {
                self.skipped(skip);
                None
            }
        }
    }

    /// The general path: opens tunnels, then tracks fragments by the addresses of the packet
    /// returned (the inner ones).
    #[inline(never)]
    fn open_and_track<'a>(&mut self, mut p: Packet<'a>, ts_ns: i64) -> Packet<'a> {
        self.decapsulate(&mut p);
        if p.fragment != Fragment::None {
            self.stats.fragments += 1;
            self.fragments.resolve(&mut p, ts_ns, &mut self.stats);
        }
        self.stats.packets += 1;
        p
    }

    #[cold]
    fn skipped(&mut self, skip: Skip) {
        match skip {
            Skip::UnsupportedLinkType(n) => {
                *self.stats.unsupported_link_types.entry(n).or_default() += 1
            }
            Skip::NotIp => self.stats.not_ip += 1,
            Skip::Truncated => self.stats.truncated += 1,
            Skip::Malformed => self.stats.malformed += 1,
        }
    }

    /// Opens nested tunnels, up to [`TUNNEL_DEPTH_MAX`] levels, replacing `p` by the innermost
    /// packet. A level that cannot be opened (broken, cut short, not carrying IP) leaves the
    /// packet of the level above, counted.
    fn decapsulate(&mut self, p: &mut Packet<'_>) {
        let mut depth = 0u8;
        loop {
            let (kind, inner) = match tunnel::examine(p) {
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
            *p = q;
        }
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}

#[cfg(test)]
mod reference;
#[cfg(test)]
pub(crate) mod tests;
