//! TLS and DTLS handshake reading: the ClientHello's server name (SNI), ALPN protocols and
//! highest offered version; the ServerHello's negotiated version; reassembly of a ClientHello
//! spread over several records and TCP segments; and a per-flow tracker that says when a
//! handshake completed and application data flowed both ways.
//!
//! Guarantees: no panic on any input, work linear in the bytes given, memory bounded by
//! [`TLS_HELLO_MAX_BYTES`] per assembler. Lengths inside a hello are checked against their
//! container; a length that lies gives [`TlsError::Malformed`] (or [`TlsError::Incomplete`]
//! while more bytes may still come). Names go through [`super::clean_name`].

use std::borrow::Cow;

use super::{be16, be24, clean_name};

/// Largest ClientHello handshake message, header included, the assembler waits for. RFC 8446
/// allows 2^24 - 1 bytes; real ones are below 2 KiB even with post-quantum key shares.
pub const TLS_HELLO_MAX_BYTES: usize = 16 * 1024;
/// ALPN protocol names kept from one hello.
pub const TLS_ALPN_MAX: usize = 8;
/// Longest ALPN protocol name kept, in characters.
pub const TLS_ALPN_NAME_MAX_CHARS: usize = 32;
/// Bytes an assembler holds, duplicates and segments from before the hello's start included,
/// before it gives up.
pub const TLS_HELD_MAX_BYTES: usize = 2 * TLS_HELLO_MAX_BYTES;
/// Segments an assembler holds before it gives up (bounds the work per push on hostile input).
pub const TLS_SEGMENTS_MAX: usize = 64;
/// Largest record payload (RFC 8446 §5.2: "The length MUST NOT exceed 2^14 + 256 bytes" for
/// TLSCiphertext; 2^14 + 2048 in RFC 5246 §6.2.3). Used to call a record header plausible.
pub const TLS_RECORD_MAX: usize = (1 << 14) + 2048;

/// Record content types (RFC 8446 §5.1).
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;
/// Handshake message types (RFC 8446 §4).
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;
/// Extension numbers: server_name (RFC 6066 §3), ALPN (RFC 7301 §3.1), supported_versions
/// (RFC 8446 §4.2.1).
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// RFC 6066 §3: `enum { host_name(0), (255) } NameType;`.
const NAME_TYPE_HOST_NAME: u8 = 0;

/// TLS record header: type (1), legacy version (2), length (2). RFC 8446 §5.1.
const TLS_RECORD_HEADER: usize = 5;
/// DTLS record header: type (1), version (2), epoch (2), sequence number (6), length (2).
/// RFC 6347 §4.1, RFC 9147 §4 (DTLSPlaintext).
const DTLS_RECORD_HEADER: usize = 13;
/// TLS handshake header: type (1), length (3).
const HANDSHAKE_HEADER: usize = 4;
/// DTLS handshake header: type (1), length (3), message_seq (2), fragment_offset (3),
/// fragment_length (3). RFC 6347 §4.2.2.
const DTLS_HANDSHAKE_HEADER: usize = 12;

/// Why no hello came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The bytes so far are a valid beginning; more are needed.
    #[error("TLS handshake incomplete")]
    Incomplete,
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("handshake message is not a {0}")]
    WrongMessage(&'static str),
    #[error("TLS hello malformed: {0}")]
    Malformed(&'static str),
    #[error("TLS hello larger than {TLS_HELLO_MAX_BYTES} bytes, or spread over too many segments")]
    TooLarge,
    #[error("DTLS hello fragmented")]
    Fragmented,
}

/// A protocol version (RFC 8446 §4.2.1, RFC 6347 §4.1, RFC 9147 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
    Dtls10,
    Dtls12,
    Dtls13,
    Unknown(u16),
}

impl TlsVersion {
    pub fn from_wire(v: u16) -> TlsVersion {
        match v {
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls10,
            0x0302 => TlsVersion::Tls11,
            0x0303 => TlsVersion::Tls12,
            0x0304 => TlsVersion::Tls13,
            0xfeff => TlsVersion::Dtls10,
            0xfefd => TlsVersion::Dtls12,
            0xfefc => TlsVersion::Dtls13,
            n => TlsVersion::Unknown(n),
        }
    }

