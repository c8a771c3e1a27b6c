//! Recognisers for VPN tunnels and equipment phone-home protocols, from payload structure.
//!
//! Each function looks at one transport payload (the first bytes of a datagram or of a TCP
//! stream direction) and says whether it has the protocol's structure. They read at most a fixed
//! number of bytes (a BER walk of at most [`SNMP_HEADER_FIELDS_MAX`] fields; the CWMP namespace
//! search is bounded by [`CWMP_SEARCH_MAX_BYTES`]), never allocate and never panic.
//!
//! Ports are used only where the protocol has no structure to check on its own; each such place
//! says so and cites the RFC section that assigns the port. What cannot be recognised at all is
//! listed in docs/json-format.md ("Not recognisable").

use super::{be16, be32};

/// IKE's port (RFC 7296 §2: "IKE ... UDP port 500").
pub const IKE_PORT: u16 = 500;
/// The NAT-traversal port shared by IKE and ESP-in-UDP (RFC 3948 §2, RFC 7296 §2.23).
pub const NAT_T_PORT: u16 = 4500;
/// NTP (RFC 5905 §7.2: "UDP port number 123").
pub const NTP_PORT: u16 = 123;
/// CoAP over UDP (RFC 7252 §6.1: default port 5683) and over DTLS (§6.2: 5684).
pub const COAP_PORTS: [u16; 2] = [5683, 5684];
/// NETCONF over SSH (RFC 6242 §3: "the IANA-assigned TCP port 830").
pub const NETCONF_PORT: u16 = 830;
/// NETCONF Call Home over SSH: the device connects out to its manager (RFC 8071 §3.1 and §7,
/// "netconf-ch-ssh", TCP port 4334).
pub const NETCONF_CALL_HOME_PORT: u16 = 4334;
/// TR-069 connection requests from the ACS to the CPE (TR-069 §3.2.2, default port 7547).
pub const CWMP_PORT: u16 = 7547;
/// How far into an HTTP payload the CWMP SOAP namespace is looked for.
pub const CWMP_SEARCH_MAX_BYTES: usize = 4096;
/// BER fields an SNMP check walks, at most.
pub const SNMP_HEADER_FIELDS_MAX: usize = 8;

fn has_port(ports: (u16, u16), port: u16) -> bool {
    ports.0 == port || ports.1 == port
}

// ---- IPsec -----------------------------------------------------------------------------------

/// What an IKE header says about the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeHeader {
    /// 1 or 2.
    pub major: u8,
    pub exchange: u8,
    /// The message's payloads are protected: IKEv2's first payload is Encrypted (46) or
    /// Encrypted Fragment (53) (RFC 7296 §3.14, RFC 7383 §2.5), IKEv1's Encryption flag is set
    /// (RFC 2408 §3.1).
    pub protected: bool,
}

/// The ISAKMP/IKE header (RFC 7296 §3.1, RFC 2408 §3.1), 28 bytes: a non-zero initiator SPI,
/// a known version (1.0 or 2.0), a known exchange type, and a Length field equal to the message.
pub fn ike_header(b: &[u8]) -> Option<IkeHeader> {
    if b.len() < 28 || b.get(..8)? == [0u8; 8] {
        return None;
    }
    let next = *b.get(16)?;
    let version = *b.get(17)?;
    let exchange = *b.get(18)?;
    let flags = *b.get(19)?;
    let length = be32(b, 24)?;
    if usize::try_from(length).ok()? != b.len() {
        return None;
    }
    match version {
        // RFC 2408 §3.1 and RFC 2409 §5: exchange types 0-5 (ISAKMP), 32 Quick Mode, 33 New
        // Group Mode; payload types 0-20 (RFC 2408 §3.1, RFC 3947 NAT-D/NAT-OA 20/21).
        0x10 => (matches!(exchange, 1..=5 | 32 | 33) && next <= 21).then_some(IkeHeader {
            major: 1,
            exchange,
            protected: flags & 0x01 != 0,
        }),
        // RFC 7296 §3.1: 34 IKE_SA_INIT, 35 IKE_AUTH, 36 CREATE_CHILD_SA, 37 INFORMATIONAL;
        // RFC 5723 38 IKE_SESSION_RESUME; RFC 9242 43 IKE_INTERMEDIATE; RFC 9370 44
        // IKE_FOLLOWUP_KE. Payload types 0 or 33-55 (IANA "IKEv2 Payload Types").
        0x20 => (matches!(exchange, 34..=38 | 43 | 44) && (next == 0 || (33..=55).contains(&next)))
            .then_some(IkeHeader {
                major: 2,
                exchange,
                protected: matches!(next, 46 | 53),
            }),
        _ => None,
    }
}

