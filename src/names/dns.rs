//! DNS messages (RFC 1035 §4): header, questions, and the answer section's A, AAAA and CNAME
//! records, with compression pointers; CNAME chain resolution; and the 2-byte length framing of
//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8).
//!
//! Guarantees: any byte string gives a [`DnsMessage`] or a [`DnsError`] in time linear in its
//! length, with no panic. Name decoding stops on pointer loops (a pointer must point strictly
//! before the part of the name that contains it, and at most [`DNS_POINTER_HOPS_MAX`] pointers
//! are followed), rejects names over 255 wire octets and labels over 63, and writes names in
//! lower-case presentation format with bytes outside printable ASCII as `\DDD`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Escape, NameBuilder, be16, be32};

/// Fixed DNS header size (RFC 1035 §4.1.1).
pub const DNS_HEADER_LEN: usize = 12;
/// Compression pointers followed within one name before it is called a loop. Each pointer
/// must also point strictly backwards, so this cap only bounds work on crafted input.
pub const DNS_POINTER_HOPS_MAX: usize = 32;
/// Longest name on the wire, length octets included (RFC 1035 §2.3.4: "names - 255 octets or
/// less").
pub const DNS_NAME_WIRE_MAX: usize = 255;
/// Longest label (RFC 1035 §2.3.4: "labels - 63 octets or less").
pub const DNS_LABEL_MAX: usize = 63;
/// Questions kept from one message; further ones are parsed past and counted.
pub const DNS_QUESTIONS_MAX: usize = 8;
/// A, AAAA and CNAME answers kept from one message; further ones are counted in
/// [`DnsMessage::answers_dropped`].
pub const DNS_ANSWERS_MAX: usize = 64;
/// CNAME records followed from a question name before the chain is abandoned.
pub const DNS_CNAME_CHAIN_MAX: usize = 16;
/// Largest DNS message over TCP (the 2-byte length prefix) plus the prefix itself.
pub const DNS_TCP_BUFFER_MAX: usize = 65_535 + 2;

/// mDNS, RFC 6762 §3 ("UDP port 5353").
pub const MDNS_PORT: u16 = 5353;
/// LLMNR, RFC 4795 §2 ("UDP port 5355").
pub const LLMNR_PORT: u16 = 5355;

// Record types (RFC 1035 §3.2.2, RFC 3596 §2.1).
/// Host address.
pub const TYPE_A: u16 = 1;
/// Canonical name.
pub const TYPE_CNAME: u16 = 5;
/// IPv6 host address.
pub const TYPE_AAAA: u16 = 28;

/// Why bytes are not a DNS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS message ends inside {0}")]
    Truncated(&'static str),
    #[error("DNS compression pointer does not point backwards, or too many hops")]
    PointerLoop,
    #[error("DNS name longer than 255 octets")]
    NameTooLong,
    #[error("DNS label type 0x40/0x80 is not supported (RFC 6891 §5)")]
    BadLabelType,
    #[error("DNS record data length does not fit its type")]
    BadRdata,
}

/// One question (RFC 1035 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// The data of an answer record this parser keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
}

/// One kept answer record (RFC 1035 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Owner name.
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: DnsRecordData,
}

/// A parsed DNS message: the header fields, the questions, and the A/AAAA/CNAME answers.
/// The authority and additional sections are not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    /// QR bit: a response.
    pub is_response: bool,
    pub opcode: u8,
    /// TC bit: the sender truncated the message.
    pub truncated: bool,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// Up to [`DNS_QUESTIONS_MAX`] questions.
    pub questions: Vec<DnsQuestion>,
    /// Up to [`DNS_ANSWERS_MAX`] A, AAAA and CNAME answers, in message order.
    pub answers: Vec<DnsAnswer>,
    /// Answer records of other types, parsed past.
    pub answers_other: u32,
    /// A, AAAA and CNAME answers beyond [`DNS_ANSWERS_MAX`].
    pub answers_dropped: u32,
    /// The message ended (or was damaged) inside the answer section: the answers kept are those
    /// before that point.
    pub answers_incomplete: bool,
}

