//! QUIC Initial packets: the client's ClientHello (SNI, ALPN, TLS version) read from the
//! Initial packets of QUIC version 1 (RFC 9000, RFC 9001) and version 2 (RFC 9369).
//!
//! Initial packets are encrypted, but with keys anyone can derive from the Destination
//! Connection ID in the clear (RFC 9001 §5.2), so a passive observer can read them. Per flow,
//! client → server, a [`QuicInitialAssembler`] takes each UDP datagram, walks its coalesced
//! long-header packets (RFC 9000 §12.2), removes header protection (RFC 9001 §5.4) and packet
//! protection (RFC 9001 §5.3) from every client Initial, collects the CRYPTO frames (RFC 9000
//! §19.6) by offset — a ClientHello with a post-quantum key share spans two or more Initials,
//! and clients send the pieces out of order — and parses the first handshake message with
//! [`tls::parse_client_hello_message`] once it is complete.
//!
//! Guarantees: no panic on any input; per flow at most [`QUIC_INITIALS_MAX`] Initial packets
//! are decrypted (twice at most each), at most [`QUIC_PACKETS_PER_DATAGRAM_MAX`] packet headers
//! read per datagram, and at most [`QUIC_CRYPTO_MAX_BYTES`] of handshake data held. A packet
//! that fails to decrypt or parse is counted in [`QuicInitialStats`] and skipped. The
//! cryptography is RustCrypto's (`aes`, `aes-gcm`, `hkdf`, `sha2`); nothing here is hand-rolled.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::be32;
use super::tls::{self, ClientHello, TlsError};

/// Largest handshake data, from CRYPTO offset 0, collected per flow: the ClientHello message
/// with its 4-byte header must fit (RFC 8446 allows 2^24 - 1 bytes; real ones stay below
/// 2 KiB even with post-quantum key shares). Same bound as [`tls::TLS_HELLO_MAX_BYTES`].
pub const QUIC_CRYPTO_MAX_BYTES: usize = 16 * 1024;
/// Client Initial packets examined per flow (decrypted, or found in an unsupported version)
/// before the assembler gives up. A ClientHello takes one to three Initials; retransmissions
/// and ACK-only Initials add a few.
pub const QUIC_INITIALS_MAX: u32 = 8;
/// Coalesced packets read per datagram (RFC 9000 §12.2). A client coalesces at most an
/// Initial, a 0-RTT and a Handshake packet.
pub const QUIC_PACKETS_PER_DATAGRAM_MAX: usize = 8;
/// Disjoint pieces of handshake data held while waiting for the gaps between them. A CRYPTO
/// frame that would open one more is dropped and counted.
pub const QUIC_CRYPTO_RANGES_MAX: usize = 64;

/// QUIC version 1 (RFC 9000 §15: "0x00000001").
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369 §3.1: "The Version field of long headers is 0x6b3343cf").
pub const QUIC_V2: u32 = 0x6b33_43cf;

/// RFC 9001 §5.2: `initial_salt = 0x38762cf7f55934b34d179ae6a4c80cadccbb7f0a`.
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 §3.3.1: "The salt used to derive Initial keys ... changes to:
/// `initial_salt = 0x0dede3def700a6db819381be6e269dcbf9bd2ed9`".
const INITIAL_SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// RFC 9001 §5.2: `client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "",
/// Hash.length)`; unchanged in version 2 (RFC 9369 §3.3.2 changes only the labels below).
const LABEL_CLIENT_IN: &[u8] = b"client in";
/// RFC 9001 §5.1: packet protection key, IV and header protection key labels.
const LABEL_KEY_V1: &[u8] = b"quic key";
const LABEL_IV_V1: &[u8] = b"quic iv";
const LABEL_HP_V1: &[u8] = b"quic hp";
/// RFC 9369 §3.3.2: "The labels ... change from "quic key" to "quicv2 key", from "quic iv" to
/// "quicv2 iv", from "quic hp" to "quicv2 hp"".
const LABEL_KEY_V2: &[u8] = b"quicv2 key";
const LABEL_IV_V2: &[u8] = b"quicv2 iv";
const LABEL_HP_V2: &[u8] = b"quicv2 hp";
/// RFC 8446 §7.1: `opaque label<7..255> = "tls13 " + Label`.
const TLS13_LABEL_PREFIX: &[u8] = b"tls13 ";

/// Length of the SHA-256 output, the hash of AEAD_AES_128_GCM's suite (RFC 9001 §5.2: Initial
/// packets use TLS_AES_128_GCM_SHA256).
const HASH_LEN: usize = 32;
/// AEAD_AES_128_GCM key, nonce and tag lengths (RFC 5116 §5.1: K_LEN 16, N_MIN = N_MAX 12,
/// tag 16 octets).
const AEAD_KEY_LEN: usize = 16;
const AEAD_NONCE_LEN: usize = 12;
const AEAD_TAG_LEN: usize = 16;
/// Header protection key length for AES-128 (RFC 9001 §5.4.3).
const HP_KEY_LEN: usize = 16;
/// RFC 9001 §5.4.2: "the sample ... is 16 bytes", taken "as if the Packet Number field is 4
/// bytes long", i.e. 4 bytes after the start of the Packet Number field.
const HP_SAMPLE_LEN: usize = 16;
const HP_SAMPLE_OFFSET: usize = 4;

/// RFC 9000 §17.2: "Header Form: The most significant bit (0x80) of byte 0 ... set to 1 for
/// long headers".
const LONG_HEADER_FORM: u8 = 0x80;
/// RFC 9000 §17.2: Long Packet Type in bits 0x30 of byte 0.
const LONG_PACKET_TYPE_SHIFT: u8 = 4;
/// RFC 9001 §5.4.1: for long headers, header protection masks "the four least significant
/// bits" of byte 0 (Reserved Bits and Packet Number Length).
const LONG_HEADER_PROTECTED_BITS: u8 = 0x0f;
/// RFC 9000 §17.2: Packet Number Length in the two low bits of byte 0, encoded as length - 1.
const PN_LENGTH_BITS: u8 = 0x03;
/// RFC 9000 §17.2: "In QUIC version 1, this value MUST NOT exceed 20 bytes" (connection ID
/// lengths); RFC 9369 keeps it.
const CONN_ID_MAX: usize = 20;
/// RFC 9000 §16: variable-length integers carry at most 62 bits, so "the largest offset
/// delivered on a stream ... cannot exceed 2^62-1" (§19.6).
const VARINT_MAX: u64 = (1 << 62) - 1;

/// Frame types allowed in Initial packets (RFC 9000 §12.4, Table 3: PADDING, PING, ACK, CRYPTO,
/// CONNECTION_CLOSE), with their values from RFC 9000 §19.
const FRAME_PADDING: u8 = 0x00;
const FRAME_PING: u8 = 0x01;
const FRAME_ACK: u8 = 0x02;
const FRAME_ACK_ECN: u8 = 0x03;
const FRAME_CRYPTO: u8 = 0x06;
const FRAME_CONNECTION_CLOSE: u8 = 0x1c;
const FRAME_CONNECTION_CLOSE_APP: u8 = 0x1d;