/// An IKE message in a UDP payload: at offset 0, or on the NAT-T port after the four-byte
/// non-ESP marker (RFC 3948 §2.2: "Non-ESP Marker ... 4 zero-valued bytes").
pub fn ike(b: &[u8], ports: (u16, u16)) -> Option<IkeHeader> {
    if has_port(ports, NAT_T_PORT) && b.get(..4) == Some(&[0u8; 4]) {
        return ike_header(b.get(4..)?);
    }
    ike_header(b)
}

/// The stream prefix of IKE and ESP over TCP (RFC 9329 §3.1: "IKETCP", sent once by the
/// initiator).
pub const IKE_TCP_PREFIX: &[u8] = b"IKETCP";

/// IKE over TCP (RFC 9329 §3): after the optional stream prefix, frames of a two-byte length
/// (counting itself) holding a non-ESP marker and an IKE message, or an ESP packet. Returns
/// whether the first frame is protected (a protected IKE message or ESP); `None` when the
/// payload is not such a stream. Without the prefix the first frame must be an IKE message whose
/// length matches both the frame and the IKE header.
pub fn ike_tcp(b: &[u8]) -> Option<bool> {
    let (prefixed, b) = match b.strip_prefix(IKE_TCP_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    if prefixed && b.is_empty() {
        return Some(false);
    }
    let len = usize::from(be16(b, 0)?);
    let frame = b.get(2..len)?;
    if frame.get(..4) == Some(&[0u8; 4]) {
        return ike_header(frame.get(4..)?).map(|h| h.protected);
    }
    // ESP (RFC 4303 §2): only after the prefix, or later in the stream.
    (prefixed && frame.len() >= 16 && be32(frame, 0).is_some_and(|spi| spi >= 256)).then_some(true)
}

/// ESP in UDP (RFC 3948 §2.1): the SPI and sequence number of an ESP header (RFC 4303 §2)
/// directly after the UDP header. ESP is opaque past those 8 bytes, so the NAT-T port 4500 is
/// required (RFC 3948 §2: the port IKE negotiated for encapsulation, RFC 7296 §2.23). The SPI is
/// at least 256 (RFC 4303 §2.1: 1-255 are reserved; 0 is the non-ESP marker) and the sequence
/// number non-zero (§2.2: the first packet carries 1). At least one more 8 bytes must follow
/// (IV, payload, ICV).
pub fn esp_in_udp(b: &[u8], ports: (u16, u16)) -> bool {
    has_port(ports, NAT_T_PORT)
        && b.len() >= 16
        && be32(b, 0).is_some_and(|spi| spi >= 256)
        && be32(b, 4).is_some_and(|seq| seq != 0)
}

// ---- WireGuard ------------------------------------------------------------------------------

/// WireGuard (whitepaper §5.4): a message type 1-4 followed by three zero reserved bytes, and the
/// size each type has: handshake initiation 148, response 92, cookie reply 64, transport data at
/// least 32 (16-byte header and 16-byte tag) and a multiple of 16 (plaintext padded to 16).
pub fn wireguard(b: &[u8]) -> bool {
    let (Some(&t), Some(reserved)) = (b.first(), b.get(1..4)) else {
        return false;
    };
    if reserved != [0, 0, 0] {
        return false;
    }
    match t {
        1 => b.len() == 148,
        2 => b.len() == 92,
        3 => b.len() == 64,
        4 => b.len() >= 32 && b.len().is_multiple_of(16),
        _ => false,
    }
}

// ---- OpenVPN --------------------------------------------------------------------------------

/// OpenVPN's hard-reset opcodes (openvpn `ssl_pkt.h`): P_CONTROL_HARD_RESET_CLIENT_V1 (1),
/// _SERVER_V1 (2), _CLIENT_V2 (7), _SERVER_V2 (8), _CLIENT_V3 (10).
fn openvpn_reset_opcode(op: u8) -> Option<bool> {
    match op {
        1 | 7 | 10 => Some(true),
        2 | 8 => Some(false),
        _ => None,
    }
}

/// HMAC sizes a `tls-auth` key may add after the session id: MD5, SHA-1, SHA-256, SHA-384,
/// SHA-512.
const OPENVPN_HMAC_SIZES: [usize; 5] = [16, 20, 32, 48, 64];
/// Acknowledgements one control packet may carry (openvpn `reliable.h`, RELIABLE_ACK_SIZE).
const OPENVPN_ACKS_MAX: u8 = 8;

/// The control part after the session id (and the `tls-auth` block, if any): the ACK array,
/// the remote session id when it acknowledges something, and message packet id 0 (a hard reset
/// is the first control message). A client reset acknowledges nothing, a server reset at least
/// the client's.
fn openvpn_control(b: &[u8], at: usize, client: bool) -> bool {
    let Some(&acks) = b.get(at) else {
        return false;
    };
    if acks > OPENVPN_ACKS_MAX || client != (acks == 0) {
        return false;
    }
    let mut end = at + 1 + 4 * usize::from(acks);
    if acks > 0 {
        end += 8;
    }
    be32(b, end) == Some(0) && b.len() == end + 4
}

/// One OpenVPN packet (UDP, or TCP without its length prefix): a hard-reset opcode with key id
/// 0, a non-zero session id, then the control fields in the plain layout, after a `tls-auth`
/// HMAC, packet id and time, or encrypted by `tls-crypt` (recognised by their sizes).
pub fn openvpn_packet(b: &[u8]) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    let Some(client) = openvpn_reset_opcode(first >> 3) else {
        return false;
    };
    // CLIENT_V3 exists only with tls-crypt-v2.
    let v3 = first >> 3 == 10;
    if first & 0x07 != 0 || b.len() < 14 || b.get(1..9) == Some(&[0u8; 8]) {
        return false;
    }
    if v3 {
        return openvpn_tls_crypt(b, client, true);
    }
    if openvpn_control(b, 9, client) {
        return true;
    }
    // tls-auth: HMAC, then a replay packet id (starts at 1) and a time, both non-zero.
    if OPENVPN_HMAC_SIZES.iter().any(|&h| {
        be32(b, 9 + h).is_some_and(|id| id != 0)
            && be32(b, 13 + h).is_some_and(|t| t != 0)
            && openvpn_control(b, 17 + h, client)
    }) {
        return true;
    }
    openvpn_tls_crypt(b, client, false)
}

