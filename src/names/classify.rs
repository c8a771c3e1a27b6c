//! Application protocol of a flow direction, from the content of its first payload rather than
//! its ports (DESIGN §2 "Encryption"): TLS, DTLS, QUIC, SSH, HTTP, DNS, the VPN tunnels (IKE,
//! ESP, WireGuard, OpenVPN, SSTP and AnyConnect seen in the clear) and the equipment protocols
//! (NTP, syslog, SNMP, NETCONF, TR-069/CWMP, MQTT, CoAP; recognisers in [`super::proto`]), or
//! unknown.
//!
//! Guarantees: constant work for every protocol but DNS and SNMP, whose checks are bounded
//! parses, and CWMP, whose namespace search reads at most
//! [`proto::CWMP_SEARCH_MAX_BYTES`]; no panic on any input. Ports only ever break a tie for
//! protocols without enough structure of their own (DNS, NTP, CoAP, ESP-in-UDP, NETCONF, CWMP
//! connection requests), each citing where the port is assigned.

use crate::decode::Transport;

use super::{be16, be32, dns, proto, tls};

/// A protocol recognised from payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppProto {
    Tls,
    Dtls,
    Quic,
    Ssh,
    Http,
    Dns,
    Unknown,
    // VPN tunnels (issue 8).
    Ike,
    Esp,
    Wireguard,
    Openvpn,
    Sstp,
    Anyconnect,
    // Equipment management and telemetry (issue 8).
    Ntp,
    Syslog,
    Snmp,
    Netconf,
    Cwmp,
    Mqtt,
    Coap,
    // --- proxies (the proxy helper's block) ---
    /// A SOCKS4 or SOCKS4a handshake (until the proxied stream is classified).
    Socks4,
    /// A SOCKS5 handshake (until the proxied stream is classified).
    Socks5,
    /// An HTTP `CONNECT` to a proxy (until the proxied stream is classified).
    HttpProxy,
}

impl AppProto {
    /// Stable lower-case name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Tls => "tls",
            AppProto::Dtls => "dtls",
            AppProto::Quic => "quic",
            AppProto::Ssh => "ssh",
            AppProto::Http => "http",
            AppProto::Dns => "dns",
            AppProto::Unknown => "unknown",
            AppProto::Ike => "ike",
            AppProto::Esp => "esp",
            AppProto::Wireguard => "wireguard",
            AppProto::Openvpn => "openvpn",
            AppProto::Sstp => "sstp",
            AppProto::Anyconnect => "anyconnect",
            AppProto::Ntp => "ntp",
            AppProto::Syslog => "syslog",
            AppProto::Snmp => "snmp",
            AppProto::Netconf => "netconf",
            AppProto::Cwmp => "cwmp",
            AppProto::Mqtt => "mqtt",
            AppProto::Coap => "coap",
            // --- proxies ---
            AppProto::Socks4 => "socks4",
            AppProto::Socks5 => "socks5",
            AppProto::HttpProxy => "http-proxy",
        }
    }

    /// Protocols that encrypt their payload once their handshake completes. Whether it did is
    /// the caller's to track ([`tls::TlsHandshakeState`] for TLS).
    pub fn is_encrypted_protocol(self) -> bool {
        matches!(
            self,
            AppProto::Tls
                | AppProto::Dtls
                | AppProto::Quic
                | AppProto::Ssh
                | AppProto::Ike
                | AppProto::Esp
                | AppProto::Wireguard
                | AppProto::Openvpn
                | AppProto::Netconf
        )
    }

    /// Every protocol, in output order.
    pub const ALL: [AppProto; 20] = [
        AppProto::Tls,
        AppProto::Dtls,
        AppProto::Quic,
        AppProto::Ssh,
        AppProto::Http,
        AppProto::Dns,
        AppProto::Unknown,
        AppProto::Ike,
        AppProto::Esp,
        AppProto::Wireguard,
        AppProto::Openvpn,
        AppProto::Sstp,
        AppProto::Anyconnect,
        AppProto::Ntp,
        AppProto::Syslog,
        AppProto::Snmp,
        AppProto::Netconf,
        AppProto::Cwmp,
        AppProto::Mqtt,
        AppProto::Coap,
    ];

    /// The protocol named `name` (as [`AppProto::as_str`] writes it, either case).
    pub fn from_name(name: &str) -> Option<AppProto> {
        AppProto::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }

    /// VPN tunnels: the policy group `vpn`.
    pub fn is_vpn(self) -> bool {
        matches!(
            self,
            AppProto::Ike
                | AppProto::Esp
                | AppProto::Wireguard
                | AppProto::Openvpn
                | AppProto::Sstp
                | AppProto::Anyconnect
        )
    }

    /// Equipment management and telemetry protocols: the policy group `management`.
    pub fn is_management(self) -> bool {
        matches!(
            self,
            AppProto::Ntp
                | AppProto::Syslog
                | AppProto::Snmp
                | AppProto::Netconf
                | AppProto::Cwmp
                | AppProto::Mqtt
                | AppProto::Coap
        )
    }

    /// A bit of its own, for sets of protocols (`ALL` has fewer than 32 entries).
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for AppProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DNS port (RFC 1035 §4.2), used only to accept a DNS message with unusual counts.
const DNS_PORT: u16 = 53;
/// Counts above this in any section make a message implausible for DNS without a port hint.
const DNS_PLAUSIBLE_COUNT_MAX: u16 = 64;

