//! Packet crafting for tests, examples and benchmarks: well-formed IPv4/IPv6, TCP/UDP/ICMP and
//! link-layer frames built from a few parameters, with correct lengths and checksums.
//!
//! Not used on any analysis path. Combined with [`crate::capture::write`], it writes captures for
//! exact scenarios (a device talking to a given country, VLAN tags, fragments, SLL).

use std::net::{IpAddr, SocketAddr};

use crate::decode::Mac;

/// Payloads of the VPN and equipment protocols (issue 8).
pub mod proto;

/// TCP flag bits (RFC 9293 §3.1).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

fn checksum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Pseudo-header sum for TCP/UDP checksums (RFC 9293 §3.1, RFC 8200 §8.1).
fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut sum = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = checksum_add(sum, &s.octets());
            sum = checksum_add(sum, &d.octets());
        }
        (s, d) => {
            sum = checksum_add(sum, &to_v6(s));
            sum = checksum_add(sum, &to_v6(d));
        }
    }
    sum + u32::from(proto) + len as u32
}

fn to_v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Wraps a transport segment in an IPv4 or IPv6 header (by the address family of `src`).
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> Vec<u8> {
    ip_with_id(src, dst, proto, segment, 1)
}

fn ip_with_id(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8], id: u16) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + segment.len()) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = checksum_fold(checksum_add(0, &h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(segment);
            h
        }
        _ => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            h.push(proto);
            h.push(64);
            h.extend_from_slice(&to_v6(src));
            h.extend_from_slice(&to_v6(dst));
            h.extend_from_slice(segment);
            h
        }
    }
}

/// A TCP segment inside an IP packet.
pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8, payload: &[u8]) -> Vec<u8> {
    let ack = if flags & tcp_flags::ACK != 0 { 1 } else { 0 };
    tcp_segment(src, dst, 1000, ack, flags, &[], payload)
}

/// A TCP segment with the given sequence and acknowledgment numbers and options (a multiple of
/// 4 bytes, e.g. NOP NOP + timestamps), inside an IP packet, checksummed.
pub fn tcp_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let header_len = 20 + options.len();
    let mut s = Vec::with_capacity(header_len + payload.len());
    s.extend_from_slice(&src.port().to_be_bytes());
    s.extend_from_slice(&dst.port().to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.push(((header_len / 4) as u8) << 4); // data offset in 32-bit words
    s.push(flags);
    s.extend_from_slice(&64240u16.to_be_bytes()); // window
    s.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    s.extend_from_slice(options);
    s.extend_from_slice(payload);
    let c = checksum_fold(checksum_add(pseudo_sum(src.ip(), dst.ip(), 6, s.len()), &s));
    s[16..18].copy_from_slice(&c.to_be_bytes());
    ip(src.ip(), dst.ip(), 6, &s)
}

/// A UDP datagram inside an IP packet.
pub fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut s = Vec::with_capacity(usize::from(len));
    s.extend_from_slice(&src.port().to_be_bytes());
    s.extend_from_slice(&dst.port().to_be_bytes());
    s.extend_from_slice(&len.to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let c = checksum_fold(checksum_add(
        pseudo_sum(src.ip(), dst.ip(), 17, s.len()),
        &s,
    ));
    s[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    ip(src.ip(), dst.ip(), 17, &s)
}

/// An ICMP (IPv4) or ICMPv6 echo request.
pub fn echo_request(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let mut s = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 1, 0, 1];
    s.extend_from_slice(b"egresswatch");
    let proto = if v6 { 58 } else { 1 };
    let sum = if v6 {
        checksum_add(pseudo_sum(src, dst, proto, s.len()), &s)
    } else {
        checksum_add(0, &s)
    };
    let c = checksum_fold(sum);
    s[2..4].copy_from_slice(&c.to_be_bytes());
    ip(src, dst, proto, &s)
}

