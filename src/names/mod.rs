//! Passive hostname parsers: DNS messages, TLS/DTLS ClientHello, the ClientHello inside QUIC
//! Initial packets, plaintext HTTP requests, and payload classification by content (including
//! the VPN and equipment protocol recognisers of [`proto`]).
//!
//! This module owns turning transport payload bytes into names and protocol labels. It does no
//! I/O, keeps no global state and never performs an active lookup. Every parser takes borrowed
//! bytes of any content and returns a typed result; none panics, loops without bound or allocates
//! without a cap. Names leave this module only as [`String`]s that went through the shared name
//! hygiene ([`clean_name`], or the DNS presentation-format variant): lower-case, at most
//! [`NAME_MAX_CHARS`] characters, and never a control character (JSON escaping is serde's job).
//!
//! # How the engine uses it
//!
//! Per packet, with `p: decode::Packet`:
//!
//! - first payload of each flow direction: [`classify::classify`]`(p.payload, p.transport,
//!   (p.src_port, p.dst_port))` gives an [`AppProto`]; [`AppProto::is_encrypted_protocol`] says
//!   whether the flow *may* be encrypted (DESIGN §2: only a completed handshake counts, see
//!   [`tls::TlsHandshakeState`]);
//! - DNS over UDP: [`dns::parse_message`]`(p.payload)`, then [`dns::DnsMessage::resolutions`]
//!   gives `(queried name, address, CNAME chain, TTL)` for the IP → name cache; skip
//!   [`dns::is_local_resolution`] ports (mDNS, LLMNR) for public addresses. DNS over TCP: one
//!   [`dns::DnsTcpReassembler`] per flow direction, [`push`](dns::DnsTcpReassembler::push) each
//!   in-order payload, parse each message it hands back;
//! - TLS over TCP, client → server: one [`tls::TlsHelloAssembler`] per flow,
//!   [`push`](tls::TlsHelloAssembler::push)`(p.seq, p.payload)` until it returns `Some(..)`;
//!   the [`tls::ClientHello`] names the flow by SNI. Both directions:
//!   [`tls::TlsHandshakeState::observe`] until [`is_encrypted`](tls::TlsHandshakeState::is_encrypted);
//! - DTLS over UDP: [`tls::parse_dtls_client_hello`]`(p.payload)`;
//! - QUIC over UDP, client → server: one [`quic::QuicInitialAssembler`] per flow,
//!   [`push`](quic::QuicInitialAssembler::push)`(p.payload)` until it returns `Some(..)`; the
//!   [`tls::ClientHello`] names the flow by SNI, [`quic::QuicInitialAssembler::stats`] counts
//!   the Initials that did not open;
//! - HTTP, first client payload: [`http::parse_request`] gives method, target and host (Host
//!   header, absolute-form target or CONNECT authority); [`http::parse_response_status`] reads
//!   the server's status line.

pub mod attribution;
pub mod classify;
pub mod dns;
pub mod http;
pub mod proto;
pub mod proxy;
pub mod quic;
pub mod redirect;
pub mod tls;

#[cfg(test)]
mod tests;

pub use classify::{AppProto, classify};
pub use quic::{QuicError, QuicInitialAssembler, quic_version};

/// Longest name, in characters, this module hands out (RFC 1035 §2.3.4 limits a name to 255
/// octets on the wire, which is 253 characters in dotted text). A longer name is cut and ends
/// with [`TRUNCATION_MARKER`].
pub const NAME_MAX_CHARS: usize = 253;

/// Appended to a name cut at [`NAME_MAX_CHARS`]; counted in the limit.
pub const TRUNCATION_MARKER: char = '…';

/// How a byte outside printable ASCII is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// `\xNN`, two lower-case hex digits: for SNI and HTTP hosts.
    Hex,
    /// `\DDD`, three decimal digits, the DNS presentation format of RFC 1035 §5.1 ("\DDD where
    /// each D is a digit is the octet corresponding to the decimal number described by DDD").
    Decimal,
}

/// Builds a clean name piece by piece, enforcing [`NAME_MAX_CHARS`] and the escaping rules.
pub(crate) struct NameBuilder {
    out: String,
    /// Length of `out` at the last piece boundary that leaves room for the marker.
    safe: usize,
    cut: bool,
    escape: Escape,
    lower: bool,
}

/// Room a [`NameBuilder`] starts with: most names fit, so a name is built without growing its
/// string label by label; a longer one grows as usual.
const NAME_START_CAPACITY: usize = 64;

impl NameBuilder {
    pub(crate) fn new(escape: Escape) -> NameBuilder {
        NameBuilder {
            out: String::with_capacity(NAME_START_CAPACITY),
            safe: 0,
            cut: false,
            escape,
            lower: true,
        }
    }