/// Why a packet or a flow gave no ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// The flow's first datagram does not start with a long-header packet: no Initial to read
    /// (a capture that began after the handshake).
    #[error("no QUIC Initial packet")]
    NotInitial,
    /// A long header of a version whose Initial protection is not known here (only 1 and 2 are).
    #[error("QUIC version {0:#010x} not supported")]
    UnsupportedVersion(u32),
    /// Packet protection did not authenticate: wrong keys (a packet of another connection, or
    /// keys from a DCID not seen) or damaged bytes.
    #[error("QUIC Initial did not decrypt")]
    Decrypt,
    #[error("QUIC packet malformed: {0}")]
    Malformed(&'static str),
    /// The handshake message announces more than [`QUIC_CRYPTO_MAX_BYTES`].
    #[error("QUIC ClientHello larger than {QUIC_CRYPTO_MAX_BYTES} bytes")]
    TooLarge,
    /// [`QUIC_INITIALS_MAX`] Initial packets were examined without a complete ClientHello.
    #[error("no complete ClientHello in {QUIC_INITIALS_MAX} QUIC Initial packets")]
    TooManyInitials,
    /// The client sent short-header (1-RTT) packets before its ClientHello was complete here:
    /// the missing pieces were not captured.
    #[error("QUIC handshake moved on before the ClientHello was complete")]
    Incomplete,
    /// The reassembled handshake message is not a readable ClientHello.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The QUIC versions whose Initial packets can be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuicVersion {
    V1,
    V2,
}

/// Long header packet types, by meaning (their bits differ between versions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

impl QuicVersion {
    /// The version of a long header's Version field, if supported.
    pub fn from_wire(v: u32) -> Option<QuicVersion> {
        match v {
            QUIC_V1 => Some(QuicVersion::V1),
            QUIC_V2 => Some(QuicVersion::V2),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u32 {
        match self {
            QuicVersion::V1 => QUIC_V1,
            QuicVersion::V2 => QUIC_V2,
        }
    }

    fn salt(self) -> &'static [u8] {
        match self {
            QuicVersion::V1 => &INITIAL_SALT_V1,
            QuicVersion::V2 => &INITIAL_SALT_V2,
        }
    }

    /// (key, iv, hp) labels.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            QuicVersion::V1 => [LABEL_KEY_V1, LABEL_IV_V1, LABEL_HP_V1],
            QuicVersion::V2 => [LABEL_KEY_V2, LABEL_IV_V2, LABEL_HP_V2],
        }
    }

    /// The Long Packet Type bits (0..=3). RFC 9000 §17.2 Table 5: Initial 0x00, 0-RTT 0x01,
    /// Handshake 0x02, Retry 0x03. RFC 9369 §3.2: "Initial: 0b01, 0-RTT: 0b10, Handshake: 0b11,
    /// Retry: 0b00".
    fn packet_type(self, bits: u8) -> PacketType {
        match (self, bits & 0x03) {
            (QuicVersion::V1, 0) | (QuicVersion::V2, 1) => PacketType::Initial,
            (QuicVersion::V1, 1) | (QuicVersion::V2, 2) => PacketType::ZeroRtt,
            (QuicVersion::V1, 2) | (QuicVersion::V2, 3) => PacketType::Handshake,
            _ => PacketType::Retry,
        }
    }
}

/// The Version field of a long-header QUIC packet (RFC 8999 §5.1: header form bit set, then a
/// 32-bit version), whichever version it is; `None` for a short header or fewer than 5 bytes.
pub fn quic_version(payload: &[u8]) -> Option<u32> {
    let first = *payload.first()?;
    if first & LONG_HEADER_FORM == 0 {
        return None;
    }
    be32(payload, 1)
}

/// The client's Initial packet protection secrets (RFC 9001 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialKeys {
    /// AEAD_AES_128_GCM key.
    pub key: [u8; AEAD_KEY_LEN],
    pub iv: [u8; AEAD_NONCE_LEN],
    /// AES-128 header protection key.
    pub hp: [u8; HP_KEY_LEN],
}

/// RFC 8446 §7.1 `HKDF-Expand-Label(Secret, Label, "", Length)`: the HkdfLabel is a 16-bit
/// length, the label with its "tls13 " prefix behind a one-byte length, and an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    let bad = QuicError::Malformed("key derivation");
    let len = u16::try_from(out.len()).map_err(|_| bad)?;
    let label_len = u8::try_from(TLS13_LABEL_PREFIX.len() + label.len()).map_err(|_| bad)?;
    prk.expand_multi_info(
        &[
            &len.to_be_bytes(),
            &[label_len],
            TLS13_LABEL_PREFIX,
            label,
            &[0],
        ],
        out,
    )
    .map_err(|_| bad)
}

/// Derives the client's Initial keys from the Destination Connection ID of its first Initial
/// (RFC 9001 §5.2; RFC 9369 §3.3 for version 2).
pub fn client_initial_keys(version: QuicVersion, dcid: &[u8]) -> Result<InitialKeys, QuicError> {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(version.salt()), dcid);
    let mut client_secret = [0u8; HASH_LEN];
    expand_label(&initial, LABEL_CLIENT_IN, &mut client_secret)?;
    let client = Hkdf::<Sha256>::from_prk(&client_secret)
        .map_err(|_| QuicError::Malformed("key derivation"))?;
    let [key_label, iv_label, hp_label] = version.labels();
    let mut keys = InitialKeys {
        key: [0; AEAD_KEY_LEN],
        iv: [0; AEAD_NONCE_LEN],
        hp: [0; HP_KEY_LEN],
    };
    expand_label(&client, key_label, &mut keys.key)?;
    expand_label(&client, iv_label, &mut keys.iv)?;
    expand_label(&client, hp_label, &mut keys.hp)?;
    Ok(keys)
}

/// A cursor over bytes whose reads never panic.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, QuicError> {
        let v = *self.b.get(self.pos).ok_or(QuicError::Malformed(what))?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], QuicError> {
        let n = usize::try_from(n).map_err(|_| QuicError::Malformed(what))?;
        let end = self.pos.checked_add(n).ok_or(QuicError::Malformed(what))?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or(QuicError::Malformed(what))?;
        self.pos = end;
        Ok(s)
    }

    /// A variable-length integer (RFC 9000 §16): the two high bits of the first byte give its
    /// length (1, 2, 4 or 8 bytes), the other 62 bits its value, big-endian.
    fn varint(&mut self, what: &'static str) -> Result<u64, QuicError> {
        let first = *self.b.get(self.pos).ok_or(QuicError::Malformed(what))?;
        let len = 1u64 << (first >> 6);
        let bytes = self.take(len, what)?;
        Ok(bytes
            .iter()
            .skip(1)
            .fold(u64::from(first & 0x3f), |v, &b| (v << 8) | u64::from(b)))
    }
}

/// What a long header says before its protected part.
struct LongHeader<'a> {
    version: QuicVersion,
    ty: PacketType,
    dcid: &'a [u8],
    /// Offset of the Packet Number field from the packet's first byte.
    pn_offset: usize,
    /// Length of the whole packet, header included (the Length field counts from the packet
    /// number on).
    len: usize,
}

/// Reads a long header (RFC 9000 §17.2, §17.2.2 for Initial; RFC 9369 §3.2). Errors end the
/// walk of the datagram: without the Length field the next packet cannot be found.
fn long_header(p: &[u8]) -> Result<LongHeader<'_>, QuicError> {
    let mut r = Cursor::new(p);
    let first = r.u8("header")?;
    let wire = be32(p, 1).ok_or(QuicError::Malformed("version"))?;
    r.take(4, "version")?;
    let version = QuicVersion::from_wire(wire).ok_or(QuicError::UnsupportedVersion(wire))?;
    let dcid_len = r.u8("dcid length")?;
    if usize::from(dcid_len) > CONN_ID_MAX {
        return Err(QuicError::Malformed("dcid longer than 20"));
    }
    let dcid = r.take(u64::from(dcid_len), "dcid")?;
    let scid_len = r.u8("scid length")?;
    if usize::from(scid_len) > CONN_ID_MAX {
        return Err(QuicError::Malformed("scid longer than 20"));
    }
    r.take(u64::from(scid_len), "scid")?;
    let ty = version.packet_type(first >> LONG_PACKET_TYPE_SHIFT);
    match ty {
        // RFC 9000 §17.2.5: a Retry has no Length field, and only servers send it.
        PacketType::Retry => return Err(QuicError::Malformed("Retry packet from a client")),
        PacketType::Initial => {
            let token_len = r.varint("token length")?;
            r.take(token_len, "token")?;
        }
        PacketType::ZeroRtt | PacketType::Handshake => {}
    }
    let length = r.varint("length")?;
    let pn_offset = r.pos;
    let len = usize::try_from(length)
        .ok()
        .and_then(|l| pn_offset.checked_add(l))
        .filter(|&end| end <= p.len())
        .ok_or(QuicError::Malformed("length beyond the datagram"))?;
    Ok(LongHeader {
        version,
        ty,
        dcid,
        pn_offset,
        len,
    })
}