/// Splits an IPv4 packet into fragments of at most `chunk` payload bytes (a multiple of 8).
pub fn fragment_ipv4(packet: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let (header, body) = packet.split_at(ihl);
    let chunk = (chunk / 8).max(1) * 8;
    let pieces: Vec<&[u8]> = body.chunks(chunk).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut h = header.to_vec();
            let total = (ihl + piece.len()) as u16;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            let offset = ((i * chunk) / 8) as u16;
            let flags = if i < last { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&(flags | offset).to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum_fold(checksum_add(0, &h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(piece);
            h
        })
        .collect()
}

/// EtherType of an IP packet, from its version nibble.
fn ethertype_of(packet: &[u8]) -> u16 {
    if packet.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    }
}

/// An Ethernet II frame carrying an IP packet, with 802.1Q tags (outermost first; an outermost
/// tag is written as 802.1ad when there are several).
pub fn ethernet(src: Mac, dst: Mac, vlans: &[u16], packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + packet.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for (i, vlan) in vlans.iter().enumerate() {
        let tpid: u16 = if i == 0 && vlans.len() > 1 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype_of(packet).to_be_bytes());
    f.extend_from_slice(packet);
    f
}

/// A Linux cooked (SLL v1) frame carrying an IP packet sent by `src`.
pub fn linux_sll(src: Mac, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 4, 0, 1, 0, 6]; // outgoing, ARPHRD_ETHER, address length 6
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&ethertype_of(packet).to_be_bytes());
    f.extend_from_slice(packet);
    f
}

/// A Linux cooked (SLL v2) frame carrying an IP packet sent by `src`.
pub fn linux_sll2(src: Mac, packet: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(20 + packet.len());
    f.extend_from_slice(&ethertype_of(packet).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6]); // reserved, ifindex 2, ARPHRD_ETHER, outgoing, len 6
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(packet);
    f
}