    /// A stable name for output: "TLS 1.0" … "TLS 1.3", "SSL 3.0", "DTLS 1.x", "unknown".
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSL 3.0",
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
            TlsVersion::Dtls10 => "DTLS 1.0",
            TlsVersion::Dtls12 => "DTLS 1.2",
            TlsVersion::Dtls13 => "DTLS 1.3",
            TlsVersion::Unknown(_) => "unknown",
        }
    }

    /// Order for "highest offered": DTLS counts down on the wire, unknown values rank lowest.
    fn rank(self) -> u8 {
        match self {
            TlsVersion::Unknown(_) => 0,
            TlsVersion::Ssl3 => 1,
            TlsVersion::Tls10 | TlsVersion::Dtls10 => 2,
            TlsVersion::Tls11 => 3,
            TlsVersion::Tls12 | TlsVersion::Dtls12 => 4,
            TlsVersion::Tls13 | TlsVersion::Dtls13 => 5,
        }
    }
}

/// GREASE values (RFC 8701 §2: "{0x0A,0x0A}, {0x1A,0x1A}, …, {0xFA,0xFA}"), ignored wherever
/// versions are read.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// What a ClientHello tells about the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The host_name of the server_name extension, cleaned.
    pub sni: Option<String>,
    /// ALPN protocol names in offered order, at most [`TLS_ALPN_MAX`].
    pub alpn: Vec<String>,
    /// The highest non-GREASE version of supported_versions, else the legacy version field.
    pub version: TlsVersion,
}

/// A view over the handshake message bytes: the contiguous record payloads of the first
/// handshake message in a TLS byte stream. Borrowed when one record holds it, copied otherwise.
fn gather_handshake(stream: &[u8]) -> Result<Cow<'_, [u8]>, TlsError> {
    let mut out: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut pos = 0usize;
    loop {
        let Some(header) = stream.get(pos..pos + TLS_RECORD_HEADER) else {
            return Err(
                if stream.get(pos) == Some(&CONTENT_HANDSHAKE) || pos == stream.len() {
                    TlsError::Incomplete
                } else {
                    TlsError::NotHandshake
                },
            );
        };
        if header.first() != Some(&CONTENT_HANDSHAKE) || header.get(1) != Some(&3) {
            return Err(TlsError::NotHandshake);
        }
        let len = usize::from(be16(header, 3).unwrap_or(0));
        if len == 0 || len > TLS_RECORD_MAX {
            return Err(TlsError::Malformed("record length"));
        }
        let start = pos + TLS_RECORD_HEADER;
        let payload = stream.get(start..start + len);
        let available = payload.unwrap_or_else(|| stream.get(start..).unwrap_or(&[]));
        if out.is_empty() {
            out = Cow::Borrowed(available);
        } else {
            out.to_mut().extend_from_slice(available);
        }
        // Is the first handshake message complete in what we have?
        if let Some(msg_len) = be24(&out, 1) {
            let need = HANDSHAKE_HEADER + msg_len as usize;
            if need > TLS_HELLO_MAX_BYTES {
                return Err(TlsError::TooLarge);
            }
            if out.len() >= need {
                return Ok(match out {
                    Cow::Borrowed(b) => Cow::Borrowed(b.get(..need).unwrap_or(b)),
                    Cow::Owned(mut v) => {
                        v.truncate(need);
                        Cow::Owned(v)
                    }
                });
            }
        }
        if payload.is_none() {
            return Err(TlsError::Incomplete);
        }
        pos = start + len;
    }
}

/// Parses a ClientHello from the start of a client's TLS byte stream (record layer first). The
/// hello may span several records; pass the whole contiguous stream prefix.
pub fn parse_client_hello(stream: &[u8]) -> Result<ClientHello, TlsError> {
    let msg = gather_handshake(stream)?;
    parse_client_hello_message(&msg)
}

/// Parses a complete TLS handshake message (4-byte header first) as a ClientHello.
pub fn parse_client_hello_message(msg: &[u8]) -> Result<ClientHello, TlsError> {
    if msg.first() != Some(&HANDSHAKE_CLIENT_HELLO) {
        return Err(TlsError::WrongMessage("ClientHello"));
    }
    let len = be24(msg, 1).ok_or(TlsError::Incomplete)? as usize;
    let body = msg
        .get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + len)
        .ok_or(TlsError::Incomplete)?;
    client_hello_body(body, false)
}

/// A cursor over a length-checked body.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TlsError> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or(TlsError::Malformed(what))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, TlsError> {
        Ok(*self
            .take(1, what)?
            .first()
            .ok_or(TlsError::Malformed(what))?)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, TlsError> {
        be16(self.take(2, what)?, 0).ok_or(TlsError::Malformed(what))
    }
    /// A vector with a 1-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }
    /// A vector with a 2-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// RFC 8446 §4.1.2 (`legacy_version`, `random`, `legacy_session_id`, `cipher_suites`,