    /// Keeps letter case (for HTTP request targets, whose paths are case-sensitive).
    pub(crate) fn keep_case(mut self) -> NameBuilder {
        self.lower = false;
        self
    }

    /// Appends one piece (an ASCII character or an escape sequence). When it would overflow,
    /// the name is cut back to the last piece boundary that leaves room for the marker, so an
    /// escape sequence is never split and a name of exactly [`NAME_MAX_CHARS`] stays whole.
    fn piece(&mut self, s: &str) {
        if self.cut {
            return;
        }
        // Pieces are ASCII: bytes and characters count the same.
        if self.out.len() + s.len() > NAME_MAX_CHARS {
            self.cut = true;
            self.out.truncate(self.safe);
            return;
        }
        self.out.push_str(s);
        if self.out.len() < NAME_MAX_CHARS {
            self.safe = self.out.len();
        }
    }

    /// Whether [`NameBuilder::byte`] writes `b` as itself (lower-cased) rather than escaped.
    fn plain(b: u8, in_dns_label: bool) -> bool {
        (0x21..=0x7e).contains(&b) && b != b'\\' && !(in_dns_label && b == b'.')
    }

    /// Appends raw bytes, exactly as [`NameBuilder::byte`] for each in turn would (and stops
    /// once the name is cut). A run of plain bytes that leaves the name below
    /// [`NAME_MAX_CHARS`] is copied at once: for each such byte `byte` only pushes it and moves
    /// `safe` to the new length. Everything else (an escape, the bytes at the limit) goes
    /// through `byte` itself.
    pub(crate) fn bytes(&mut self, mut raw: &[u8], in_dns_label: bool) {
        while !raw.is_empty() && !self.cut {
            let room = (NAME_MAX_CHARS - 1).saturating_sub(self.out.len());
            let run = raw
                .iter()
                .take(room)
                .take_while(|&&b| Self::plain(b, in_dns_label))
                .count();
            let (copy, rest) = raw.split_at(run);
            if !copy.is_empty() {
                let start = self.out.len();
                // Plain bytes are printable ASCII, so always UTF-8.
                self.out
                    .push_str(std::str::from_utf8(copy).unwrap_or_default());
                if self.lower
                    && let Some(added) = self.out.get_mut(start..)
                {
                    added.make_ascii_lowercase();
                }
                self.safe = self.out.len();
            }
            let Some((&b, rest)) = rest.split_first() else {
                break;
            };
            self.byte(b, in_dns_label);
            raw = rest;
        }
    }

    /// Appends a raw byte: lower-cased when printable, escaped otherwise. In DNS mode `.` and `\`
    /// inside a label are escaped too, so a label's dot is never mistaken for a separator.
    pub(crate) fn byte(&mut self, b: u8, in_dns_label: bool) {
        if Self::plain(b, in_dns_label) {
            // The one-character case of `piece`, without building a string for it (this runs
            // for every byte of every name).
            if self.cut {
                return;
            }
            if self.out.len() >= NAME_MAX_CHARS {
                self.cut = true;
                self.out.truncate(self.safe);
                return;
            }
            self.out.push(char::from(if self.lower {
                b.to_ascii_lowercase()
            } else {
                b
            }));
            if self.out.len() < NAME_MAX_CHARS {
                self.safe = self.out.len();
            }
            return;
        }
        // `\xHH` or `\DDD`: four ASCII bytes, built without an allocation.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let seq = match self.escape {
            Escape::Hex => [
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            Escape::Decimal => [b'\\', b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10],
        };
        // ASCII by construction; the fallback is unreachable.
        self.piece(std::str::from_utf8(&seq).unwrap_or("?"));
    }

    /// Appends a separator dot (DNS label boundary).
    pub(crate) fn dot(&mut self) {
        self.piece(".");
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.out.is_empty() && !self.cut
    }

    pub(crate) fn finish(mut self) -> String {
        if self.cut {
            self.out.push(TRUNCATION_MARKER);
        }
        self.out
    }
}

/// The name hygiene every parser applies to a name taken from the wire: ASCII lower-case, bytes
/// outside printable ASCII (space, controls, 0x7f and above, and `\` itself) written as `\xNN`, cut at [`NAME_MAX_CHARS`]
/// characters with a visible [`TRUNCATION_MARKER`].
///
/// The result never contains a control character and is always valid UTF-8.
pub fn clean_name(raw: &[u8]) -> String {
    let mut b = NameBuilder::new(Escape::Hex);
    b.bytes(raw, false);
    b.finish()
}

/// Big-endian reads that never panic.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

pub(crate) fn be24(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at.checked_add(3)?) {
        Some(&[x, y, z]) => Some(u32::from_be_bytes([0, x, y, z])),
        _ => None,
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at.checked_add(4)?) {
        Some(&[w, x, y, z]) => Some(u32::from_be_bytes([w, x, y, z])),
        _ => None,
    }
}