/// `tls-crypt` (openvpn `tls_crypt.h`): after the session id a replay packet id (small: it
/// starts at 1), a non-zero time, a 32-byte tag, then the control fields encrypted, which keep
/// their plain sizes. So the packet's length must be one a plain reset could have: a client
/// reset with no ACK (5 bytes of control), a server reset with one to eight. `tls-crypt-v2`
/// client resets (opcode 10) carry their wrapped client key (WKc) after that, whose last two
/// bytes give its own length (openvpn `tls_crypt.h`, "WKc = ... || len").
fn openvpn_tls_crypt(b: &[u8], client: bool, v3: bool) -> bool {
    const HEAD: usize = 1 + 8 + 4 + 4 + 32;
    let fits = |acks: usize| {
        let control = 1 + 4 * acks + if acks > 0 { 8 } else { 0 } + 4;
        if !v3 {
            return b.len() == HEAD + control;
        }
        let wkc = b.len().saturating_sub(HEAD + control);
        wkc > 2
            && b.len()
                .checked_sub(2)
                .and_then(|at| be16(b, at))
                .is_some_and(|l| usize::from(l) == wkc)
    };
    be32(b, 9).is_some_and(|id| (1..0x0100_0000).contains(&id))
        && be32(b, 13).is_some_and(|t| t != 0)
        && if client {
            fits(0)
        } else {
            (1..=usize::from(OPENVPN_ACKS_MAX)).any(fits)
        }
}