/// `legacy_compression_methods`, `extensions`); DTLS adds `cookie` after the session id.
fn client_hello_body(body: &[u8], dtls: bool) -> Result<ClientHello, TlsError> {
    let mut r = Reader::new(body);
    let legacy = r.u16("legacy_version")?;
    r.take(32, "random")?;
    let session = r.vec8("session id")?;
    if session.len() > 32 {
        return Err(TlsError::Malformed("session id longer than 32"));
    }
    if dtls {
        r.vec8("cookie")?;
    }
    r.vec16("cipher suites")?;
    r.vec8("compression methods")?;
    let mut hello = ClientHello {
        sni: None,
        alpn: Vec::new(),
        version: TlsVersion::from_wire(legacy),
    };
    if r.is_empty() {
        // RFC 5246 §7.4.1.2: extensions may be absent.
        return Ok(hello);
    }
    let mut exts = Reader::new(r.vec16("extensions")?);
    let mut best: Option<TlsVersion> = None;
    while !exts.is_empty() {
        let ty = exts.u16("extension type")?;
        let data = exts.vec16("extension data")?;
        match ty {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_SUPPORTED_VERSIONS => {
                let mut v = Reader::new(data);
                let mut list = Reader::new(v.vec8("supported_versions")?);
                while !list.is_empty() {
                    let raw = list.u16("supported_versions")?;
                    if is_grease(raw) {
                        continue;
                    }
                    let ver = TlsVersion::from_wire(raw);
                    if best.is_none_or(|b| ver.rank() > b.rank()) {
                        best = Some(ver);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(v) = best {
        hello.version = v;
    }
    Ok(hello)
}

/// RFC 6066 §3: `ServerName server_name_list<1..2^16-1>`, each `NameType name_type` then
/// `HostName host_name<1..2^16-1>`. The first host_name entry wins.
fn server_name(data: &[u8]) -> Result<Option<String>, TlsError> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("server_name list")?);
    while !list.is_empty() {
        let ty = list.u8("server_name type")?;
        let name = list.vec16("server_name")?;
        if ty == NAME_TYPE_HOST_NAME && !name.is_empty() {
            return Ok(Some(clean_name(name)));
        }
    }
    Ok(None)
}

/// RFC 7301 §3.1: `ProtocolName protocol_name_list<2..2^16-1>`, each `opaque
/// ProtocolName<1..2^8-1>`.
fn alpn(data: &[u8]) -> Result<Vec<String>, TlsError> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("alpn list")?);
    let mut out = Vec::new();
    while !list.is_empty() {
        let p = list.vec8("alpn name")?;
        if out.len() < TLS_ALPN_MAX {
            let cut = p.get(..TLS_ALPN_NAME_MAX_CHARS).unwrap_or(p);
            out.push(clean_name(cut));
        }
    }
    Ok(out)
}

/// Reads the negotiated version from the start of a server's TLS byte stream: the
/// supported_versions extension of the ServerHello when present (RFC 8446 §4.2.1: "the server
/// … MUST set the ServerHello.legacy_version field to 0x0303 (TLS 1.2)" and put the real one
/// in the extension), else the ServerHello's version field.
pub fn parse_server_hello(stream: &[u8]) -> Result<TlsVersion, TlsError> {
    let msg = gather_handshake(stream)?;
    if msg.first() != Some(&HANDSHAKE_SERVER_HELLO) {
        return Err(TlsError::WrongMessage("ServerHello"));
    }
    let len = be24(&msg, 1).ok_or(TlsError::Incomplete)? as usize;
    let body = msg
        .get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + len)
        .ok_or(TlsError::Incomplete)?;
    let mut r = Reader::new(body);
    let legacy = r.u16("legacy_version")?;
    r.take(32, "random")?;
    r.vec8("session id")?;
    r.u16("cipher suite")?;
    r.u8("compression method")?;
    let mut version = TlsVersion::from_wire(legacy);
    if !r.is_empty() {
        let mut exts = Reader::new(r.vec16("extensions")?);
        while !exts.is_empty() {
            let ty = exts.u16("extension type")?;
            let data = exts.vec16("extension data")?;
            if ty == EXT_SUPPORTED_VERSIONS {
                let v = be16(data, 0).ok_or(TlsError::Malformed("selected_version"))?;
                version = TlsVersion::from_wire(v);
            }
        }
    }
    Ok(version)
}