/// Request methods recognised at the start of a payload (RFC 9110 §9, RFC 5789 PATCH, and the
/// SSDP methods of HTTP over UDP).
const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"M-SEARCH ",
    b"NOTIFY ",
];

/// QUIC versions: 1 (RFC 9000 §15), 2 (RFC 9369 §3.1: "0x6b3343cf"), and the IETF drafts
/// 0xff0000xx.
fn is_quic_version(v: u32) -> bool {
    v == 0x0000_0001 || v == 0x6b33_43cf || v & 0xffff_ff00 == 0xff00_0000
}

/// Classifies the first payload of a flow direction. `None` for an empty payload or a transport
/// without payload semantics; [`AppProto::Unknown`] when bytes were seen but matched nothing.
///
/// The order is deliberate, strongest structure first, so that a weaker check never swallows
/// another protocol's traffic: TLS, DTLS and QUIC (record and header magic); SSH (NETCONF when
/// on port 830 or 4334); the HTTP family (SSTP and AnyConnect requests, CWMP, plain HTTP); DNS where a
/// port says DNS; then the VPNs (IKE, ESP-in-UDP, WireGuard, OpenVPN); then the equipment
/// protocols (MQTT, SNMP, syslog; NTP and CoAP last because they need their port); DNS without
/// a port hint at the very end. ESP (IP protocol 50) has no ports and is recognised by protocol
/// number alone.
pub fn classify(payload: &[u8], transport: Transport, ports: (u16, u16)) -> Option<AppProto> {
    if payload.is_empty() {
        return None;
    }
    // RFC 4303 §2: ESP is its own IP protocol, 50; its payload is opaque past SPI and sequence.
    if transport == Transport::Other(ESP_IP_PROTO) {
        return Some(AppProto::Esp);
    }
    if !transport.has_ports() {
        return None;
    }
    let udp = transport == Transport::Udp;
    if !udp && tls_record(payload) {
        return Some(AppProto::Tls);
    }
    if udp && dtls_record(payload) {
        return Some(AppProto::Dtls);
    }
    if udp && quic_long_header(payload) {
        return Some(AppProto::Quic);
    }
    // RFC 4253 §4.2: "SSH-protoversion-softwareversion SP comments CR LF".
    if !udp && payload.starts_with(b"SSH-") {
        if proto::netconf(payload, ports) {
            return Some(AppProto::Netconf);
        }
        return Some(AppProto::Ssh);
    }
    if proto::sstp(payload) {
        return Some(AppProto::Sstp);
    }
    if proto::anyconnect(payload) {
        return Some(AppProto::Anyconnect);
    }
    if HTTP_METHODS.iter().any(|m| payload.starts_with(m)) || payload.starts_with(b"HTTP/1.") {
        if proto::cwmp(payload, ports) {
            return Some(AppProto::Cwmp);
        }
        return Some(AppProto::Http);
    }
    // --- proxies: a SOCKS handshake from the client's first bytes (version 4 or 5 and a
    // consistent length, see `proxy::looks_like_socks`); before DNS, whose check is looser.
    if !udp {
        match super::proxy::looks_like_socks(payload) {
            Some(super::proxy::ProxyKind::Socks4) => return Some(AppProto::Socks4),
            Some(super::proxy::ProxyKind::Socks5) => return Some(AppProto::Socks5),
            _ => {}
        }
    }
    // --- end of proxies ---
    let port_hint = ports.0 == DNS_PORT
        || ports.1 == DNS_PORT
        || dns::is_local_resolution(ports.0)
        || dns::is_local_resolution(ports.1);
    let dns_body = if udp {
        Some(payload)
    } else {
        // RFC 1035 §4.2.2: a two-octet length, then the message.
        be16(payload, 0)
            .filter(|&len| usize::from(len) + 2 == payload.len())
            .and_then(|_| payload.get(2..))
    };
    // DNS on a DNS port wins over everything below: a query can look like a WireGuard header
    // (an id of 0x0400 and flags 0) or satisfy the looser NTP and CoAP checks.
    if port_hint && dns_body.is_some_and(|b| plausible_dns(b, true)) {
        return Some(AppProto::Dns);
    }
    if let Some(p) = vpn(payload, udp, ports) {
        return Some(p);
    }
    if let Some(p) = equipment(payload, udp, ports) {
        return Some(p);
    }
    if !port_hint && dns_body.is_some_and(|b| plausible_dns(b, false)) {
        return Some(AppProto::Dns);
    }
    Some(AppProto::Unknown)
}

