//! Input formats shared by the fuzz targets and the seed extractor (`examples/seeds.rs`), so a
//! seed means to its target what the extractor meant it to.
//!
//! Every decoder here accepts any bytes: a fuzz input is never "invalid" for the harness, only
//! for the parser under test.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit as _};
use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes128Gcm, Nonce};
use egresswatch::capture::LinkType;
use egresswatch::names::quic::{QuicVersion, client_initial_keys};

/// Link types the `decode` target picks from with its first byte (the decoder's supported list,
/// plus one it does not read, so the skip path is covered too).
pub const LINK_TYPES: [LinkType; 11] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::RAW_12,
    LinkType::RAW_14,
    LinkType(160),
];

/// The `decode` target's selector byte for a link type (`None` if it is not in [`LINK_TYPES`]).
pub fn link_selector(lt: LinkType) -> Option<u8> {
    LINK_TYPES
        .iter()
        .position(|&l| l == lt)
        .and_then(|i| u8::try_from(i).ok())
}

/// A tiny deterministic generator (xorshift64*), seeded from fuzz bytes, for split points and
/// orders. Not for anything but harness decisions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Cuts `data` into consecutive pieces of 1..=`max` bytes chosen by `rng`.
pub fn split<'a>(data: &'a [u8], rng: &mut Rng, max: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = 1 + rng.below(max.max(1));
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Reads a sequence of records, each a 16-bit big-endian length and that many bytes; a record
/// cut short ends the sequence with what is there.
pub fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let n = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        data = tail;
    }
    out
}

/// Writes what [`records`] reads.
pub fn encode_records<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        let n = item.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&item[..n]);
    }
    out
}

/// Bytes before the stream in a `tls` input: a 32-bit sequence number base (little-endian), a
/// split seed, an order seed and a flags byte (bit 0: tell the assembler where the stream starts;
/// bit 1: send some segments twice).
pub const TLS_CONTROL_LEN: usize = 7;

/// The `quic` target's first byte: 0 reads the rest as [`records`] of raw UDP payloads; 1 seals
/// each record as the plaintext of a client Initial (QUIC v1) to a fixed DCID, so the fuzzer
/// reaches the frame parser and the CRYPTO reassembly behind the AEAD; 2 does the same for QUIC v2.
pub const QUIC_RAW: u8 = 0;
pub const QUIC_SEAL_V1: u8 = 1;
pub const QUIC_SEAL_V2: u8 = 2;

/// The Destination Connection ID of sealed Initials.
pub const SEAL_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

/// Builds one protected client Initial (RFC 9001 §5) around `plaintext` (QUIC frames), with a
/// 2-byte packet number `pn`. Plaintext shorter than the header-protection sample needs is
/// padded with PADDING frames.
pub fn seal_initial(version: QuicVersion, dcid: &[u8], pn: u16, plaintext: &[u8]) -> Vec<u8> {
    let Ok(keys) = client_initial_keys(version, dcid) else {
        return Vec::new();
    };
    const PN_LEN: usize = 2;
    const TAG_LEN: usize = 16;
    let mut body = plaintext.to_vec();
    // The sample starts 4 bytes after the packet number and is 16 bytes long (RFC 9001 §5.4.2).
    if PN_LEN + body.len() + TAG_LEN < 4 + 16 {
        body.resize(4 + 16 - PN_LEN - TAG_LEN, 0);
    }
    // Long header type bits: Initial is 0b00 in v1 and 0b01 in v2 (RFC 9369 §3.2).
    let type_bits: u8 = match version {
        QuicVersion::V1 => 0,
        QuicVersion::V2 => 1,
    };
    let mut pkt = vec![0xc0 | (type_bits << 4) | (PN_LEN as u8 - 1)];
    pkt.extend_from_slice(&version.to_wire().to_be_bytes());
    pkt.push(dcid.len() as u8);
    pkt.extend_from_slice(dcid);
    pkt.push(0); // empty source connection id
    pkt.push(0); // empty token
    let length = (PN_LEN + body.len() + TAG_LEN).min(0x3fff) as u16;
    pkt.extend_from_slice(&(0x4000 | length).to_be_bytes()); // 2-byte varint
    let pn_offset = pkt.len();
    pkt.extend_from_slice(&pn.to_be_bytes());
    body.truncate(usize::from(length) - PN_LEN - TAG_LEN);

    let mut nonce = keys.iv;
    for (n, p) in nonce
        .iter_mut()
        .rev()
        .zip(u64::from(pn).to_be_bytes().iter().rev())
    {
        *n ^= p;
    }
    let aead = Aes128Gcm::new(&keys.key.into());
    let Ok(tag) = aead.encrypt_in_place_detached(&Nonce::from(nonce), &pkt, &mut body) else {
        return Vec::new();
    };
    pkt.extend_from_slice(&body);
    pkt.extend_from_slice(&tag);

    let mut mask = [0u8; 16];
    mask.copy_from_slice(&pkt[pn_offset + 4..pn_offset + 20]);
    let mut block = mask.into();
    Aes128::new(&keys.hp.into()).encrypt_block(&mut block);
    let mask: [u8; 16] = block.into();
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..PN_LEN {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    pkt
}

/// A QUIC CRYPTO frame (RFC 9000 §19.6) with 4-byte varints.
pub fn crypto_frame(offset: u32, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x8000_0000 | (offset & 0x3fff_ffff)).to_be_bytes());
    f.extend_from_slice(&(0x8000_0000 | (data.len() as u32 & 0x3fff_ffff)).to_be_bytes());
    f.extend_from_slice(data);
    f
}