/// Parses a DTLS ClientHello datagram (RFC 6347 §4.1/§4.2, RFC 9147 §4/§5): first record a
/// handshake record, its first message a ClientHello carried whole in one fragment (fragment
/// offset 0, fragment length equal to the message length).
pub fn parse_dtls_client_hello(datagram: &[u8]) -> Result<ClientHello, TlsError> {
    if datagram.first() != Some(&CONTENT_HANDSHAKE) || datagram.get(1) != Some(&0xfe) {
        return Err(TlsError::NotHandshake);
    }
    let rec_len = usize::from(be16(datagram, 11).ok_or(TlsError::Incomplete)?);
    let record = datagram
        .get(DTLS_RECORD_HEADER..DTLS_RECORD_HEADER + rec_len)
        .ok_or(TlsError::Malformed("record length"))?;
    if record.first() != Some(&HANDSHAKE_CLIENT_HELLO) {
        return Err(TlsError::WrongMessage("ClientHello"));
    }
    let msg_len = be24(record, 1).ok_or(TlsError::Malformed("handshake header"))? as usize;
    let frag_off = be24(record, 6).ok_or(TlsError::Malformed("handshake header"))?;
    let frag_len = be24(record, 9).ok_or(TlsError::Malformed("handshake header"))? as usize;
    if frag_off != 0 || frag_len != msg_len {
        return Err(TlsError::Fragmented);
    }
    let body = record
        .get(DTLS_HANDSHAKE_HEADER..DTLS_HANDSHAKE_HEADER + msg_len)
        .ok_or(TlsError::Malformed("handshake length"))?;
    client_hello_body(body, true)
}

/// Whether `b` starts with a plausible TLS record header (any content type 20–23, version
/// 3.x with x ≤ 4, length 1..=[`TLS_RECORD_MAX`]).
pub fn plausible_record_header(b: &[u8]) -> bool {
    match (b.first(), b.get(1), b.get(2), be16(b, 3)) {
        (Some(&t), Some(&3), Some(&minor), Some(len)) => {
            (CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(&t)
                && minor <= 4
                && len > 0
                && usize::from(len) <= TLS_RECORD_MAX
        }
        _ => false,
    }
}

/// Collects a ClientHello from client → server TCP segments given in any order, duplicates and
/// overlaps included. Where the hello starts is found from the segment whose payload begins
/// with a handshake record holding a ClientHello, or from [`TlsHelloAssembler::set_stream_start`]
/// (SYN sequence number + 1) when the caller knows it.
///
/// Waits for a hello of at most [`TLS_HELLO_MAX_BYTES`] and holds at most [`TLS_HELD_MAX_BYTES`]
/// in at most [`TLS_SEGMENTS_MAX`] segments; beyond that ([`TlsError::TooLarge`], for the caller
/// to count), and on a stream that is not a ClientHello, it finishes with an error. After it finished, every push
/// returns `None` without work.
#[derive(Debug, Default)]
pub struct TlsHelloAssembler {
    start: Option<u32>,
    segments: Vec<(u32, Vec<u8>)>,
    held: usize,
    finished: bool,
}

impl TlsHelloAssembler {
    pub fn new() -> TlsHelloAssembler {
        TlsHelloAssembler::default()
    }

    /// The sequence number of the first payload byte of the stream (the SYN's + 1).
    pub fn set_stream_start(&mut self, seq: u32) {
        self.start = Some(seq);
    }

    /// Whether a hello or an error was handed out already.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes one segment. Returns `None` while more is needed; `Some(Ok(hello))` once, when the
    /// hello is complete; `Some(Err(..))` once, when the stream is not a TLS ClientHello or the
    /// hello would exceed the bounds.
    pub fn push(&mut self, seq: u32, payload: &[u8]) -> Option<Result<ClientHello, TlsError>> {
        if self.finished || payload.is_empty() {
            return None;
        }
        let starts_hello = payload.first() == Some(&CONTENT_HANDSHAKE)
            && payload.get(5) == Some(&HANDSHAKE_CLIENT_HELLO);
        if self.start.is_none() && starts_hello {
            self.start = Some(seq);
        }
        // Fast path: the whole hello in this one segment, nothing held.
        if self.segments.is_empty() && self.start == Some(seq) {
            match parse_client_hello(payload) {
                Err(TlsError::Incomplete) => {}
                done => return self.finish(done),
            }
        }
        if let Some(start) = self.start {
            // Signed distance from the stream start (sequence numbers wrap, RFC 9293 §3.4).
            let off = i64::from(seq.wrapping_sub(start) as i32);
            if off + payload.len() as i64 <= 0 {
                return None; // wholly before the hello: not ours
            }
            if off >= TLS_HELLO_MAX_BYTES as i64 {
                return self.finish(Err(TlsError::TooLarge));
            }
        }
        if self.held + payload.len() > TLS_HELD_MAX_BYTES || self.segments.len() >= TLS_SEGMENTS_MAX
        {
            return self.finish(Err(TlsError::TooLarge));
        }
        self.held += payload.len();
        self.segments.push((seq, payload.to_vec()));
        let start = self.start?;
        let stream = self.contiguous(start);
        match parse_client_hello(&stream) {
            Err(TlsError::Incomplete) if stream.len() < TLS_HELLO_MAX_BYTES => None,
            Err(TlsError::Incomplete) => self.finish(Err(TlsError::TooLarge)),
            done => self.finish(done),
        }
    }

    /// The bytes from `start` on, as far as the held segments join up without a gap.
    fn contiguous(&self, start: u32) -> Vec<u8> {
        let mut placed: Vec<(i64, &[u8])> = self
            .segments
            .iter()
            .map(|(seq, data)| {
                // Signed distance from the start, so a segment that began before it still
                // contributes its tail.
                (i64::from(seq.wrapping_sub(start) as i32), data.as_slice())
            })
            .collect();
        placed.sort_by_key(|&(off, _)| off);
        let mut out: Vec<u8> = Vec::new();
        for (off, data) in placed {
            let end = off + data.len() as i64;
            let have = out.len() as i64;
            if off > have {
                break; // a gap
            }
            if end <= have {
                continue; // duplicate
            }
            let skip = usize::try_from(have - off).unwrap_or(0);
            out.extend_from_slice(data.get(skip..).unwrap_or(&[]));
            if out.len() >= TLS_HELLO_MAX_BYTES {
                out.truncate(TLS_HELLO_MAX_BYTES);
                break;
            }
        }
        out
    }

    /// Bytes held for a hello not yet complete.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Gives up (the caller's memory budget ran out): frees what is held; every later push
    /// returns `None`.
    pub fn abandon(&mut self) {
        let _ = self.finish(Err(TlsError::TooLarge));
    }

    fn finish(
        &mut self,
        r: Result<ClientHello, TlsError>,
    ) -> Option<Result<ClientHello, TlsError>> {
        self.finished = true;
        self.segments = Vec::new();
        self.held = 0;
        Some(r)
    }
}

/// Per-flow handshake progress (DESIGN §2 "Encryption": a flow whose handshake never completes
/// is not called encrypted). Feed every TCP payload of a TLS flow with its direction until
/// [`TlsHandshakeState::is_encrypted`] holds.
///
/// Records are recognised at the start of each payload and then walked through that payload as
/// far as their headers stay plausible; the tracker needs no reassembly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsHandshakeState {
    pub client_hello: bool,
    /// The version the ServerHello selected, once seen.
    pub server_hello: Option<TlsVersion>,
    pub client_app_data: bool,
    pub server_app_data: bool,
}