/// IP protocol number of ESP (RFC 4303 §2, IANA "Assigned Internet Protocol Numbers").
pub const ESP_IP_PROTO: u8 = 50;

/// The VPN protocols over UDP or TCP.
fn vpn(payload: &[u8], udp: bool, ports: (u16, u16)) -> Option<AppProto> {
    if !udp && proto::ike_tcp(payload).is_some() {
        return Some(AppProto::Ike);
    }
    if udp {
        if proto::ike(payload, ports).is_some() {
            return Some(AppProto::Ike);
        }
        if proto::esp_in_udp(payload, ports) {
            return Some(AppProto::Esp);
        }
        if proto::wireguard(payload) {
            return Some(AppProto::Wireguard);
        }
    }
    proto::openvpn(payload, !udp).then_some(AppProto::Openvpn)
}

/// The equipment protocols: those with magic or a full structure first, then the two that need
/// their port (NTP, CoAP).
fn equipment(payload: &[u8], udp: bool, ports: (u16, u16)) -> Option<AppProto> {
    if !udp && proto::mqtt(payload) {
        return Some(AppProto::Mqtt);
    }
    if udp && proto::snmp(payload).is_some() {
        return Some(AppProto::Snmp);
    }
    if proto::syslog(payload, !udp) {
        return Some(AppProto::Syslog);
    }
    if udp && proto::ntp(payload, ports) {
        return Some(AppProto::Ntp);
    }
    if udp && proto::coap(payload, ports) {
        return Some(AppProto::Coap);
    }
    None
}

/// TLS record: type 22 (handshake) or 23 (application data, a capture started mid-flow),
/// version 3.0 to 3.4 (RFC 8446 §5.1 `legacy_record_version`), length 1..=2^14+2048.
fn tls_record(b: &[u8]) -> bool {
    matches!(
        b.first(),
        Some(&tls::CONTENT_HANDSHAKE | &tls::CONTENT_APPLICATION_DATA)
    ) && tls::plausible_record_header(b)
}

/// DTLS handshake record: type 22, version 0xfeff (1.0) or 0xfefd (1.2, also the record
/// version of DTLS 1.3, RFC 9147 §4), and room for the 13-byte header.
fn dtls_record(b: &[u8]) -> bool {
    b.len() >= 13
        && b.first() == Some(&tls::CONTENT_HANDSHAKE)
        && b.get(1) == Some(&0xfe)
        && matches!(b.get(2), Some(0xff | 0xfd))
}

/// QUIC long header (RFC 9000 §17.2): "Header Form (1) = 1, Fixed Bit (1) = 1", a known
/// version, and a destination connection ID length within 20 (§17.2: "MUST NOT exceed 20").
fn quic_long_header(b: &[u8]) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    first & 0xc0 == 0xc0
        && be32(b, 1).is_some_and(is_quic_version)
        && b.get(5).is_some_and(|&dcid| dcid <= 20)
}

/// A DNS message whose header is sane: a standard opcode (QUERY 0, IQUERY 1, STATUS 2, NOTIFY
/// 4, UPDATE 5), one question (or a few with a port hint, or none in an mDNS response), modest
/// counts, and questions that parse.
fn plausible_dns(b: &[u8], port_hint: bool) -> bool {
    let Ok(m) = dns::parse_message(b) else {
        return false;
    };
    if !matches!(m.opcode, 0 | 1 | 2 | 4 | 5) {
        return false;
    }
    let counts = [m.qdcount, m.ancount, m.nscount, m.arcount];
    if port_hint {
        m.qdcount <= 16 && (m.qdcount > 0 || m.is_response)
    } else {
        m.qdcount == 1
            && counts.iter().all(|&c| c <= DNS_PLAUSIBLE_COUNT_MAX)
            && !m.answers_incomplete
            && (m.is_response || m.ancount == 0)
    }
}