/// OpenVPN over UDP, or over TCP with its two-byte packet length (openvpn `socket.h`, "packet
/// length prefix"): the first packet must fit in the segment.
pub fn openvpn(b: &[u8], tcp: bool) -> bool {
    if !tcp {
        return openvpn_packet(b);
    }
    let Some(len) = be16(b, 0).map(usize::from) else {
        return false;
    };
    b.get(2..2 + len).is_some_and(openvpn_packet)
}

// ---- TLS-based VPNs seen in the clear -------------------------------------------------------

/// SSTP's HTTP request (MS-SSTP §2.2.2/§3.2.4.1: method `SSTP_DUPLEX_POST` to
/// `/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/`). It travels inside TLS, so it is seen only
/// where TLS was taken off (a TLS-terminating proxy's inner leg, a decrypted capture).
pub fn sstp(b: &[u8]) -> bool {
    b.starts_with(b"SSTP_DUPLEX_POST /sra_")
}

/// Cisco AnyConnect / OpenConnect's tunnel request, `CONNECT /CSCOSSLC/tunnel`: like SSTP,
/// visible only when TLS was taken off.
pub fn anyconnect(b: &[u8]) -> bool {
    b.starts_with(b"CONNECT /CSCOSSLC/tunnel")
}

// ---- Equipment protocols -----------------------------------------------------------------

/// NTP (RFC 5905 §7.3). The header has no magic: LI, version and mode share one byte and every
/// other field may be zero. So the port breaks the tie: UDP port 123 on either side (§7.2);
/// then version 1-4, a mode other than 0 (reserved) and 7 (private, the `ntpdc` control
/// protocol of older servers, which has a different layout), and at least the 48-byte header.
pub fn ntp(b: &[u8], ports: (u16, u16)) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    let version = (first >> 3) & 0x07;
    let mode = first & 0x07;
    has_port(ports, NTP_PORT) && (1..=4).contains(&version) && (1..=6).contains(&mode) && {
        // Mode 6 (control, RFC 9327) has a 12-byte header; the others the 48-byte one.
        if mode == 6 {
            b.len() >= 12
        } else {
            b.len() >= 48
        }
    }
}

/// The syslog `<PRI>` (RFC 5424 §6.2.1, RFC 3164 §4.1.1): `<`, one to three digits without a
/// leading zero (but `<0>`), a value 0-191, `>`; then the header, printable (VERSION "1 " of RFC
/// 5424 §6.2.2 or a BSD timestamp). Over TCP, RFC 6587 §3.4.1 octet counting may come first:
/// `MSG-LEN SP`. The structure is strong enough to need no port (UDP 514, RFC 5426 §3.3).
pub fn syslog(b: &[u8], tcp: bool) -> bool {
    let b = if tcp {
        let digits = b.iter().take(6).take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && b.get(digits) == Some(&b' ') && b.first() != Some(&b'0') {
            b.get(digits + 1..).unwrap_or_default()
        } else {
            b
        }
    } else {
        b
    };
    if b.first() != Some(&b'<') {
        return false;
    }
    let digits = b
        .iter()
        .skip(1)
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || b.get(1 + digits) != Some(&b'>') {
        return false;
    }
    let pri = b.get(1..1 + digits).unwrap_or_default();
    if pri.len() > 1 && pri.first() == Some(&b'0') {
        return false;
    }
    let value = pri
        .iter()
        .fold(0u32, |v, d| v * 10 + u32::from(d.saturating_sub(b'0')));
    if value > 191 {
        return false;
    }
    // At least four header bytes, all printable ASCII (a space included).
    let header = b.get(2 + digits..).unwrap_or_default();
    header.len() >= 4 && header.iter().take(8).all(|&c| (0x20..=0x7e).contains(&c))
}

/// A BER length (X.690 §8.1.3): short form, or long form with one or two length bytes. Returns
/// (length, bytes used).
fn ber_len(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *b.get(at)?;
    match first {
        0x00..=0x7f => Some((usize::from(first), 1)),
        0x81 => Some((usize::from(*b.get(at + 1)?), 2)),
        0x82 => Some((usize::from(be16(b, at + 1)?), 3)),
        _ => None,
    }
}