/// The full packet number from its truncated encoding (RFC 9000 §17.1, Appendix A.3): the value
/// closest to one more than the largest packet number processed so far.
fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << (8 * pn_len.clamp(1, 4));
    let hwin = win / 2;
    let candidate = (expected & !(win - 1)) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62).saturating_sub(win) {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Removes header and packet protection from one client Initial (`packet`: its bytes from the
/// first to the last, `pn_offset` as the header says) into `scratch`. Returns the packet number
/// and the plaintext's range in `scratch`.
fn open_initial(
    scratch: &mut Vec<u8>,
    packet: &[u8],
    pn_offset: usize,
    keys: &InitialKeys,
    largest: Option<u64>,
) -> Result<(u64, std::ops::Range<usize>), QuicError> {
    let short = QuicError::Malformed("packet too short for the header protection sample");
    let sample_at = pn_offset + HP_SAMPLE_OFFSET;
    let sample: [u8; HP_SAMPLE_LEN] = packet
        .get(sample_at..sample_at + HP_SAMPLE_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(short)?;
    // RFC 9001 §5.4.3: mask = AES-ECB(hp_key, sample).
    let mut mask = sample.into();
    Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
    let mask: [u8; 16] = mask.into();
    let [m0, m1, m2, m3, m4, ..] = mask;

    scratch.clear();
    scratch.extend_from_slice(packet);
    let first = scratch.first_mut().ok_or(short)?;
    *first ^= m0 & LONG_HEADER_PROTECTED_BITS;
    let pn_len = usize::from(*first & PN_LENGTH_BITS) + 1;
    let pn_end = pn_offset + pn_len;
    let pn_bytes = scratch.get_mut(pn_offset..pn_end).ok_or(short)?;
    let mut truncated = 0u64;
    for (b, m) in pn_bytes.iter_mut().zip([m1, m2, m3, m4]) {
        *b ^= m;
        truncated = (truncated << 8) | u64::from(*b);
    }
    let pn = decode_packet_number(largest, truncated, pn_len);

    // RFC 9001 §5.3: "The 62 bits of the reconstructed QUIC packet number in network byte
    // order are left-padded with zeros to the size of the IV. The exclusive OR of the padded
    // packet number and the IV forms the AEAD nonce." The associated data is the header, "from
    // the first byte ... up to and including the unprotected packet number".
    let mut nonce = keys.iv;
    for (n, p) in nonce
        .iter_mut()
        .skip(AEAD_NONCE_LEN - 8)
        .zip(pn.to_be_bytes())
    {
        *n ^= p;
    }
    let tag_at = scratch
        .len()
        .checked_sub(AEAD_TAG_LEN)
        .filter(|&t| t >= pn_end)
        .ok_or(short)?;
    let (header, rest) = scratch.split_at_mut_checked(pn_end).ok_or(short)?;
    let (body, tag) = rest.split_at_mut_checked(tag_at - pn_end).ok_or(short)?;
    let tag: [u8; AEAD_TAG_LEN] = (&*tag).try_into().map_err(|_| short)?;
    Aes128Gcm::new(&keys.key.into())
        .decrypt_in_place_detached(&Nonce::from(nonce), header, body, &Tag::from(tag))
        .map_err(|_| QuicError::Decrypt)?;
    Ok((pn, pn_end..tag_at))
}

/// Walks the frames of a decrypted Initial payload (RFC 9000 §19) and hands each CRYPTO
/// frame's (offset, data) to `crypto`. Stops at CONNECTION_CLOSE; a frame type not allowed in
/// an Initial (RFC 9000 §12.4: "An endpoint MUST treat receipt of a frame in a packet type that
/// is not permitted as a connection error of type PROTOCOL_VIOLATION") stops it with an error,
/// after the frames before it were handed out.
fn read_frames(payload: &[u8], mut crypto: impl FnMut(u64, &[u8])) -> Result<(), QuicError> {
    let mut r = Cursor::new(payload);
    while r.remaining() > 0 {
        // Every frame type allowed here encodes as one byte (RFC 9000 §12.4: "a frame type
        // MUST use the shortest possible encoding"); a longer varint is not one of them.
        match r.u8("frame type")? {
            FRAME_PADDING | FRAME_PING => {}
            ty @ (FRAME_ACK | FRAME_ACK_ECN) => {
                // RFC 9000 §19.3: Largest Acknowledged, ACK Delay, ACK Range Count, First ACK
                // Range, then (Gap, ACK Range Length) per range, then three ECN counts for 0x03.
                r.varint("ack largest")?;
                r.varint("ack delay")?;
                let ranges = r.varint("ack range count")?;
                r.varint("first ack range")?;
                // Each further range takes at least two bytes: a larger count is a lie, and
                // checking it here bounds the loop by the payload's length.
                if ranges > (r.remaining() / 2) as u64 {
                    return Err(QuicError::Malformed("ack range count"));
                }
                for _ in 0..ranges {
                    r.varint("ack gap")?;
                    r.varint("ack range length")?;
                }
                if ty == FRAME_ACK_ECN {
                    for _ in 0..3 {
                        r.varint("ecn count")?;
                    }
                }
            }
            FRAME_CRYPTO => {
                // RFC 9000 §19.6: Offset, Length, Crypto Data.
                let offset = r.varint("crypto offset")?;
                let len = r.varint("crypto length")?;
                if offset.checked_add(len).is_none_or(|end| end > VARINT_MAX) {
                    return Err(QuicError::Malformed("crypto offset + length beyond 2^62-1"));
                }
                crypto(offset, r.take(len, "crypto data")?);
            }
            FRAME_CONNECTION_CLOSE | FRAME_CONNECTION_CLOSE_APP => return Ok(()),
            _ => {
                return Err(QuicError::Malformed(
                    "frame not allowed in an Initial packet",
                ));
            }
        }
    }
    Ok(())
}

/// The CRYPTO stream from offset 0, filled in whatever order its pieces come: bytes written at
/// their offsets into one buffer of at most [`QUIC_CRYPTO_MAX_BYTES`], with the filled ranges
/// kept sorted, disjoint and merged.
#[derive(Debug, Default)]
struct CryptoStream {
    data: Vec<u8>,
    /// Filled `[start, end)` ranges of `data`, sorted; touching ranges are merged.
    filled: Vec<(usize, usize)>,
}

impl CryptoStream {
    /// Writes a piece; bytes at or beyond `limit` are not needed and ignored. Returns false when
    /// the piece was dropped because it would open a range beyond [`QUIC_CRYPTO_RANGES_MAX`].
    fn insert(&mut self, offset: u64, bytes: &[u8], limit: usize) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return true;
        };
        if start >= limit || bytes.is_empty() {
            return true;
        }
        let end = start.saturating_add(bytes.len()).min(limit);
        let touches = |&(a, b): &(usize, usize)| a <= end && start <= b;
        if self.filled.len() >= QUIC_CRYPTO_RANGES_MAX && !self.filled.iter().any(touches) {
            return false;
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        if let (Some(dst), Some(src)) = (self.data.get_mut(start..end), bytes.get(..end - start)) {
            dst.copy_from_slice(src);
        }
        let (mut s, mut e) = (start, end);
        self.filled.retain(|r| {
            if touches(r) {
                s = s.min(r.0);
                e = e.max(r.1);
                false
            } else {
                true
            }
        });
        let at = self.filled.partition_point(|&(a, _)| a < s);
        self.filled.insert(at, (s, e));
        true
    }

    /// The contiguous bytes from offset 0.
    fn prefix(&self) -> &[u8] {
        match self.filled.first() {
            Some(&(0, end)) => self.data.get(..end).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// How far the first handshake message reaches, once its header is in: at most
    /// [`QUIC_CRYPTO_MAX_BYTES`], later bytes are never needed.
    fn limit(&self) -> usize {
        super::be24(self.prefix(), 1)
            .map_or(QUIC_CRYPTO_MAX_BYTES, |len| {
                (len as usize).saturating_add(4)
            })
            .min(QUIC_CRYPTO_MAX_BYTES)
    }
}

/// What an assembler saw, for the caller to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicInitialStats {
    /// Client Initial packets examined: those of versions 1 and 2, and long headers of other
    /// versions (which cannot be opened).
    pub examined: u32,
    /// Initial packets decrypted and authenticated.
    pub opened: u32,
    /// Packets that did not decrypt, had a malformed header or frame (frames before the fault
    /// are kept), or had a version other than 1 and 2.
    pub failed: u32,
    /// CRYPTO frames dropped at the [`QUIC_CRYPTO_RANGES_MAX`] bound.
    pub crypto_dropped: u32,
    /// The last reason a packet was skipped.
    pub last_error: Option<QuicError>,
}

/// The keys that opened this flow's last Initial, and the DCID they come from.
#[derive(Debug)]
struct FlowKeys {
    version: QuicVersion,
    dcid: Vec<u8>,
    keys: InitialKeys,
}

/// Collects the ClientHello from one QUIC flow's client → server datagrams.
///
/// Keys: a client's Initials use the keys of the DCID of its first Initial even after its DCID
/// changes to the server's choice (RFC 9001 §5.2), except after a Retry, when they come from
/// the new DCID (RFC 9000 §17.2.5.2: "Changing the Destination Connection ID field also results
/// in a change to the keys used to protect the Initial packet"). So each Initial is tried with the keys that opened the last one, then with
/// keys of its own DCID, which then become the flow's.
///
/// Returns `Some(Ok(hello))` once; `Some(Err(..))` once when no hello can come (see
/// [`QuicError`]); after either, every push returns `None` without work.
#[derive(Debug, Default)]
pub struct QuicInitialAssembler {
    keys: Option<FlowKeys>,
    /// Largest packet number opened in the Initial space (RFC 9000 §17.1).
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    /// Reused buffer for decryption in place.
    scratch: Vec<u8>,
    stats: QuicInitialStats,
    finished: bool,
}

impl QuicInitialAssembler {
    pub fn new() -> QuicInitialAssembler {
        QuicInitialAssembler::default()
    }

    /// Whether a hello or an error was handed out already.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn stats(&self) -> &QuicInitialStats {
        &self.stats
    }

    /// Bytes of memory held: CRYPTO data and ranges, the decryption buffer.
    pub fn held_bytes(&self) -> usize {
        self.crypto.data.capacity()
            + self.crypto.filled.capacity() * std::mem::size_of::<(usize, usize)>()
            + self.scratch.capacity()
    }

    /// Takes one client → server UDP payload.
    pub fn push(&mut self, datagram: &[u8]) -> Option<Result<ClientHello, QuicError>> {
        if self.finished {
            return None;
        }
        let mut rest = datagram;
        for index in 0..QUIC_PACKETS_PER_DATAGRAM_MAX {
            let Some(&first) = rest.first() else {
                break;
            };
            if first & LONG_HEADER_FORM == 0 {
                if index == 0 {
                    // A short header: the client has 1-RTT keys and sends no more Initials
                    // (RFC 9001 §4.9.1).
                    let e = if self.stats.opened == 0 {
                        QuicError::NotInitial
                    } else {
                        QuicError::Incomplete
                    };
                    return self.finish(Err(e));
                }
                // After coalesced long headers: a short-header packet or padding (RFC 9000
                // §12.2, §14.1).
                break;
            }
            let hdr = match long_header(rest) {
                Ok(h) => h,
                Err(e) => {
                    if matches!(e, QuicError::UnsupportedVersion(_))
                        && let Some(done) = self.examine()
                    {
                        return Some(done);
                    }
                    self.skip(e);
                    break;
                }
            };
            let Some((packet, tail)) = rest.split_at_checked(hdr.len) else {
                break; // long_header checked the length; never taken
            };
            rest = tail;
            if hdr.ty != PacketType::Initial {
                continue;
            }
            if let Some(done) = self.examine() {
                return Some(done);
            }
            match self.open(packet, &hdr) {
                Ok(()) => {
                    if let Some(done) = self.check_complete() {
                        return self.finish(done);
                    }
                }
                Err(e) => self.skip(e),
            }
        }
        None
    }

    /// Counts one examined Initial; past the budget, finishes.
    fn examine(&mut self) -> Option<Result<ClientHello, QuicError>> {
        if self.stats.examined >= QUIC_INITIALS_MAX {
            let e = match self.stats.last_error {
                Some(e) if self.stats.opened == 0 => e,
                _ => QuicError::TooManyInitials,
            };
            return self.finish(Err(e));
        }
        self.stats.examined += 1;
        None
    }

    fn skip(&mut self, e: QuicError) {
        self.stats.failed += 1;
        self.stats.last_error = Some(e);
    }

    /// Opens one Initial and takes in its CRYPTO frames.
    fn open(&mut self, packet: &[u8], hdr: &LongHeader<'_>) -> Result<(), QuicError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let opened = self.open_keys(&mut scratch, packet, hdr);
        let result = opened.map(|(pn, range)| {
            self.stats.opened += 1;
            self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
            let plaintext = scratch.get(range).unwrap_or(&[]);
            let (crypto, stats) = (&mut self.crypto, &mut self.stats);
            read_frames(plaintext, |offset, data| {
                let limit = crypto.limit();
                if !crypto.insert(offset, data, limit) {
                    stats.crypto_dropped += 1;
                }
            })
        });
        self.scratch = scratch;
        result.and_then(|frames| frames)
    }

    /// Tries the flow's keys, then those of the packet's own DCID.
    fn open_keys(
        &mut self,
        scratch: &mut Vec<u8>,
        packet: &[u8],
        hdr: &LongHeader<'_>,
    ) -> Result<(u64, std::ops::Range<usize>), QuicError> {
        if let Some(flow) = &self.keys {
            let keys = if flow.version == hdr.version {
                flow.keys.clone()
            } else {
                // Compatible version negotiation (RFC 9368): same DCID, the new version's salt.
                client_initial_keys(hdr.version, &flow.dcid)?
            };
            let own = flow.dcid == hdr.dcid;
            match open_initial(scratch, packet, hdr.pn_offset, &keys, self.largest_pn) {
                Ok(done) => {
                    if let Some(flow) = &mut self.keys {
                        flow.version = hdr.version;
                        flow.keys = keys;
                    }
                    return Ok(done);
                }
                Err(e) if own => return Err(e),
                Err(_) => {}
            }
        }
        let keys = client_initial_keys(hdr.version, hdr.dcid)?;
        let done = open_initial(scratch, packet, hdr.pn_offset, &keys, self.largest_pn)?;
        self.keys = Some(FlowKeys {
            version: hdr.version,
            dcid: hdr.dcid.to_vec(),
            keys,
        });
        Ok(done)
    }

    /// Whether the first handshake message is complete, or can never be a hello.
    fn check_complete(&self) -> Option<Result<ClientHello, QuicError>> {
        let prefix = self.crypto.prefix();
        let &ty = prefix.first()?;
        if ty != tls::HANDSHAKE_CLIENT_HELLO {
            return Some(Err(TlsError::WrongMessage("ClientHello").into()));
        }
        let need = (super::be24(prefix, 1)? as usize).saturating_add(4);
        if need > QUIC_CRYPTO_MAX_BYTES {
            return Some(Err(QuicError::TooLarge));
        }
        let msg = prefix.get(..need)?;
        Some(tls::parse_client_hello_message(msg).map_err(QuicError::from))
    }

    fn finish(
        &mut self,
        r: Result<ClientHello, QuicError>,
    ) -> Option<Result<ClientHello, QuicError>> {
        self.finished = true;
        self.crypto = CryptoStream::default();
        self.scratch = Vec::new();
        self.keys = None;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;
    use crate::names::tls::TlsVersion;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A: the client's Destination Connection ID.
    const RFC_DCID: &str = "8394c8f03e515708";

    /// RFC 9001 Appendix A.2 (and RFC 9369 Appendix A.2): the CRYPTO frame of the client
    /// Initial, padded with PADDING to a 1162-byte payload.
    const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
        04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408 050806002d00020101001c0002400100
        3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806 048000ffff";
    const RFC_PAYLOAD_LEN: usize = 1162;

    /// RFC 9001 Appendix A.2: the protected client Initial.
    const RFC9001_CLIENT_INITIAL: &str = "
        c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11
        d242b123dc9bd8bab936b47d92ec356c 0bab7df5976d27cd449f63300099f399
        1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c
        8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212
        30c83711b39343fa028cea7f7fb5ff89 eac2308249a02252155e2347b63d58c5
        457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208
        4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec
        4e15daf8500a6ef69ec4e3feb6b1d98e 610ac8b7ec3faf6ad760b7bad1db4ba3
        485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db
        059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c
        7b4378e846d29f37ed7b4ea9ec5d82e7 961b7f25a9323851f681d582363aa5f8
        9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556
        be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74
        68449a13d8e3b95811a198f3491de3e7 fe942b330407abf82a4ed7c1b311663a
        c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00
        f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632
        291d6a418211cc2962e20fe47feb3edf 330f2c603a9d48c0fcb5699dbfe58964
        25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd
        14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff
        ef132eef2fa09346aee33c28eb130ff2 8f5b766953334113211996d20011a198
        e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73
        203a4a13e96f5432ec0fd4a1ee65accd d5e3904df54c1da510b0ff20dcc0c77f
        cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e
        fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade
        a2e1fbc5aa463d08ca19896d2bf59a07 1b851e6c239052172f296bfb5e724047
        90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2
        162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4
        40591f355e12d439ff150aab7613499d bd49adabc8676eef023b15b65bfc5ca0
        6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e
        8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0
        be79e2fb8f5d5fbbe2e30ecadd220723 c8c0aea8078cdfcb3868263ff8f09400
        54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab
        760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9
        f96f3ca9ec1dde434da7d2d392b905dd f3d1f9af93d1af5950bd493f5aa731b4
        056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064
        7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 Appendix A.2: the same client Initial protected with QUIC version 2.
    const RFC9369_CLIENT_INITIAL: &str = "
        d76b3343cf088394c8f03e5157080000 449ea0c95e82ffe67b6abcdb4298b485
        dd04de806071bf03dceebfa162e75d6c 96058bdbfb127cdfcbf903388e99ad04
        9f9a3dd4425ae4d0992cfff18ecf0fdb 5a842d09747052f17ac2053d21f57c5d
        250f2c4f0e0202b70785b7946e992e58 a59ac52dea6774d4f03b55545243cf1a
        12834e3f249a78d395e0d18f4d766004 f1a2674802a747eaa901c3f10cda5500
        cb9122faa9f1df66c392079a1b40f0de 1c6054196a11cbea40afb6ef5253cd68
        18f6625efce3b6def6ba7e4b37a40f77 32e093daa7d52190935b8da58976ff33
        12ae50b187c1433c0f028edcc4c2838b 6a9bfc226ca4b4530e7a4ccee1bfa2a3
        d396ae5a3fb512384b2fdd851f784a65 e03f2c4fbe11a53c7777c023462239dd
        6f7521a3f6c7d5dd3ec9b3f233773d4b 46d23cc375eb198c63301c21801f6520
        bcfb7966fc49b393f0061d974a2706df 8c4a9449f11d7f3d2dcbb90c6b877045
        636e7c0c0fe4eb0f697545460c806910 d2c355f1d253bc9d2452aaa549e27a1f
        ac7cf4ed77f322e8fa894b6a83810a34 b361901751a6f5eb65a0326e07de7c12
        16ccce2d0193f958bb3850a833f7ae43 2b65bc5a53975c155aa4bcb4f7b2c4e5
        4df16efaf6ddea94e2c50b4cd1dfe060 17e0e9d02900cffe1935e0491d77ffb4
        fdf85290fdd893d577b1131a610ef6a5 c32b2ee0293617a37cbb08b847741c3b
        8017c25ca9052ca1079d8b78aebd4787 6d330a30f6a8c6d61dd1ab5589329de7
        14d19d61370f8149748c72f132f0fc99 f34d766c6938597040d8f9e2bb522ff9
        9c63a344d6a2ae8aa8e51b7b90a4a806 105fcbca31506c446151adfeceb51b91
        abfe43960977c87471cf9ad4074d30e1 0d6a7f03c63bd5d4317f68ff325ba3bd
        80bf4dc8b52a0ba031758022eb025cdd 770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a4083 22cac55786e52f633b2fb6b614eaed18
        d703dd84045a274ae8bfa73379661388 d6991fe39b0d93debb41700b41f90a15
        c4d526250235ddcd6776fc77bc97e7a4 17ebcb31600d01e57f32162a8560cacc
        7e27a096d37a1a86952ec71bd89a3e9a 30a2a26162984d7740f81193e8238e61
        f6b5b984d4d3dfa033c1bb7e4f0037fe bf406d91c0dccf32acf423cfa1e70710
        10d3f270121b493ce85054ef58bada42 310138fe081adb04e2bd901f2f13458b
        3d6758158197107c14ebb193230cd115 7380aa79cae1374a7c1e5bbcb80ee23e
        06ebfde206bfb0fcbc0edc4ebec30966 1bdd908d532eb0c6adc38b7ca7331dce
        8dfce39ab71e7c32d318d136b6100671 a1ae6a6600e3899f31f0eed19e3417d1
        34b90c9058f8632c798d4490da498730 7cba922d61c39805d072b589bd52fdf1
        e86215c2d54e6670e07383a27bbffb5a ddf47d66aa85a0c6f9f32e59d85a44dd
        5d3b22dc2be80919b490437ae4f36a0a e55edf1d0b5cb4e9a3ecabee93dfc6e3
        8d209d0fa6536d27a5d6fbb17641cde2 7525d61093f1b28072d111b2b4ae5f89
        d5974ee12e5cf7d5da4d6a31123041f3 3e61407e76cffcdcfd7e19ba58cf4b53
        6f4c4938ae79324dc402894b44faf8af bab35282ab659d13c93f70412e85cb19
        9a37ddec600545473cfb5a05e08d0b20 9973b2172b4d21fb69745a262ccde96b
        a18b2faa745b6fe189cf772a9f84cbfc";

    // -----------------------------------------------------------------------------------------
    // A test-only sender: builds protected client Initials with the keys derived above.

    /// A varint in its shortest encoding (RFC 9000 §16).
    fn varint(v: u64) -> Vec<u8> {
        match v {
            0..=0x3f => vec![v as u8],
            0x40..=0x3fff => (0x4000 | v as u16).to_be_bytes().to_vec(),
            0x4000..=0x3fff_ffff => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
            _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
        }
    }

    fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![FRAME_CRYPTO];
        f.extend(varint(offset));
        f.extend(varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    /// A client Initial: `dcid` on the wire, keys from `key_dcid`, a 4-byte packet number
    /// encoding (as in RFC 9001 A.2), `payload` as the frames, a 2-byte Length field.
    fn seal(
        version: QuicVersion,
        dcid: &[u8],
        key_dcid: &[u8],
        pn: u64,
        payload: &[u8],
    ) -> Vec<u8> {
        let keys = client_initial_keys(version, key_dcid).unwrap();
        let ty = match version {
            QuicVersion::V1 => 0,
            QuicVersion::V2 => 1,
        };
        let pn_len = 4;
        let mut p = vec![0xc0 | (ty << 4) | (pn_len as u8 - 1)];
        p.extend(version.to_wire().to_be_bytes());
        p.push(dcid.len() as u8);
        p.extend_from_slice(dcid);
        p.push(0); // no SCID
        p.push(0); // no token
        let length = (pn_len + payload.len() + AEAD_TAG_LEN) as u16;
        p.extend((0x4000 | length).to_be_bytes());
        let pn_offset = p.len();
        p.extend((pn as u32).to_be_bytes());
        let mut nonce = keys.iv;
        for (n, b) in nonce.iter_mut().skip(4).zip(pn.to_be_bytes()) {
            *n ^= b;
        }
        let mut body = payload.to_vec();
        let tag = Aes128Gcm::new(&keys.key.into())
            .encrypt_in_place_detached(&Nonce::from(nonce), &p, &mut body)
            .unwrap();
        p.extend(body);
        p.extend(tag);
        let sample: [u8; 16] = p[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        let mut mask = sample.into();
        Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
        p[0] ^= mask[0] & 0x0f;
        for i in 0..pn_len {
            p[pn_offset + i] ^= mask[1 + i];
        }
        p
    }

    /// A TLS 1.3 ClientHello for `sni` with ALPN h3 and an unknown extension of `filler` bytes
    /// (to make it span packets, as a post-quantum key share does).
    fn client_hello(sni: &str, filler: usize) -> Vec<u8> {
        let name = sni.as_bytes();
        let mut ext = Vec::new();
        let u16b = |v: usize| (v as u16).to_be_bytes();
        ext.extend(u16b(0));
        ext.extend(u16b(name.len() + 5));
        ext.extend(u16b(name.len() + 3));
        ext.push(0);
        ext.extend(u16b(name.len()));
        ext.extend_from_slice(name);
        ext.extend([0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'3']);
        ext.extend([0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        ext.extend([0xfe, 0x00]);
        ext.extend(u16b(filler));
        ext.extend(std::iter::repeat_n(0x5a, filler));
        let mut body = vec![0x03, 0x03];
        body.extend([0x11; 32]);
        body.push(0);
        body.extend([0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
        body.extend(u16b(ext.len()));
        body.extend(ext);
        let mut msg = vec![1];
        msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    fn pad(mut payload: Vec<u8>, to: usize) -> Vec<u8> {
        payload.resize(payload.len().max(to), FRAME_PADDING);
        payload
    }

    fn sni_of(r: Option<Result<ClientHello, QuicError>>) -> String {
        r.expect("a result").expect("a hello").sni.expect("an SNI")
    }

    // -----------------------------------------------------------------------------------------
    // RFC test vectors

    #[test]
    fn rfc9001_client_initial_keys() {
        // RFC 9001 Appendix A.1.
        let k = client_initial_keys(QuicVersion::V1, &hex(RFC_DCID)).unwrap();
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9369_client_initial_keys() {
        // RFC 9369 Appendix A.1.
        let k = client_initial_keys(QuicVersion::V2, &hex(RFC_DCID)).unwrap();
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    fn rfc_payload() -> Vec<u8> {
        pad(hex(RFC_CRYPTO_FRAME), RFC_PAYLOAD_LEN)
    }

    #[test]
    fn rfc_client_initials_decrypt_to_example_com() {
        for (version, packet) in [
            (QuicVersion::V1, RFC9001_CLIENT_INITIAL),
            (QuicVersion::V2, RFC9369_CLIENT_INITIAL),
        ] {
            let packet = hex(packet);
            assert_eq!(packet.len(), 1200);
            assert_eq!(quic_version(&packet), Some(version.to_wire()));
            let mut a = QuicInitialAssembler::new();
            let hello = a.push(&packet).unwrap().unwrap();
            assert_eq!(hello.sni.as_deref(), Some("example.com"));
            assert_eq!(hello.alpn, vec!["alpn".to_owned()]);
            assert_eq!(hello.version, TlsVersion::Tls13);
            assert!(a.is_finished());
            assert_eq!(a.stats().opened, 1);
            assert_eq!(a.push(&packet), None);
        }
    }

    #[test]
    fn rfc_plaintext_and_packet_number() {
        // The opened payload is the CRYPTO frame and padding; packet number 2.
        let packet = hex(RFC9001_CLIENT_INITIAL);
        let hdr = long_header(&packet).unwrap();
        assert_eq!(hdr.ty, PacketType::Initial);
        assert_eq!(hdr.dcid, hex(RFC_DCID).as_slice());
        assert_eq!((hdr.pn_offset, hdr.len), (18, 1200));
        let keys = client_initial_keys(QuicVersion::V1, hdr.dcid).unwrap();
        let mut scratch = Vec::new();
        let (pn, range) = open_initial(&mut scratch, &packet, hdr.pn_offset, &keys, None).unwrap();
        assert_eq!(pn, 2);
        assert_eq!(
            scratch[..22].to_vec(),
            hex("c300000001088394c8f03e5157080000449e00000002")
        );
        assert_eq!(scratch[range].to_vec(), rfc_payload());
    }

    #[test]
    fn test_sender_reproduces_the_rfc_packets() {
        let dcid = hex(RFC_DCID);
        assert_eq!(
            seal(QuicVersion::V1, &dcid, &dcid, 2, &rfc_payload()),
            hex(RFC9001_CLIENT_INITIAL)
        );
        assert_eq!(
            seal(QuicVersion::V2, &dcid, &dcid, 2, &rfc_payload()),
            hex(RFC9369_CLIENT_INITIAL)
        );
    }

    #[test]
    fn varints_and_packet_numbers() {
        // RFC 9000 Appendix A.1 examples.
        for (bytes, value) in [
            ("c2197c5eff14e88c", 151_288_809_941_952_652u64),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
            ("4025", 37),
        ] {
            let b = hex(bytes);
            let mut r = Cursor::new(&b);
            assert_eq!(r.varint("v"), Ok(value));
            assert_eq!(r.remaining(), 0);
        }
        assert!(Cursor::new(&hex("c2197c")).varint("v").is_err());
        // RFC 9000 Appendix A.3 example.
        assert_eq!(
            decode_packet_number(Some(0xa82f30ea), 0x9b32, 2),
            0xa82f9b32
        );
        assert_eq!(decode_packet_number(None, 0, 1), 0);
        assert_eq!(decode_packet_number(Some(255), 0, 1), 256);
    }

    // -----------------------------------------------------------------------------------------
    // Reassembly

    #[test]
    fn hello_over_two_packets_out_of_order() {
        for version in [QuicVersion::V1, QuicVersion::V2] {
            let dcid = [0x42u8; 8];
            let hello = client_hello("www.split.example", 1500);
            let (head, tail) = hello.split_at(700);
            let (mid, tail) = tail.split_at(400);
            // Packet 0 carries the end, then the middle, with PING and an ACK (with a range
            // and ECN counts) between; packet 1 carries the start.
            let mut p0 = crypto_frame(1100, tail);
            p0.push(FRAME_PING);
            p0.extend([
                FRAME_ACK_ECN,
                0x05,
                0x00,
                0x01,
                0x00,
                0x01,
                0x01,
                0x00,
                0x00,
                0x00,
            ]);
            p0.extend(crypto_frame(700, mid));
            let p1 = pad(crypto_frame(0, head), 1100);
            let d0 = seal(version, &dcid, &dcid, 0, &pad(p0, 1100));
            let d1 = seal(version, &dcid, &dcid, 1, &p1);
            let mut a = QuicInitialAssembler::new();
            assert_eq!(a.push(&d0), None);
            assert_eq!(sni_of(a.push(&d1)), "www.split.example");
            assert_eq!(a.push(&d1), None);
            assert_eq!(a.stats().opened, 2);
        }
    }

    #[test]
    fn coalesced_packets_in_one_datagram() {
        let dcid = [7u8; 12];
        let hello = client_hello("coalesced.example", 900);
        let (head, tail) = hello.split_at(500);
        let mut datagram = seal(QuicVersion::V1, &dcid, &dcid, 0, &crypto_frame(500, tail));
        // A Handshake packet (type 2) the assembler skips by its Length.
        datagram.extend([0xe0, 0, 0, 0, 1, 0, 0, 0x05, 1, 2, 3, 4, 5]);
        datagram.extend(seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            1,
            &crypto_frame(0, head),
        ));
        datagram.extend([0u8; 40]); // padding after the packets
        let mut a = QuicInitialAssembler::new();
        assert_eq!(sni_of(a.push(&datagram)), "coalesced.example");
    }

    #[test]
    fn keys_follow_the_first_dcid_then_a_retry() {
        let first = [1u8; 8];
        let server_chosen = [2u8; 5];
        let after_retry = [3u8; 8];
        let hello = client_hello("keys.example", 1400);
        let (a_part, rest) = hello.split_at(500);
        let (b_part, c_part) = rest.split_at(500);
        let mut a = QuicInitialAssembler::new();
        // The first DCID's keys.
        let p = seal(QuicVersion::V1, &first, &first, 0, &crypto_frame(0, a_part));
        assert_eq!(a.push(&p), None);
        // The server's CID on the wire, the first DCID's keys (RFC 9001 §5.2).
        let p = seal(
            QuicVersion::V1,
            &server_chosen,
            &first,
            1,
            &crypto_frame(500, b_part),
        );
        assert_eq!(a.push(&p), None);
        // After a Retry: keys of the new DCID (RFC 9000 §17.2.5.2).
        let p = seal(
            QuicVersion::V1,
            &after_retry,
            &after_retry,
            2,
            &crypto_frame(1000, c_part),
        );
        assert_eq!(sni_of(a.push(&p)), "keys.example");
        assert_eq!(a.stats().failed, 0);
    }

    #[test]
    fn a_damaged_packet_is_skipped_and_counted() {
        let good = hex(RFC9001_CLIENT_INITIAL);
        let mut bad = good.clone();
        bad[600] ^= 1;
        let mut a = QuicInitialAssembler::new();
        assert_eq!(a.push(&bad), None);
        assert_eq!(a.stats().last_error, Some(QuicError::Decrypt));
        assert_eq!(sni_of(a.push(&good)), "example.com");
        assert_eq!(a.stats().failed, 1);
    }

    #[test]
    fn bounded_number_of_initials() {
        let mut bad = hex(RFC9001_CLIENT_INITIAL);
        bad[100] ^= 1;
        let mut a = QuicInitialAssembler::new();
        for _ in 0..QUIC_INITIALS_MAX {
            assert_eq!(a.push(&bad), None);
        }
        assert_eq!(a.push(&bad), Some(Err(QuicError::Decrypt)));
        assert_eq!(a.push(&hex(RFC9001_CLIENT_INITIAL)), None);
        assert_eq!(a.stats().examined, QUIC_INITIALS_MAX);

        // Some opened, none complete: TooManyInitials.
        let dcid = [9u8; 8];
        let hello = client_hello("never.example", 100);
        let p = seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            0,
            &crypto_frame(1, &hello[1..]),
        );
        let mut a = QuicInitialAssembler::new();
        for _ in 0..QUIC_INITIALS_MAX {
            assert_eq!(a.push(&p), None);
        }
        assert_eq!(a.push(&p), Some(Err(QuicError::TooManyInitials)));
    }

    #[test]
    fn short_header_and_other_versions() {
        let mut a = QuicInitialAssembler::new();
        assert_eq!(a.push(&[0x40, 1, 2, 3]), Some(Err(QuicError::NotInitial)));

        // Half a hello, then 1-RTT: it will never complete.
        let dcid = [5u8; 8];
        let hello = client_hello("half.example", 100);
        let p = seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &hello[..50]),
        );
        let mut a = QuicInitialAssembler::new();
        assert_eq!(a.push(&p), None);
        assert_eq!(a.push(&[0x41, 1, 2, 3]), Some(Err(QuicError::Incomplete)));

        // Draft 29 is not opened, counted, then the flow gives up.
        let mut draft = hex(RFC9001_CLIENT_INITIAL);
        draft[1..5].copy_from_slice(&0xff00_001du32.to_be_bytes());
        assert_eq!(quic_version(&draft), Some(0xff00_001d));
        let mut a = QuicInitialAssembler::new();
        assert_eq!(a.push(&draft), None);
        assert_eq!(
            a.stats().last_error,
            Some(QuicError::UnsupportedVersion(0xff00_001d))
        );
        for _ in 1..QUIC_INITIALS_MAX {
            assert_eq!(a.push(&draft), None);
        }
        assert_eq!(
            a.push(&draft),
            Some(Err(QuicError::UnsupportedVersion(0xff00_001d)))
        );
        assert_eq!(quic_version(&[0x40, 0, 0, 0, 1]), None);
        assert_eq!(quic_version(&[0xc0, 0, 0]), None);
    }

    #[test]
    fn not_a_hello_and_too_large() {
        let dcid = [6u8; 8];
        let mut a = QuicInitialAssembler::new();
        let p = seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &[2, 0, 0, 4, 1, 2, 3, 4]),
        );
        assert_eq!(
            a.push(&p),
            Some(Err(QuicError::Tls(TlsError::WrongMessage("ClientHello"))))
        );

        let mut a = QuicInitialAssembler::new();
        let p = seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &[1, 0, 0x50, 0]),
        );
        assert_eq!(a.push(&p), Some(Err(QuicError::TooLarge)));

        // A complete message that is not a valid ClientHello body.
        let mut a = QuicInitialAssembler::new();
        let p = seal(
            QuicVersion::V1,
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &[1, 0, 0, 2, 3, 3]),
        );
        assert!(matches!(a.push(&p), Some(Err(QuicError::Tls(_)))));
    }

    #[test]
    fn frames_after_a_violation_are_not_read() {
        let dcid = [8u8; 8];
        let hello = client_hello("frames.example", 50);
        let (head, tail) = hello.split_at(40);
        // A STREAM frame (0x08) is not allowed in an Initial: the CRYPTO frame after it is
        // not taken, the one before it is.
        let mut payload = crypto_frame(0, head);
        payload.extend([0x08, 0x00]);
        payload.extend(crypto_frame(40, tail));
        let mut a = QuicInitialAssembler::new();
        assert_eq!(
            a.push(&seal(QuicVersion::V1, &dcid, &dcid, 0, &payload)),
            None
        );
        assert_eq!(
            a.stats().last_error,
            Some(QuicError::Malformed(
                "frame not allowed in an Initial packet"
            ))
        );
        // CONNECTION_CLOSE ends the packet quietly.
        let mut payload = vec![FRAME_CONNECTION_CLOSE];
        payload.extend(crypto_frame(40, tail));
        assert_eq!(
            a.push(&seal(QuicVersion::V1, &dcid, &dcid, 1, &payload)),
            None
        );
        let payload = crypto_frame(40, tail);
        assert_eq!(
            sni_of(a.push(&seal(QuicVersion::V1, &dcid, &dcid, 2, &payload))),
            "frames.example"
        );
    }

    #[test]
    fn hostile_frames() {
        let mut seen = Vec::new();
        let mut collect = |o: u64, d: &[u8]| seen.push((o, d.len()));
        // Huge varints: offset + length beyond 2^62 - 1.
        let mut f = vec![FRAME_CRYPTO];
        f.extend(hex("ffffffffffffffff"));
        f.extend(hex("c000000000000001"));
        assert!(read_frames(&f, &mut collect).is_err());
        // Length beyond the payload.
        assert!(read_frames(&[FRAME_CRYPTO, 0, 0x7f, 0xff, 1, 2], &mut collect).is_err());
        // An ACK claiming 2^62 ranges.
        let mut f = vec![FRAME_ACK, 0, 0];
        f.extend(hex("ffffffffffffffff"));
        f.push(0);
        assert!(read_frames(&f, &mut collect).is_err());
        assert!(seen.is_empty());
        // The CRYPTO stream ignores pieces past the limit and bounds its ranges.
        let mut s = CryptoStream::default();
        assert!(s.insert(u64::MAX, &[1], QUIC_CRYPTO_MAX_BYTES));
        assert!(s.insert(QUIC_CRYPTO_MAX_BYTES as u64, &[1], QUIC_CRYPTO_MAX_BYTES));
        for i in 0..QUIC_CRYPTO_RANGES_MAX as u64 {
            assert!(s.insert(1 + 2 * i, &[1], QUIC_CRYPTO_MAX_BYTES));
        }
        assert!(!s.insert(1000, &[1], QUIC_CRYPTO_MAX_BYTES));
        // Filling the gaps merges everything.
        for i in 0..=QUIC_CRYPTO_RANGES_MAX as u64 {
            assert!(s.insert(2 * i, &[1], QUIC_CRYPTO_MAX_BYTES));
        }
        assert_eq!(s.filled.len(), 1);
        assert_eq!(s.prefix().len(), 2 * QUIC_CRYPTO_RANGES_MAX + 1);
        assert!(s.data.len() <= QUIC_CRYPTO_MAX_BYTES);
    }

    #[test]
    fn truncated_at_every_point() {
        for packet in [RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL] {
            let packet = hex(packet);
            for cut in 0..packet.len() {
                let mut a = QuicInitialAssembler::new();
                let r = a.push(&packet[..cut]);
                assert!(!matches!(r, Some(Ok(_))), "cut {cut}");
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Captures

    /// The SNIs the assembler finds in a capture's UDP flows to port 443, by flow.
    fn capture_snis(name: &str) -> Option<Vec<Result<ClientHello, QuicError>>> {
        let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/pcaps")
            .join(name);
        if !path.exists() {
            eprintln!("skipping: {} not found", path.display());
            return None;
        }
        let mut replay = crate::capture::Replay::open(&[path]).unwrap();
        let mut dec = crate::decode::Decoder::new();
        let mut flows: HashMap<_, QuicInitialAssembler> = HashMap::new();
        let mut out = Vec::new();
        while let Ok(Some(frame)) = replay.next_frame() {
            let Some(p) = dec.decode(&frame) else {
                continue;
            };
            if p.transport != crate::decode::Transport::Udp || p.dst_port != 443 {
                continue;
            }
            let key = (p.src, p.src_port, p.dst, p.dst_port);
            if let Some(r) = flows.entry(key).or_default().push(p.payload) {
                out.push(r);
            }
        }
        Some(out)
    }

    #[test]
    fn capture_curl_http3_www_google_de() {
        let Some(found) = capture_snis("zeek_quic_curl-http3-www-google-de.pcap") else {
            return;
        };
        assert_eq!(found.len(), 1, "{found:?}");
        let hello = found[0].clone().unwrap();
        assert_eq!(hello.sni.as_deref(), Some("www.google.de"));
        assert_eq!(hello.alpn, ["h3", "h3-29", "h3-28", "h3-27"]);
        assert_eq!(hello.version, TlsVersion::Tls13);
    }

    #[test]
    fn capture_quic_handshake_on_loopback() {
        let Some(found) = capture_snis("tcpdump_quic_handshake_null.pcap") else {
            return;
        };
        // A client on loopback to port 443 (DLT_NULL): one ClientHello, SNI "localhost".
        assert_eq!(found.len(), 1, "{found:?}");
        let hello = found[0].clone().unwrap();
        assert_eq!(hello.sni.as_deref(), Some("localhost"));
        assert_eq!(hello.alpn, ["h3"]);
    }

    // -----------------------------------------------------------------------------------------
    // Property tests: no panic on any input.

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        #[test]
        fn random_datagrams(datagrams in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..1400), 1..6)) {
            let mut a = QuicInitialAssembler::new();
            for d in &datagrams {
                let _ = a.push(d);
            }
            let _ = quic_version(&datagrams[0]);
        }

        #[test]
        fn random_bytes_after_a_valid_header(
            tail in proptest::collection::vec(any::<u8>(), 0..1300),
            cut in 0usize..40,
            v2 in any::<bool>(),
        ) {
            let packet = hex(if v2 { RFC9369_CLIENT_INITIAL } else { RFC9001_CLIENT_INITIAL });
            let mut d = packet[..cut.min(packet.len())].to_vec();
            d.extend(tail);
            let _ = QuicInitialAssembler::new().push(&d);
        }

        #[test]
        fn one_byte_changed(at in 0usize..1200, x in 1u8..=255) {
            let mut d = hex(RFC9001_CLIENT_INITIAL);
            d[at] ^= x;
            let r = QuicInitialAssembler::new().push(&d);
            // Header protection and the AEAD tag cover every byte but the Length field's
            // meaning: a changed byte never yields a hello, except where it changes nothing
            // that is read.
            if let Some(Ok(h)) = r {
                prop_assert_eq!(h.sni.as_deref(), Some("example.com"));
            }
        }

        #[test]
        fn random_frames_in_a_valid_packet(
            frames in proptest::collection::vec(any::<u8>(), 0..1200),
            prefix in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(6), Just(0x1c)], 0..8),
        ) {
            let dcid = [0xabu8; 8];
            let mut payload = prefix;
            payload.extend(frames);
            let payload = pad(payload, 20);
            let p = seal(QuicVersion::V1, &dcid, &dcid, 0, &payload);
            let mut a = QuicInitialAssembler::new();
            let _ = a.push(&p);
            prop_assert!(a.is_finished() || a.stats().opened == 1);
        }
    }
}