/// Records walked per payload by [`TlsHandshakeState::observe`].
pub const TLS_RECORDS_PER_PAYLOAD_MAX: usize = 16;

impl TlsHandshakeState {
    pub fn new() -> TlsHandshakeState {
        TlsHandshakeState::default()
    }

    /// Notes what this payload shows. `from_client` is the direction (the side that opened the
    /// connection, or sent the ClientHello).
    pub fn observe(&mut self, from_client: bool, payload: &[u8]) {
        let mut pos = 0usize;
        for _ in 0..TLS_RECORDS_PER_PAYLOAD_MAX {
            let Some(rec) = payload.get(pos..) else {
                return;
            };
            if !plausible_record_header(rec) {
                return;
            }
            let ty = rec.first().copied().unwrap_or(0);
            let hs_type = rec.get(TLS_RECORD_HEADER).copied();
            match (ty, from_client) {
                (CONTENT_HANDSHAKE, true) if hs_type == Some(HANDSHAKE_CLIENT_HELLO) => {
                    self.client_hello = true;
                }
                (CONTENT_HANDSHAKE, false) if hs_type == Some(HANDSHAKE_SERVER_HELLO) => {
                    self.server_hello =
                        Some(parse_server_hello(rec).unwrap_or(TlsVersion::Unknown(0)));
                }
                (CONTENT_APPLICATION_DATA, true) => self.client_app_data = true,
                (CONTENT_APPLICATION_DATA, false) => self.server_app_data = true,
                _ => {}
            }
            let len = usize::from(be16(rec, 3).unwrap_or(0));
            pos += TLS_RECORD_HEADER + len;
        }
    }

    /// ClientHello and ServerHello seen, and application data in both directions.
    pub fn is_encrypted(&self) -> bool {
        self.client_hello
            && self.server_hello.is_some()
            && self.client_app_data
            && self.server_app_data
    }
}