/// A DNS response (RFC 1035 §4.1) answering `query` with A/AAAA records for `addrs`, after an
/// optional CNAME chain; names in answers point back at the question with compression pointers.
pub fn dns_response(
    id: u16,
    query: &str,
    cnames: &[&str],
    addrs: &[std::net::IpAddr],
    ttl: u32,
) -> Vec<u8> {
    fn name(out: &mut Vec<u8>, n: &str) {
        for label in n.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available, NOERROR
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&((cnames.len() + addrs.len()) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    let qtype: u16 = if addrs.first().is_some_and(|a| a.is_ipv6()) {
        28
    } else {
        1
    };
    name(&mut m, query);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    // Each record's owner: the question (pointer to offset 12) or the previous CNAME target.
    let mut owner: usize = 12;
    for target in cnames {
        m.extend_from_slice(&(0xc000 | owner as u16).to_be_bytes());
        m.extend_from_slice(&5u16.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        let mut rdata = Vec::new();
        name(&mut rdata, target);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        owner = m.len();
        m.extend_from_slice(&rdata);
    }
    for addr in addrs {
        m.extend_from_slice(&(0xc000 | owner as u16).to_be_bytes());
        let (t, data) = match addr {
            std::net::IpAddr::V4(a) => (1u16, a.octets().to_vec()),
            std::net::IpAddr::V6(a) => (28u16, a.octets().to_vec()),
        };
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(&data);
    }
    m
}

/// A TLS 1.3-style ClientHello record (RFC 8446 §4.1.2) offering `sni` and ALPN `h2`, padded
/// with a padding extension (RFC 7685) to `pad_to` bytes of handshake body when larger.
pub fn tls_client_hello(sni: &str, pad_to: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    // server_name (0): list of one host_name.
    let host = sni.as_bytes();
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&((host.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((host.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(host.len() as u16).to_be_bytes());
    ext.extend_from_slice(host);
    // ALPN (16): "h2".
    ext.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
    // supported_versions (43): TLS 1.3, TLS 1.2.
    ext.extend_from_slice(&[0, 43, 0, 5, 4, 0x03, 0x04, 0x03, 0x03]);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x11; 32]); // legacy session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    let base = body.len() + 2 + ext.len();
    if pad_to > base + 4 {
        let n = pad_to - base - 4;
        ext.extend_from_slice(&21u16.to_be_bytes());
        ext.extend_from_slice(&(n as u16).to_be_bytes());
        ext.extend(std::iter::repeat_n(0u8, n));
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A TLS ServerHello record selecting TLS 1.3 (supported_versions), for handshake tests.
pub fn tls_server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x33; 32]);
    body.push(0);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let ext = [0u8, 43, 0, 2, 0x03, 0x04];
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![2];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x03];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A TLS application-data record of `len` opaque bytes.
pub fn tls_application_data(len: usize) -> Vec<u8> {
    let mut rec = vec![0x17, 0x03, 0x03];
    rec.extend_from_slice(&(len as u16).to_be_bytes());
    rec.extend(std::iter::repeat_n(0xa5u8, len));
    rec
}

// ---------------------------------------------------------------------------------------------
// Encapsulations: each returns the OUTER IP packet (wrap it with `ethernet` for a frame), with the
// tunnel header as the RFCs lay it out and the inner packet or frame unchanged behind it.

/// EtherType of an Ethernet frame inside GRE or GENEVE (transparent Ethernet bridging).
pub const ETHERTYPE_TEB: u16 = 0x6558;

/// An Ethernet II frame carrying `payload` with the given EtherType (no VLAN tag): for ARP, or
/// anything else that is not IP.
pub fn ethernet_raw(src: Mac, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The optional fields of a GRE header (RFC 2784 checksum, RFC 2890 key and sequence number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GreFields {
    pub checksum: bool,
    pub key: Option<u32>,
    pub seq: Option<u32>,
}

/// A GRE (version 0) packet over IP protocol 47 carrying `payload` of this protocol type
/// (0x0800 IPv4, 0x86DD IPv6, [`ETHERTYPE_TEB`] an Ethernet frame, 0x88BE/0x22EB ERSPAN, …).
pub fn gre(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    fields: GreFields,
    protocol: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut flags = 0u8;
    if fields.checksum {
        flags |= 0x80;
    }
    if fields.key.is_some() {
        flags |= 0x20;
    }
    if fields.seq.is_some() {
        flags |= 0x10;
    }
    let mut g = vec![flags, 0];
    g.extend_from_slice(&protocol.to_be_bytes());
    if fields.checksum {
        g.extend_from_slice(&[0, 0, 0, 0]); // checksum, reserved1: filled in below
    }
    if let Some(k) = fields.key {
        g.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = fields.seq {
        g.extend_from_slice(&s.to_be_bytes());
    }
    g.extend_from_slice(payload);
    if fields.checksum {
        // RFC 2784 §2.5: the one's complement checksum of the GRE header and payload.
        let c = checksum_fold(checksum_add(0, &g));
        g[4..6].copy_from_slice(&c.to_be_bytes());
    }
    ip(outer_src, outer_dst, 47, &g)
}

/// GRE carrying an IP packet (protocol type from its version nibble), no optional fields.
pub fn gre_ip(outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    gre(
        outer_src,
        outer_dst,
        GreFields::default(),
        ethertype_of(inner),
        inner,
    )
}

/// ERSPAN type II (GRE 0x88BE with a sequence number, then the 8-byte ERSPAN header) mirroring
/// an Ethernet frame.
pub fn erspan2(outer_src: IpAddr, outer_dst: IpAddr, session: u16, frame: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(8 + frame.len());
    h.extend_from_slice(&0x1000u16.to_be_bytes()); // version 1, VLAN 0
    h.extend_from_slice(&(session & 0x03ff).to_be_bytes()); // CoS 0, En 0, T 0, session id
    h.extend_from_slice(&[0, 0, 0, 0]); // reserved, index
    h.extend_from_slice(frame);
    let fields = GreFields {
        seq: Some(1),
        ..GreFields::default()
    };
    gre(outer_src, outer_dst, fields, 0x88be, &h)
}

/// ERSPAN type III (GRE 0x22EB, then the 12-byte ERSPAN header, and the 8-byte platform specific
/// subheader when `platform`) mirroring an Ethernet frame.
pub fn erspan3(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    session: u16,
    platform: bool,
    frame: &[u8],
) -> Vec<u8> {
    let mut h = Vec::with_capacity(20 + frame.len());
    h.extend_from_slice(&0x2000u16.to_be_bytes()); // version 2, VLAN 0
    h.extend_from_slice(&(session & 0x03ff).to_be_bytes()); // CoS 0, BSO 0, T 0, session id
    h.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // timestamp
    h.extend_from_slice(&[0, 0]); // security group tag
    h.push(0); // P 0, frame type 0 (Ethernet), hardware id high bits
    h.push(u8::from(platform)); // hardware id low bits, D, granularity, O
    if platform {
        h.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]); // platform id 1 subheader
    }
    h.extend_from_slice(frame);
    let fields = GreFields {
        seq: Some(1),
        ..GreFields::default()
    };
    gre(outer_src, outer_dst, fields, 0x22eb, &h)
}

/// IP in IP: protocol 4 for an inner IPv4 packet, 41 for IPv6 (so 4in4, 6in4, 4in6 or 6in6 by
/// the families of the outer addresses and of the inner packet).
pub fn ipip(outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    let proto = if ethertype_of(inner) == 0x86dd { 41 } else { 4 };
    ip(outer_src, outer_dst, proto, inner)
}

/// The VXLAN UDP port (RFC 7348).
pub const PORT_VXLAN: u16 = 4789;
/// The GENEVE UDP port (RFC 8926).
pub const PORT_GENEVE: u16 = 6081;
/// The GTP-U UDP port (3GPP TS 29.281).
pub const PORT_GTPU: u16 = 2152;
/// The Teredo UDP port (RFC 4380).
pub const PORT_TEREDO: u16 = 3544;

/// VXLAN: a UDP datagram from `outer_src` to port 4789 of `outer_dst`, with the 8-byte header
/// (I flag, the VNI) and the Ethernet `frame`.
pub fn vxlan(outer_src: SocketAddr, outer_dst: IpAddr, vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + frame.len());
    d.extend_from_slice(&[0x08, 0, 0, 0]);
    d.extend_from_slice(&((vni & 0x00ff_ffff) << 8).to_be_bytes());
    d.extend_from_slice(frame);
    udp(outer_src, SocketAddr::new(outer_dst, PORT_VXLAN), &d)
}

/// GENEVE: a UDP datagram to port 6081 with the 8-byte header, `options` (a multiple of 4 bytes,
/// at most 252) and `payload` of this protocol type ([`ETHERTYPE_TEB`] for an Ethernet frame,
/// 0x0800 / 0x86DD for an IP packet).
pub fn geneve(
    outer_src: SocketAddr,
    outer_dst: IpAddr,
    vni: u32,
    protocol: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert!(
        options.len().is_multiple_of(4) && options.len() <= 252,
        "GENEVE options come in 4-byte words, at most 63"
    );
    let mut d = Vec::with_capacity(8 + options.len() + payload.len());
    d.push((options.len() / 4) as u8); // version 0, option length
    d.push(0); // O, C, reserved
    d.extend_from_slice(&protocol.to_be_bytes());
    d.extend_from_slice(&((vni & 0x00ff_ffff) << 8).to_be_bytes());
    d.extend_from_slice(options);
    d.extend_from_slice(payload);
    udp(outer_src, SocketAddr::new(outer_dst, PORT_GENEVE), &d)
}

/// GTP-U: a G-PDU (message type 255) with this TEID to port 2152, carrying an IP packet. With a
/// sequence number or extension headers the optional 4-byte field is present (S and E flags);
/// each extension header is `(type, content)`, its content padded with zeros so that length
/// byte, content and next-type byte fill whole 4-byte units (TS 29.281 §5.2.1).
pub fn gtpu(
    outer_src: SocketAddr,
    outer_dst: IpAddr,
    teid: u32,
    seq: Option<u16>,
    extensions: &[(u8, &[u8])],
    inner: &[u8],
) -> Vec<u8> {
    let mut flags = 0x30u8; // version 1, protocol type GTP
    if seq.is_some() {
        flags |= 0x02;
    }
    if !extensions.is_empty() {
        flags |= 0x04;
    }
    let mut d = vec![flags, 255, 0, 0];
    d.extend_from_slice(&teid.to_be_bytes());
    if flags & 0x07 != 0 {
        d.extend_from_slice(&seq.unwrap_or(0).to_be_bytes());
        d.push(0); // N-PDU number
        d.push(extensions.first().map_or(0, |e| e.0));
        for (i, (_, content)) in extensions.iter().enumerate() {
            let units = (content.len() + 2).div_ceil(4);
            d.push(units as u8);
            d.extend_from_slice(content);
            d.resize(d.len() + units * 4 - 2 - content.len(), 0);
            d.push(extensions.get(i + 1).map_or(0, |e| e.0));
        }
    }
    d.extend_from_slice(inner);
    let len = (d.len() - 8) as u16;
    d[2..4].copy_from_slice(&len.to_be_bytes());
    udp(outer_src, SocketAddr::new(outer_dst, PORT_GTPU), &d)
}

/// Teredo: an IPv6 packet in a UDP datagram, optionally preceded by an authentication indicator
/// (empty client id and value, zero nonce) and an origin indication naming `origin` (port and
/// address obfuscated as RFC 4380 §5.1.1 says).
pub fn teredo(
    outer_src: SocketAddr,
    outer_dst: SocketAddr,
    auth: bool,
    origin: Option<std::net::SocketAddrV4>,
    inner_v6: &[u8],
) -> Vec<u8> {
    let mut d = Vec::with_capacity(21 + 8 + inner_v6.len());
    if auth {
        d.extend_from_slice(&[0, 1, 0, 0]); // indicator, id length 0, auth length 0
        d.extend_from_slice(&[0; 8]); // nonce
        d.push(0); // confirmation
    }
    if let Some(o) = origin {
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&(o.port() ^ 0xffff).to_be_bytes());
        d.extend_from_slice(&(u32::from(*o.ip()) ^ 0xffff_ffff).to_be_bytes());
    }
    d.extend_from_slice(inner_v6);
    udp(outer_src, outer_dst, &d)
}

/// PPTP's enhanced GRE (version 1, RFC 2637 §4.1) carrying a PPP frame: address and control
/// bytes, then the two-byte PPP `protocol` (0x0021 IPv4, 0x0057 IPv6, 0xC021 LCP, …) and
/// `payload`. With `payload` None, an acknowledgement-only packet (no sequence number, no data).
pub fn pptp(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    call_id: u16,
    protocol: u16,
    payload: Option<&[u8]>,
) -> Vec<u8> {
    let mut g = vec![if payload.is_some() { 0x30 } else { 0x20 }, 0x81];
    g.extend_from_slice(&0x880bu16.to_be_bytes());
    let ppp_len = payload.map_or(0, |p| 4 + p.len());
    g.extend_from_slice(&(ppp_len as u16).to_be_bytes());
    g.extend_from_slice(&call_id.to_be_bytes());
    if payload.is_some() {
        g.extend_from_slice(&7u32.to_be_bytes()); // sequence number
    }
    g.extend_from_slice(&6u32.to_be_bytes()); // acknowledgement number
    if let Some(p) = payload {
        g.extend_from_slice(&[0xff, 0x03]);
        g.extend_from_slice(&protocol.to_be_bytes());
        g.extend_from_slice(p);
    }
    ip(outer_src, outer_dst, 47, &g)
}