/// One name an answer resolved: the question name, the address it led to, the CNAMEs on the
/// way, and the lifetime (the smallest TTL along the chain, RFC 2181 §5.2 style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution<'a> {
    pub query: &'a str,
    pub addr: IpAddr,
    /// CNAME targets in order, the last one owning the address record; empty when none.
    pub cname_chain: Vec<&'a str>,
    pub ttl: u32,
}

/// Whether a port carries link-local name resolution (mDNS, LLMNR), whose answers name local
/// hosts and must not name public addresses.
pub fn is_local_resolution(port: u16) -> bool {
    port == MDNS_PORT || port == LLMNR_PORT
}

/// Reads the name at `start`. Returns the name and the offset just after it in place (after
/// the first pointer when the name is compressed). RFC 1035 §4.1.4.
pub fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut out = NameBuilder::new(Escape::Decimal);
    let mut pos = start;
    // Where the name continues in place, once the first pointer was taken.
    let mut after: Option<usize> = None;
    // Start of the stretch being read: a pointer must land strictly before it.
    let mut segment_start = start;
    let mut hops = 0usize;
    let mut wire_len = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated("a name"))?;
        match len & 0xc0 {
            0x00 => {
                let len = usize::from(len);
                wire_len += len + 1;
                if wire_len > DNS_NAME_WIRE_MAX {
                    return Err(DnsError::NameTooLong);
                }
                if len == 0 {
                    let end = after.unwrap_or(pos + 1);
                    if out.is_empty() {
                        out.dot();
                    }
                    return Ok((out.finish(), end));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(DnsError::Truncated("a label"))?;
                if !out.is_empty() {
                    out.dot();
                }
                out.bytes(label, true);
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated("a pointer"))?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                hops += 1;
                if target >= segment_start || hops > DNS_POINTER_HOPS_MAX {
                    return Err(DnsError::PointerLoop);
                }
                if after.is_none() {
                    after = Some(pos + 2);
                }
                pos = target;
                segment_start = target;
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// Skips a name without building it (for records this parser does not keep). Same loop and
/// length rules as [`read_name`], so a message is accepted or refused the same way.
fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsError> {
    let mut pos = start;
    let mut wire_len = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated("a name"))?;
        match len & 0xc0 {
            0x00 => {
                wire_len += usize::from(len) + 1;
                if wire_len > DNS_NAME_WIRE_MAX {
                    return Err(DnsError::NameTooLong);
                }
                if len == 0 {
                    return Ok(pos + 1);
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                // The in-place name ends here; the pointed-to part is checked only when read.
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated("a pointer"))?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= start {
                    return Err(DnsError::PointerLoop);
                }
                return Ok(pos + 2);
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// Parses a DNS message (RFC 1035 §4.1): header, questions, and the answer section.
///
/// A message cut inside the answer section still parses: the answers before the cut are kept
/// and [`DnsMessage::answers_incomplete`] is set. A message cut in the header or the questions
/// is an error.
pub fn parse_message(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    if msg.len() < DNS_HEADER_LEN {
        return Err(DnsError::Truncated("the header"));
    }
    let field = |at| be16(msg, at).ok_or(DnsError::Truncated("the header"));
    let id = field(0)?;
    let flags = field(2)?;
    let mut m = DnsMessage {
        id,
        // RFC 1035 §4.1.1: QR (1 bit), Opcode (4), AA, TC, RD, RA, Z (3), RCODE (4).
        is_response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000f) as u8,
        qdcount: field(4)?,
        ancount: field(6)?,
        nscount: field(8)?,
        arcount: field(10)?,
        questions: Vec::new(),
        answers: Vec::new(),
        answers_other: 0,
        answers_dropped: 0,
        answers_incomplete: false,
    };
    let mut pos = DNS_HEADER_LEN;
    for _ in 0..m.qdcount {
        // Each question needs at least 5 octets, so a huge count on short data ends here fast.
        let (name, end) = read_name(msg, pos)?;
        let qtype = be16(msg, end).ok_or(DnsError::Truncated("a question"))?;
        let qclass = be16(msg, end + 2).ok_or(DnsError::Truncated("a question"))?;
        pos = end + 4;
        if m.questions.len() < DNS_QUESTIONS_MAX {
            m.questions.push(DnsQuestion {
                name,
                qtype,
                qclass,
            });
        }
    }
    for _ in 0..m.ancount {
        match answer(msg, pos, &mut m) {
            Ok(next) => pos = next,
            Err(_) => {
                m.answers_incomplete = true;
                break;
            }
        }
    }
    Ok(m)
}

/// Reads one resource record at `pos` into `m`; returns the offset after it.
fn answer(msg: &[u8], pos: usize, m: &mut DnsMessage) -> Result<usize, DnsError> {
    // RFC 1035 §4.1.3: NAME, TYPE (2), CLASS (2), TTL (4), RDLENGTH (2), RDATA.
    let name_end = skip_name(msg, pos)?;
    let rtype = be16(msg, name_end).ok_or(DnsError::Truncated("a record"))?;
    let ttl = be32(msg, name_end + 4).ok_or(DnsError::Truncated("a record"))?;
    let rdlen = usize::from(be16(msg, name_end + 8).ok_or(DnsError::Truncated("a record"))?);
    let rdata_at = name_end + 10;
    let rdata = msg
        .get(rdata_at..rdata_at + rdlen)
        .ok_or(DnsError::Truncated("record data"))?;
    let next = rdata_at + rdlen;
    if !matches!(rtype, TYPE_A | TYPE_AAAA | TYPE_CNAME) {
        m.answers_other += 1;
        return Ok(next);
    }
    if m.answers.len() >= DNS_ANSWERS_MAX {
        m.answers_dropped += 1;
        return Ok(next);
    }
    let data = match rtype {
        TYPE_A => {
            let o: [u8; 4] = rdata.try_into().map_err(|_| DnsError::BadRdata)?;
            DnsRecordData::A(Ipv4Addr::from(o))
        }
        TYPE_AAAA => {
            let o: [u8; 16] = rdata.try_into().map_err(|_| DnsError::BadRdata)?;
            DnsRecordData::Aaaa(Ipv6Addr::from(o))
        }
        _ => {
            let (target, end) = read_name(msg, rdata_at)?;
            if end != next {
                return Err(DnsError::BadRdata);
            }
            DnsRecordData::Cname(target)
        }
    };
    let (name, _) = read_name(msg, pos)?;
    m.answers.push(DnsAnswer {
        name,
        rtype,
        ttl,
        data,
    });
    Ok(next)
}

impl DnsMessage {
    /// Every address a response's answers give for its questions, following CNAME chains from
    /// each question name (at most [`DNS_CNAME_CHAIN_MAX`] links; a name seen twice ends the
    /// chain). A response without questions (mDNS announcements) gives each address record as
    /// its own resolution. Queries and error responses give nothing.
    pub fn resolutions(&self) -> impl Iterator<Item = Resolution<'_>> {
        self.resolve_all().0.into_iter()
    }

    /// Questions whose CNAME chain [`DnsMessage::resolutions`] cut: longer than
    /// [`DNS_CNAME_CHAIN_MAX`] links, or back to a name already on the chain (a loop).
    pub fn chains_cut(&self) -> u64 {
        self.resolve_all().1
    }

    /// [`DnsMessage::resolutions`] and [`DnsMessage::chains_cut`] from one walk.
    pub fn resolve_all(&self) -> (Vec<Resolution<'_>>, u64) {
        let mut out = Vec::new();
        let mut cut = 0;
        if self.is_response && self.rcode == 0 {
            if self.questions.is_empty() {
                for a in &self.answers {
                    if let Some(addr) = a.addr() {
                        out.push(Resolution {
                            query: &a.name,
                            addr,
                            cname_chain: Vec::new(),
                            ttl: a.ttl,
                        });
                    }
                }
            }
            for (i, q) in self.questions.iter().enumerate() {
                // A name asked twice is followed once (at most DNS_QUESTIONS_MAX are kept).
                let asked_before = self.questions.get(..i).unwrap_or_default();
                if !asked_before.iter().any(|p| p.name == q.name) && self.resolve(&q.name, &mut out)
                {
                    cut += 1;
                }
            }
        }
        (out, cut)
    }

    /// Follows `query` through the answers; true when the chain was cut (too long, a loop).
    fn resolve<'a>(&'a self, query: &'a str, out: &mut Vec<Resolution<'a>>) -> bool {
        let mut current = query;
        let mut chain: Vec<&'a str> = Vec::new();
        let mut ttl = u32::MAX;
        loop {
            for a in self.answers.iter().filter(|a| a.name == current) {
                if let Some(addr) = a.addr() {
                    out.push(Resolution {
                        query,
                        addr,
                        cname_chain: chain.clone(),
                        ttl: ttl.min(a.ttl),
                    });
                }
            }
            let next = self.answers.iter().find_map(|a| match &a.data {
                DnsRecordData::Cname(t) if a.name == current => Some((t.as_str(), a.ttl)),
                _ => None,
            });
            match next {
                // Names seen on the way: the query and the chain (at most
                // DNS_CNAME_CHAIN_MAX), scanned.
                Some((target, cname_ttl))
                    if chain.len() < DNS_CNAME_CHAIN_MAX
                        && target != query
                        && !chain.contains(&target) =>
                {
                    chain.push(target);
                    ttl = ttl.min(cname_ttl);
                    current = target;
                }
                Some(_) => return true,
                None => return false,
            }
        }
    }
}

impl DnsAnswer {
    /// The address of an A or AAAA record.
    pub fn addr(&self) -> Option<IpAddr> {
        match self.data {
            DnsRecordData::A(a) => Some(IpAddr::V4(a)),
            DnsRecordData::Aaaa(a) => Some(IpAddr::V6(a)),
            DnsRecordData::Cname(_) => None,
        }
    }
}

/// Cuts one direction of a DNS-over-TCP stream into messages: each is preceded by its length
/// in two octets (RFC 1035 §4.2.2: "The message is prefixed with a two byte length field which
/// gives the message length, excluding the two byte length field"; RFC 7766 §8).
///
/// Feed in-order payloads; a message may span segments and a segment may hold several. The
/// buffer never holds more than [`DNS_TCP_BUFFER_MAX`] bytes. After a gap in the stream call
/// [`DnsTcpReassembler::reset`].
#[derive(Debug, Default)]
pub struct DnsTcpReassembler {
    buf: Vec<u8>,
    /// Messages handed out.
    pub messages: u64,
    /// Zero-length frames skipped.
    pub empty_frames: u64,
}

impl DnsTcpReassembler {
    pub fn new() -> DnsTcpReassembler {
        DnsTcpReassembler::default()
    }

    /// Forgets any partial message (after a sequence gap or a reset flow).
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// Bytes held for a message not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the buffer holds (its capacity, kept between messages).
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the next in-order payload and calls `each` with every message it completes. A
    /// message wholly inside `segment` is passed without copying.
    pub fn push(&mut self, mut segment: &[u8], mut each: impl FnMut(&[u8])) {
        while !segment.is_empty() {
            if self.buf.is_empty() {
                // Fast path: whole messages straight from the segment.
                if let Some(len) = be16(segment, 0) {
                    let len = usize::from(len);
                    if let Some(msg) = segment.get(2..2 + len) {
                        self.emit(msg, &mut each);
                        segment = segment.get(2 + len..).unwrap_or(&[]);
                        continue;
                    }
                }
            }
            // Slow path: collect the prefix, then the body.
            let want = match be16(&self.buf, 0) {
                Some(len) => 2 + usize::from(len),
                None => 2,
            };
            let take = want.saturating_sub(self.buf.len()).min(segment.len());
            let (head, rest) = segment.split_at(take);
            self.buf.extend_from_slice(head);
            segment = rest;
            if let Some(len) = be16(&self.buf, 0)
                && self.buf.len() == 2 + usize::from(len)
            {
                let buf = std::mem::take(&mut self.buf);
                self.emit(buf.get(2..).unwrap_or(&[]), &mut each);
                self.buf = buf;
                self.buf.clear();
            }
        }
    }

    fn emit(&mut self, msg: &[u8], each: &mut impl FnMut(&[u8])) {
        if msg.is_empty() {
            self.empty_frames += 1;
        } else {
            self.messages += 1;
            each(msg);
        }
    }
}
