//! Payloads of the VPN and equipment protocols `names::proto` recognises, built field by field
//! after their specifications, for tests and examples. Each returns the transport payload (what
//! follows the UDP or TCP header). Random-looking fields (SPIs, keys, ciphertext) are filled
//! from a fixed pattern so that output is reproducible.

/// Deterministic filler bytes standing in for keys, nonces and ciphertext.
pub fn filler(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_be_bytes()[0]
        })
        .collect()
}

/// An IKE header (RFC 7296 §3.1) with `body` after it and the Length field set.
pub fn ike_message(
    version: u8,
    exchange: u8,
    next_payload: u8,
    flags: u8,
    responder: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(28 + body.len());
    m.extend_from_slice(&[0xa8, 0x88, 0x75, 0xa8, 0x19, 0x89, 0x92, 0xa6]); // initiator SPI
    if responder {
        m.extend_from_slice(&[0x6a, 0x1f, 0x02, 0x3c, 0x55, 0x11, 0x90, 0x0e]);
    } else {
        m.extend_from_slice(&[0; 8]);
    }
    m.extend_from_slice(&[next_payload, version, exchange, flags]);
    m.extend_from_slice(&[0, 0, 0, if exchange == 34 { 0 } else { 1 }]); // message id
    let len = u32::try_from(28 + body.len()).unwrap_or(u32::MAX);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// IKEv2 IKE_SA_INIT request: SA (33), KE (34) and Nonce (40) payloads, each with the generic
/// payload header (RFC 7296 §3.2).
pub fn ike_sa_init(responder: bool) -> Vec<u8> {
    let mut body = Vec::new();
    // SA payload: next KE, one proposal (contents abbreviated to filler of the right length).
    let sa = filler(44, 1);
    body.extend_from_slice(&[34, 0]);
    body.extend_from_slice(&u16::try_from(4 + sa.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&sa);
    // KE payload: next Nonce, DH group 14 (2048-bit MODP): 256 bytes.
    let ke = filler(256, 2);
    body.extend_from_slice(&[40, 0]);
    body.extend_from_slice(&u16::try_from(8 + ke.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&[0, 14, 0, 0]);
    body.extend_from_slice(&ke);
    // Nonce payload: last.
    let nonce = filler(32, 3);
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&u16::try_from(4 + nonce.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&nonce);
    let flags = if responder { 0x20 } else { 0x08 }; // Response / Initiator
    ike_message(0x20, 34, 33, flags, responder, &body)
}

/// IKEv2 IKE_AUTH: one Encrypted payload (46) of `len` bytes (RFC 7296 §3.14).
pub fn ike_auth(responder: bool, len: usize) -> Vec<u8> {
    let sk = filler(len, 4);
    let mut body = vec![35, 0];
    body.extend_from_slice(&u16::try_from(4 + sk.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&sk);
    let flags = if responder { 0x20 } else { 0x08 };
    ike_message(0x20, 35, 46, flags, true, &body)
}

/// The four zero bytes that mark IKE on the NAT-T port (RFC 3948 §2.2).
pub fn non_esp_marker(ike: &[u8]) -> Vec<u8> {
    let mut m = vec![0; 4];
    m.extend_from_slice(ike);
    m
}

/// An ESP packet (RFC 4303 §2): SPI, sequence number, then `len` bytes of ciphertext.
pub fn esp(spi: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut m = spi.to_be_bytes().to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&filler(len, 5));
    m
}

/// WireGuard handshake initiation (type 1, 148 bytes), response (type 2, 92 bytes), or
/// transport data (type 4) carrying `data_len` bytes of plaintext padded to 16 plus the tag.
pub fn wireguard(message_type: u8, data_len: usize) -> Vec<u8> {
    let len = match message_type {
        1 => 148,
        2 => 92,
        3 => 64,
        _ => 16 + data_len.div_ceil(16) * 16 + 16,
    };
    let mut m = vec![message_type, 0, 0, 0];
    m.extend_from_slice(&filler(len - 4, message_type));
    m
}

/// OpenVPN hard reset (opcode 7 client, 8 server, key id 0) in the plain layout: session id,
/// ACK array (the server's acknowledges the client's packet 0, with the client's session id),
/// message packet id 0.
pub fn openvpn_hard_reset(server: bool) -> Vec<u8> {
    let client_sid = [0x33, 0x48, 0x57, 0x70, 0x3d, 0x96, 0xdb, 0x39];
    let server_sid = [0xd3, 0x1c, 0x3a, 0x69, 0x64, 0x60, 0x2f, 0xa0];
    let mut m = Vec::new();
    if server {
        m.push(8 << 3);
        m.extend_from_slice(&server_sid);
        m.push(1);
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&client_sid);
    } else {
        m.push(7 << 3);
        m.extend_from_slice(&client_sid);
        m.push(0);
    }
    m.extend_from_slice(&[0, 0, 0, 0]);
    m
}

/// An OpenVPN packet framed for TCP: its two-byte length first.
pub fn openvpn_tcp(packet: &[u8]) -> Vec<u8> {
    let mut m = u16::try_from(packet.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec();
    m.extend_from_slice(packet);
    m
}

/// An NTPv4 client request (RFC 5905 §7.3): LI 0, version 4, mode 3, 48 bytes.
pub fn ntp_client() -> Vec<u8> {
    let mut m = vec![0x23, 0, 6, 0xe9];
    m.extend_from_slice(&[0; 36]);
    m.extend_from_slice(&[0xe9, 0x4c, 0x2a, 0x10, 0x12, 0x34, 0x56, 0x78]); // transmit time
    m
}

/// An RFC 5424 syslog message.
pub fn syslog(pri: u8, msg: &str) -> Vec<u8> {
    format!("<{pri}>1 2026-01-15T10:00:00.000Z bs-01 enodeb 1234 ALARM - {msg}").into_bytes()
}

fn ber(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    match content.len() {
        n @ 0..=0x7f => m.push(u8::try_from(n).unwrap_or(0)),
        n @ 0x80..=0xff => m.extend_from_slice(&[0x81, u8::try_from(n).unwrap_or(0)]),
        n => {
            m.push(0x82);
            m.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
        }
    }
    m.extend_from_slice(content);
    m
}

/// A varbind list with one binding: sysUpTime.0 (1.3.6.1.2.1.1.3.0) = TimeTicks.
fn varbinds() -> Vec<u8> {
    let oid = ber(0x06, &[0x2b, 6, 1, 2, 1, 1, 3, 0]);
    let value = ber(0x43, &[0x01, 0x02, 0x03]);
    ber(0x30, &ber(0x30, &[oid, value].concat()))
}

/// An SNMPv1/v2c message (`version` 0 or 1) with PDU `pdu` (0xa0 get, 0xa6 inform, 0xa7 trap,
/// ...) and community `community` (RFC 3416 §3, RFC 1157 §4).
pub fn snmp_v2c(version: u8, community: &str, pdu: u8) -> Vec<u8> {
    let body = [
        ber(0x02, &[0x12, 0x34]), // request-id
        ber(0x02, &[0]),          // error-status
        ber(0x02, &[0]),          // error-index
        varbinds(),
    ]
    .concat();
    let msg = [
        ber(0x02, &[version]),
        ber(0x04, community.as_bytes()),
        ber(pdu, &body),
    ]
    .concat();
    ber(0x30, &msg)
}

/// An SNMPv3 message (RFC 3412 §6): with `private`, the scoped PDU is an encrypted OCTET
/// STRING; otherwise a plaintext scoped PDU with PDU `pdu`.
pub fn snmp_v3(private: bool, pdu: u8) -> Vec<u8> {
    let flags = if private { 0x07 } else { 0x05 }; // reportable | auth (| priv)
    let header = ber(
        0x30,
        &[
            ber(0x02, &[0x11, 0x22]),
            ber(0x02, &[0x05, 0xdc]),
            ber(0x04, &[flags]),
            ber(0x02, &[3]), // USM
        ]
        .concat(),
    );
    let usm = ber(0x04, &ber(0x30, &filler(40, 6)));
    let data = if private {
        ber(0x04, &filler(64, 7))
    } else {
        let pdu_body = [
            ber(0x02, &[0x12, 0x34]),
            ber(0x02, &[0]),
            ber(0x02, &[0]),
            varbinds(),
        ]
        .concat();
        ber(
            0x30,
            &[
                ber(0x04, &filler(12, 8)),
                ber(0x04, b""),
                ber(pdu, &pdu_body),
            ]
            .concat(),
        )
    };
    ber(0x30, &[ber(0x02, &[3]), header, usm, data].concat())
}

/// An MQTT CONNECT (MQTT 3.1.1 §3.1, level 4) with a client id.
pub fn mqtt_connect(client_id: &str) -> Vec<u8> {
    let mut var = vec![0, 4];
    var.extend_from_slice(b"MQTT");
    var.extend_from_slice(&[4, 0x02, 0, 60]); // level, clean session, keep alive 60 s
    var.extend_from_slice(&u16::try_from(client_id.len()).unwrap_or(0).to_be_bytes());
    var.extend_from_slice(client_id.as_bytes());
    let mut m = vec![0x10, u8::try_from(var.len()).unwrap_or(0x7f)];
    m.extend_from_slice(&var);
    m
}

/// A CoAP confirmable POST (RFC 7252 §3) with a 4-byte token and a Uri-Path option.
pub fn coap_post(path: &str) -> Vec<u8> {
    let mut m = vec![0x44, 0x02, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef];
    // Option 11 (Uri-Path), delta 11, length < 13.
    m.push(0xb0 | u8::try_from(path.len().min(12)).unwrap_or(0));
    m.extend_from_slice(
        path.as_bytes()
            .get(..path.len().min(12))
            .unwrap_or_default(),
    );
    m.push(0xff);
    m.extend_from_slice(b"{\"temp\":21.5}");
    m
}

/// A TR-069 Inform: an HTTP POST carrying the CWMP SOAP envelope.
pub fn cwmp_inform(host: &str) -> Vec<u8> {
    let body = "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
                xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Body><cwmp:Inform>\
                <DeviceId><Manufacturer>Lab</Manufacturer></DeviceId></cwmp:Inform>\
                </soap-env:Body></soap-env:Envelope>";
    format!(
        "POST /acs HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=utf-8\r\n\
         SOAPAction: \"\"\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