/// One BER TLV at `at` with tag `tag`: (content start, content end).
fn ber_tlv(b: &[u8], at: usize, tag: u8) -> Option<(usize, usize)> {
    if *b.get(at)? != tag {
        return None;
    }
    let (len, used) = ber_len(b, at + 1)?;
    let start = at + 1 + used;
    let end = start.checked_add(len)?;
    (end <= b.len()).then_some((start, end))
}

/// What an SNMP message check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnmpMessage {
    /// 0 (v1), 1 (v2c) or 3.
    pub version: u8,
    /// The PDU tag (0xa0-0xa8) for v1/v2c and v3 without privacy; `None` when encrypted.
    pub pdu: Option<u8>,
    /// SNMPv3 with the privacy flag (RFC 3412 §6.4 msgFlags privFlag): the PDU is encrypted.
    pub private: bool,
}

/// SNMP (RFC 3416 §3 PDUs, RFC 1157 §4 and RFC 3412 §6 messages): a BER SEQUENCE covering the
/// datagram, INTEGER version 0, 1 or 3; for v1/v2c an OCTET STRING community and a PDU tag
/// 0xa0-0xa8 (get, get-next, response, set, v1 trap, get-bulk, inform, v2 trap, report); for v3
/// the header SEQUENCE (whose msgFlags says privacy), the security parameters OCTET STRING, and
/// a scoped PDU SEQUENCE or an encrypted OCTET STRING.
pub fn snmp(b: &[u8]) -> Option<SnmpMessage> {
    let (start, end) = ber_tlv(b, 0, 0x30)?;
    if end != b.len() {
        return None;
    }
    let (vs, ve) = ber_tlv(b, start, 0x02)?;
    if ve != vs + 1 {
        return None;
    }
    let version = *b.get(vs)?;
    match version {
        0 | 1 => {
            let (_, ce) = ber_tlv(b, ve, 0x04)?;
            let pdu = *b.get(ce)?;
            if !(0xa0..=0xa8).contains(&pdu) {
                return None;
            }
            let (_, pe) = ber_tlv(b, ce, pdu)?;
            (pe == end).then_some(SnmpMessage {
                version,
                pdu: Some(pdu),
                private: false,
            })
        }
        3 => {
            // msgGlobalData: SEQUENCE { msgID INTEGER, msgMaxSize INTEGER, msgFlags OCTET
            // STRING (1), msgSecurityModel INTEGER }.
            let (hs, he) = ber_tlv(b, ve, 0x30)?;
            let (_, id_end) = ber_tlv(b, hs, 0x02)?;
            let (_, max_end) = ber_tlv(b, id_end, 0x02)?;
            let (fs, fe) = ber_tlv(b, max_end, 0x04)?;
            if fe != fs + 1 {
                return None;
            }
            let flags = *b.get(fs)?;
            let (_, model_end) = ber_tlv(b, fe, 0x02)?;
            if model_end != he {
                return None;
            }
            let (_, se) = ber_tlv(b, he, 0x04)?;
            let private = flags & 0x02 != 0;
            let pdu = if private {
                let (_, ee) = ber_tlv(b, se, 0x04)?;
                (ee == end).then_some(None)?
            } else {
                // ScopedPDU: SEQUENCE { contextEngineID, contextName, PDU }.
                let (ss, sse) = ber_tlv(b, se, 0x30)?;
                let (_, eid_end) = ber_tlv(b, ss, 0x04)?;
                let (_, name_end) = ber_tlv(b, eid_end, 0x04)?;
                let pdu = *b.get(name_end)?;
                if !(0xa0..=0xa8).contains(&pdu) || sse != end {
                    return None;
                }
                let (_, pe) = ber_tlv(b, name_end, pdu)?;
                (pe == sse).then_some(Some(pdu))?
            };
            Some(SnmpMessage {
                version,
                pdu,
                private,
            })
        }
        _ => None,
    }
}

/// NETCONF over SSH: the content is SSH (`SSH-` identification, RFC 4253 §4.2); only the port
/// tells NETCONF (RFC 6242 §3, TCP 830; Call Home, RFC 8071 §3.1, TCP 4334).
pub fn netconf(b: &[u8], ports: (u16, u16)) -> bool {
    (has_port(ports, NETCONF_PORT) || has_port(ports, NETCONF_CALL_HOME_PORT))
        && b.starts_with(b"SSH-")
}

/// The CWMP SOAP namespace prefix (TR-069 Annex A: "urn:dslforum-org:cwmp-1-0" ... "-1-4").
const CWMP_NAMESPACE: &[u8] = b"urn:dslforum-org:cwmp-";

/// TR-069/CWMP: an HTTP payload carrying the CWMP SOAP namespace in its first
/// [`CWMP_SEARCH_MAX_BYTES`], or HTTP to or from the CPE's connection-request port 7547 (TR-069
/// §3.2.2: the request has no body to look at, so the port decides).
pub fn cwmp(b: &[u8], ports: (u16, u16)) -> bool {
    has_port(ports, CWMP_PORT) || cwmp_namespace(b)
}

/// Where the namespace has its first `:` ("urn:"): a byte without case, so a plain byte search
/// finds every place an occurrence (in any case) can start.
const CWMP_NAMESPACE_COLON: usize = 3;

/// Whether the CWMP namespace appears, ASCII case ignored, in the first
/// [`CWMP_SEARCH_MAX_BYTES`] of `b`.
///
/// Every occurrence has a `:` at [`CWMP_NAMESPACE_COLON`]; only the windows around the colons
/// `memchr` finds are compared (payloads are mostly bodies without any), instead of every
/// window of the head.
pub fn cwmp_namespace(b: &[u8]) -> bool {
    let head = b.get(..CWMP_SEARCH_MAX_BYTES).unwrap_or(b);
    memchr::memchr_iter(b':', head).any(|colon| {
        colon
            .checked_sub(CWMP_NAMESPACE_COLON)
            .and_then(|start| head.get(start..start + CWMP_NAMESPACE.len()))
            .is_some_and(|w| w.eq_ignore_ascii_case(CWMP_NAMESPACE))
    })
}

/// MQTT CONNECT (MQTT 3.1.1 §3.1, MQTT 5 §3.1): fixed header 0x10, a remaining length of one to
/// four bytes (§2.2.3) covering at least the variable header, then the protocol name "MQTT"
/// with level 4 or 5, or "MQIsdp" (MQTT 3.1) with level 3, and valid connect flags.
pub fn mqtt(b: &[u8]) -> bool {
    if b.first() != Some(&0x10) {
        return false;
    }
    let mut remaining = 0usize;
    let mut at = 1;
    loop {
        let Some(&byte) = b.get(at) else {
            return false;
        };
        remaining |= usize::from(byte & 0x7f) << (7 * (at - 1));
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return false;
        }
    }
    let body = b.get(at..).unwrap_or_default();
    // The variable header in full: name, level, connect flags (reserved bit 0 clear, §3.1.2.3)
    // and keep-alive.
    let named = |name: &[u8], levels: &[u8]| {
        let var = 2 + name.len() + 4;
        body.len() >= var
            && remaining >= var
            && be16(body, 0) == u16::try_from(name.len()).ok()
            && body.get(2..2 + name.len()) == Some(name)
            && body.get(2 + name.len()).is_some_and(|l| levels.contains(l))
            && body.get(3 + name.len()).is_some_and(|f| f & 0x01 == 0)
    };
    named(b"MQTT", &[4, 5]) || named(b"MQIsdp", &[3])
}

/// CoAP (RFC 7252 §3): a four-byte header with version 1, a token length 0-8 (§3: 9-15 are
/// reserved), a code of class 0 (method 0.00-0.07), 2, 4 or 5 (responses, §12.1), and room for
/// the token. The header is too small to tell CoAP from other bytes, so the port breaks the tie:
/// 5683 or 5684 on either side (RFC 7252 §6.1, §6.2; 5684 normally carries DTLS, which is
/// recognised first as `dtls`).
pub fn coap(b: &[u8], ports: (u16, u16)) -> bool {
    let (Some(&first), Some(&code)) = (b.first(), b.get(1)) else {
        return false;
    };
    let tkl = usize::from(first & 0x0f);
    let class = code >> 5;
    let detail = code & 0x1f;
    COAP_PORTS.iter().any(|&p| has_port(ports, p))
        && first >> 6 == 1
        && tkl <= 8
        && b.len() >= 4 + tkl
        && match class {
            0 => detail <= 7,
            2 | 4 | 5 => true,
            _ => false,
        }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
