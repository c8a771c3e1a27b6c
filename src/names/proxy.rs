//! Proxies: the destination a client names to an HTTP proxy (`CONNECT host:port`, an
//! absolute-form request target) or a SOCKS server (SOCKS4, SOCKS4a, SOCKS5), and whether the
//! proxy agreed.
//!
//! A proxied flow's remote is the proxy; the destination that matters is the one the client
//! named in its first bytes. [`SocksTracker`] follows a SOCKS handshake from both directions
//! (greeting, method choice, CONNECT request, reply) over bounded buffers, so a message split
//! across segments is still read; [`http_proxy_target`] turns a parsed HTTP request into a
//! target. Guarantees: no panic on any bytes; at most [`SOCKS_BUFFER_MAX`] bytes held per
//! direction; names go through [`super::clean_name`] (lower-case, escaped, capped), and a name
//! that holds a byte no hostname may hold is refused rather than guessed at.
//!
//! References: SOCKS4 and SOCKS4a (the NEC protocol notes, "SOCKS: A protocol for TCP proxy
//! across firewalls" and "SOCKS 4A: A Simple Extension to SOCKS 4 Protocol"), SOCKS5 (RFC 1928),
//! HTTP CONNECT and absolute-form targets (RFC 9110 §9.3.6, RFC 9112 §3.2.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::http::{self, HttpRequest, TargetForm};
use super::{be16, clean_name};

/// Bytes of each direction of a SOCKS handshake held at most. The longest message is a SOCKS5
/// request with a 255-byte name (4 + 1 + 255 + 2 bytes); SOCKS4 user ids longer than what fits
/// are refused.
pub const SOCKS_BUFFER_MAX: usize = 512;

/// What kind of proxy a client talked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// An HTTP proxy: `CONNECT host:port` or an absolute-form request target.
    Http,
    Socks4,
    Socks5,
}

impl ProxyKind {
    /// The `via.kind` written in events and used by `via_kinds`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyKind::Http => "http-proxy",
            ProxyKind::Socks4 => "socks4",
            ProxyKind::Socks5 => "socks5",
        }
    }
}

/// The destination a client asked a proxy for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    pub kind: ProxyKind,
    /// The name, when the client gave one (SOCKS4a, SOCKS5 domain, HTTP host that is not an
    /// address literal); cleaned like every name.
    pub host: Option<String>,
    /// The address, when the client gave a literal.
    pub addr: Option<IpAddr>,
    pub port: u16,
    /// The client asked for a tunnel (CONNECT, SOCKS): the remote is a proxy for sure. An
    /// absolute-form request may also be sent to the origin server itself (some clients do), so
    /// the engine needs more evidence before calling its remote a proxy.
    pub tunnel: bool,
}

/// Why bytes were not a proxy message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a proxy handshake")]
    NotProxy,
    #[error("proxy message incomplete")]
    Incomplete,
}

/// SOCKS command CONNECT (SOCKS4 `CD = 1`, RFC 1928 §4 `CMD = X'01'`).
const SOCKS_CONNECT: u8 = 1;
/// SOCKS command BIND.
const SOCKS_BIND: u8 = 2;
/// SOCKS5 UDP ASSOCIATE.
const SOCKS5_UDP_ASSOCIATE: u8 = 3;
/// SOCKS4 reply code "request granted".
const SOCKS4_GRANTED: u8 = 90;

/// A host given as text: an address literal becomes `addr`, anything else a cleaned name.
/// `None` when it is empty or holds a byte no hostname may hold.
fn host_or_addr(raw: &[u8]) -> Option<(Option<String>, Option<IpAddr>)> {
    if raw.is_empty()
        || raw
            .iter()
            .any(|&b| b <= 0x20 || b == 0x7f || b"/\\@?#<>\"{}|^`".contains(&b))
    {
        return None;
    }
    if let Some(addr) = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok())
    {
        return Some((None, Some(addr)));
    }
    Some((Some(clean_name(raw)), None))
}

/// Reads a NUL-terminated string starting at `at`: its bytes and the offset after the NUL.
fn nul_terminated(b: &[u8], at: usize) -> Result<(&[u8], usize), ProxyError> {
    let rest = b.get(at..).ok_or(ProxyError::Incomplete)?;
    match rest.iter().position(|&c| c == 0) {
        Some(n) => Ok((rest.get(..n).ok_or(ProxyError::NotProxy)?, at + n + 1)),
        None if b.len() >= SOCKS_BUFFER_MAX => Err(ProxyError::NotProxy),
        None => Err(ProxyError::Incomplete),
    }
}

/// Parses a SOCKS4 or SOCKS4a request: `VN=4 CD DSTPORT DSTIP USERID NUL [HOST NUL]`, the host
/// present when DSTIP is `0.0.0.x` with x ≠ 0 (SOCKS4a). Returns the target and the bytes used.
pub fn parse_socks4_request(b: &[u8]) -> Result<(ProxyTarget, usize), ProxyError> {
    match b {
        [] | [4] | [4, SOCKS_CONNECT | SOCKS_BIND] => return Err(ProxyError::Incomplete),
        [4, SOCKS_CONNECT | SOCKS_BIND, ..] => {}
        _ => return Err(ProxyError::NotProxy),
    }
    if b.len() < 9 {
        return Err(ProxyError::Incomplete);
    }
    let port = be16(b, 2).ok_or(ProxyError::Incomplete)?;
    let ip = match b.get(4..8) {
        Some(&[w, x, y, z]) => Ipv4Addr::new(w, x, y, z),
        _ => return Err(ProxyError::Incomplete),
    };
    let (user, mut end) = nul_terminated(b, 8)?;
    // The user id is text; a binary blob here is some other protocol.
    if user.iter().any(|&c| !(0x20..0x7f).contains(&c)) {
        return Err(ProxyError::NotProxy);
    }
    let o = ip.octets();
    let (host, addr) = if o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] != 0 {
        let (name, after) = nul_terminated(b, end)?;
        end = after;
        host_or_addr(name).ok_or(ProxyError::NotProxy)?
    } else {
        (None, Some(IpAddr::V4(ip)))
    };
    if port == 0 {
        return Err(ProxyError::NotProxy);
    }
    Ok((
        ProxyTarget {
            kind: ProxyKind::Socks4,
            host,
            addr,
            port,
            tunnel: true,
        },
        end,
    ))
}

/// Parses a SOCKS5 greeting `VER=5 NMETHODS METHODS…` (RFC 1928 §3); returns the bytes used.
pub fn parse_socks5_greeting(b: &[u8]) -> Result<usize, ProxyError> {
    match b {
        [] | [5] => Err(ProxyError::Incomplete),
        [5, 0, ..] => Err(ProxyError::NotProxy),
        [5, n, rest @ ..] => {
            let n = usize::from(*n);
            if rest.len() < n {
                Err(ProxyError::Incomplete)
            } else {
                Ok(2 + n)
            }
        }
        _ => Err(ProxyError::NotProxy),
    }
}

/// Parses a SOCKS5 request `VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT` (RFC 1928 §4) with an IPv4
/// (1), domain (3) or IPv6 (4) address; returns the target and the bytes used.
pub fn parse_socks5_request(b: &[u8]) -> Result<(ProxyTarget, usize), ProxyError> {
    let (cmd, atyp) = match b {
        [] | [5] | [5, _] | [5, _, 0] => return Err(ProxyError::Incomplete),
        [5, cmd, 0, atyp, ..] => (*cmd, *atyp),
        _ => return Err(ProxyError::NotProxy),
    };
    if !matches!(cmd, SOCKS_CONNECT | SOCKS_BIND | SOCKS5_UDP_ASSOCIATE) {
        return Err(ProxyError::NotProxy);
    }
    let (host, addr, at) = match atyp {
        1 => match b.get(4..8) {
            Some(&[w, x, y, z]) => (None, Some(IpAddr::V4(Ipv4Addr::new(w, x, y, z))), 8),
            _ => return Err(ProxyError::Incomplete),
        },
        4 => {
            let raw: [u8; 16] = b
                .get(4..20)
                .and_then(|s| s.try_into().ok())
                .ok_or(ProxyError::Incomplete)?;
            (None, Some(IpAddr::V6(Ipv6Addr::from(raw))), 20)
        }
        3 => {
            let len = usize::from(*b.get(4).ok_or(ProxyError::Incomplete)?);
            if len == 0 {
                return Err(ProxyError::NotProxy);
            }
            let name = b.get(5..5 + len).ok_or(ProxyError::Incomplete)?;
            let (host, addr) = host_or_addr(name).ok_or(ProxyError::NotProxy)?;
            (host, addr, 5 + len)
        }
        _ => return Err(ProxyError::NotProxy),
    };
    let port = be16(b, at).ok_or(ProxyError::Incomplete)?;
    Ok((
        ProxyTarget {
            kind: ProxyKind::Socks5,
            host,
            addr,
            port,
            tunnel: true,
        },
        at + 2,
    ))
}

/// Whether a client's first bytes look like the start of a SOCKS handshake: a SOCKS4 request
/// (version 4, CONNECT or BIND, a text user id ending in NUL), or a SOCKS5 greeting whose
/// method count matches its length (optionally followed at once by its request).
pub fn looks_like_socks(b: &[u8]) -> Option<ProxyKind> {
    match b.first() {
        Some(4) => parse_socks4_request(b)
            .ok()
            .filter(|(_, used)| *used == b.len())
            .map(|_| ProxyKind::Socks4),
        Some(5) => {
            let used = parse_socks5_greeting(b).ok()?;
            let rest = b.get(used..)?;
            (rest.is_empty() || parse_socks5_request(rest).is_ok()).then_some(ProxyKind::Socks5)
        }
        _ => None,
    }
}

/// Where a SOCKS handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum SocksStage {
    /// Waiting for the client's first message.
    #[default]
    Start,
    /// SOCKS5: greeting read, waiting for the server's method choice and then the request.
    Greeted,
    /// The request was read: waiting for the server's reply.
    Requested,
    /// The reply came (or the handshake was given up): nothing more to read.
    Done,
}

/// Follows one SOCKS handshake, both directions, over bounded buffers.
#[derive(Clone, Debug, Default)]
pub struct SocksTracker {
    stage: SocksStage,
    kind: Option<ProxyKind>,
    client: Vec<u8>,
    server: Vec<u8>,
    /// Server bytes that belong to the method choice (SOCKS5), already accounted for.
    server_skip: usize,
    /// The target the client asked for.
    pub target: Option<ProxyTarget>,
    /// `Some(true)` when the server granted the request, `Some(false)` when it refused.
    pub granted: Option<bool>,
}

fn push_bounded(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = SOCKS_BUFFER_MAX.saturating_sub(buf.len());
    buf.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
}

impl SocksTracker {
    /// Whether the handshake is over (reply seen, or given up): later bytes are the tunnelled
    /// stream.
    pub fn is_done(&self) -> bool {
        self.stage == SocksStage::Done
    }

    /// Client bytes, in order. True when the target became known.
    pub fn push_client(&mut self, bytes: &[u8]) -> bool {
        if matches!(self.stage, SocksStage::Requested | SocksStage::Done) {
            return false;
        }
        push_bounded(&mut self.client, bytes);
        self.advance()
    }

    /// Server bytes, in order. True when the reply (granted or not) was read.
    pub fn push_server(&mut self, bytes: &[u8]) -> bool {
        if self.stage == SocksStage::Done {
            return false;
        }
        push_bounded(&mut self.server, bytes);
        let before = self.granted;
        self.advance();
        before != self.granted
    }

    /// Reads what the buffers hold; true when the target became known.
    fn advance(&mut self) -> bool {
        let had_target = self.target.is_some();
        loop {
            let before = self.stage;
            match self.stage {
                SocksStage::Start => match self.client.first() {
                    Some(4) => match parse_socks4_request(&self.client) {
                        Ok((t, _)) => {
                            self.kind = Some(ProxyKind::Socks4);
                            self.target = Some(t);
                            self.stage = SocksStage::Requested;
                        }
                        Err(ProxyError::Incomplete) => {}
                        Err(ProxyError::NotProxy) => self.give_up(),
                    },
                    Some(5) => match parse_socks5_greeting(&self.client) {
                        Ok(used) => {
                            self.kind = Some(ProxyKind::Socks5);
                            self.client.drain(..used.min(self.client.len()));
                            self.stage = SocksStage::Greeted;
                        }
                        Err(ProxyError::Incomplete) => {}
                        Err(ProxyError::NotProxy) => self.give_up(),
                    },
                    Some(_) => self.give_up(),
                    None => {}
                },
                SocksStage::Greeted => {
                    // The method choice: VER=5 METHOD (RFC 1928 §3); 0xff: none acceptable.
                    if self.server_skip == 0 {
                        match self.server.get(..2) {
                            Some(&[5, 0xff]) => {
                                self.granted = Some(false);
                                self.stage = SocksStage::Done;
                            }
                            Some(&[5, _]) => self.server_skip = 2,
                            Some(_) => self.give_up(),
                            None => {}
                        }
                    }
                    // Sub-negotiation (user/password, RFC 1929) happens between: the request
                    // is the first client message that parses as one after the greeting.
                    if self.stage == SocksStage::Greeted {
                        match parse_socks5_request(&self.client) {
                            Ok((t, _)) => {
                                self.target = Some(t);
                                self.stage = SocksStage::Requested;
                            }
                            Err(ProxyError::Incomplete) => {}
                            Err(ProxyError::NotProxy) => {
                                // RFC 1929 §2: VER=1 ULEN UNAME PLEN PASSWD; skip it.
                                match skip_userpass(&self.client) {
                                    Some(used) => {
                                        self.client.drain(..used.min(self.client.len()));
                                    }
                                    None if self.client.first() == Some(&1) => {}
                                    None => self.give_up(),
                                }
                            }
                        }
                    }
                }
                SocksStage::Requested => {
                    let reply = self.server.get(self.server_skip..).unwrap_or(&[]);
                    let reply = match self.kind {
                        // RFC 1929 §2 status reply: VER=1 STATUS, before the request's reply.
                        Some(ProxyKind::Socks5) if reply.first() == Some(&1) => match reply {
                            [1, 0, ..] => {
                                self.server_skip += 2;
                                continue;
                            }
                            [1, _, ..] => {
                                self.granted = Some(false);
                                self.stage = SocksStage::Done;
                                continue;
                            }
                            _ => reply,
                        },
                        _ => reply,
                    };
                    match (self.kind, reply) {
                        // SOCKS4 reply: VN=0 CD=90 granted (91..93 refused).
                        (Some(ProxyKind::Socks4), [0, cd, ..]) => {
                            self.granted = Some(*cd == SOCKS4_GRANTED);
                            self.stage = SocksStage::Done;
                        }
                        // SOCKS5 reply: VER=5 REP=0 succeeded (RFC 1928 §6).
                        (Some(ProxyKind::Socks5), [5, rep, ..]) => {
                            self.granted = Some(*rep == 0);
                            self.stage = SocksStage::Done;
                        }
                        (_, [] | [_]) => {}
                        _ => {
                            self.stage = SocksStage::Done;
                        }
                    }
                }
                SocksStage::Done => {}
            }
            if self.stage == before {
                break;
            }
        }
        if self.stage == SocksStage::Done {
            self.client = Vec::new();
            self.server = Vec::new();
        }
        !had_target && self.target.is_some()
    }

    fn give_up(&mut self) {
        self.stage = SocksStage::Done;
    }
}

/// The bytes of an RFC 1929 username/password request at the start of `b`, if whole.
fn skip_userpass(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&1) {
        return None;
    }
    let ulen = usize::from(*b.get(1)?);
    let plen = usize::from(*b.get(2 + ulen)?);
    let used = 3 + ulen + plen;
    (b.len() >= used).then_some(used)
}

/// The destination of an HTTP request sent to a proxy: the authority of a `CONNECT`, or the
/// host of an absolute-form target (`http://host:port/…`, port 80 by default, 443 for
/// `https://`). `None` for an ordinary request (origin-form), or when no host could be read.
pub fn http_proxy_target(req: &HttpRequest) -> Option<ProxyTarget> {
    let host = req.host.as_deref()?;
    let port = match req.form {
        TargetForm::Authority => req.port?,
        TargetForm::Absolute => req.port.unwrap_or_else(|| {
            let t = req.target.as_bytes();
            if t.len() >= 8
                && t.get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"https://"))
            {
                443
            } else {
                80
            }
        }),
        TargetForm::Origin | TargetForm::Asterisk => return None,
    };
    let (host, addr) = match host.parse::<IpAddr>() {
        Ok(a) => (None, Some(a)),
        Err(_) => (Some(host.to_owned()), None),
    };
    Some(ProxyTarget {
        kind: ProxyKind::Http,
        host,
        addr,
        port,
        tunnel: req.form == TargetForm::Authority,
    })
}

/// Whether an HTTP proxy's answer to CONNECT granted it (a 2xx status, RFC 9110 §9.3.6).
pub fn connect_granted(response: &[u8]) -> Option<bool> {
    http::parse_response_status(response)
        .ok()
        .map(|s| (200..300).contains(&s.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, in any split, both directions: no panic, buffers bounded, and a target
        /// only ever from a request that parses on its own.
        #[test]
        fn tracker_never_panics(chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12)) {
            let mut tr = SocksTracker::default();
            for (client, bytes) in &chunks {
                if *client { tr.push_client(bytes); } else { tr.push_server(bytes); }
                prop_assert!(tr.client.len() <= SOCKS_BUFFER_MAX && tr.server.len() <= SOCKS_BUFFER_MAX);
            }
            if let Some(t) = &tr.target {
                prop_assert!(t.host.as_deref().is_none_or(|h| !h.chars().any(char::is_control)));
            }
            let all: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.clone()).collect();
            let _ = looks_like_socks(&all);
            let _ = crate::names::redirect::parse_redirect(&all);
        }

        /// A redirect head with random bytes in its Location: no panic, no control character out.
        #[test]
        fn random_locations(loc in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut head = b"HTTP/1.1 302 Found\r\nLocation: ".to_vec();
            head.extend_from_slice(&loc);
            head.extend_from_slice(b"\r\n\r\n");
            if let Ok(Some(r)) = crate::names::redirect::parse_redirect(&head) {
                prop_assert!(!r.location.chars().any(char::is_control));
                prop_assert!(r.host.as_deref().is_none_or(|h| !h.chars().any(char::is_control)));
            }
        }
    }

    fn v4(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn socks4_and_4a_requests() {
        // From ndpi_socks.pcap: SOCKS4 to 93.184.216.119:80, user id empty.
        let b = [4, 1, 0, 0x50, 0x5d, 0xb8, 0xd8, 0x77, 0];
        let (t, used) = parse_socks4_request(&b).unwrap();
        assert_eq!(
            (t.addr, t.host, t.port, used),
            (v4("93.184.216.119"), None, 80, 9)
        );
        let mut a = vec![4, 1, 0, 0x50, 0, 0, 0, 1];
        a.extend_from_slice(b"me\0www.example.com\0");
        let (t, used) = parse_socks4_request(&a).unwrap();
        assert_eq!(t.host.as_deref(), Some("www.example.com"));
        assert_eq!((t.addr, used), (None, a.len()));
        assert_eq!(looks_like_socks(&a), Some(ProxyKind::Socks4));
        // Truncated at every length: incomplete, never a panic or a wrong target.
        for n in 0..a.len() {
            assert_eq!(
                parse_socks4_request(&a[..n]).unwrap_err(),
                ProxyError::Incomplete
            );
        }
    }

    #[test]
    fn socks5_greeting_and_requests() {
        assert_eq!(parse_socks5_greeting(&[5, 1, 0]), Ok(3));
        assert_eq!(
            parse_socks5_greeting(&[5, 2, 0]),
            Err(ProxyError::Incomplete)
        );
        assert_eq!(parse_socks5_greeting(&[5, 0]), Err(ProxyError::NotProxy));
        let mut d = vec![5, 1, 0, 3, 14];
        d.extend_from_slice(b"www.google.com");
        d.extend_from_slice(&[0, 80]);
        let (t, used) = parse_socks5_request(&d).unwrap();
        assert_eq!(
            (t.host.as_deref(), t.port, used),
            (Some("www.google.com"), 80, d.len())
        );
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&"2001:db8:86::7".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[1, 187]);
        let (t, _) = parse_socks5_request(&v6).unwrap();
        assert_eq!(
            (t.addr, t.port),
            (Some("2001:db8:86::7".parse().unwrap()), 443)
        );
        for n in 0..v6.len() {
            assert_eq!(
                parse_socks5_request(&v6[..n]).unwrap_err(),
                ProxyError::Incomplete
            );
        }
        // A domain that is an address literal is an address.
        let mut lit = vec![5, 1, 0, 3, 11];
        lit.extend_from_slice(b"198.18.1.10");
        lit.extend_from_slice(&[0, 80]);
        assert_eq!(
            parse_socks5_request(&lit).unwrap().0.addr,
            v4("198.18.1.10")
        );
    }

    #[test]
    fn hostile_socks_bytes() {
        // Control characters or a slash in a name: refused.
        let mut bad = vec![5, 1, 0, 3, 5];
        bad.extend_from_slice(b"a\nb.c");
        bad.extend_from_slice(&[0, 80]);
        assert_eq!(parse_socks5_request(&bad), Err(ProxyError::NotProxy));
        // Invalid UTF-8 in a name: escaped like every name.
        let mut utf = vec![5, 1, 0, 3, 5];
        utf.extend_from_slice(b"\xffa.CN");
        utf.extend_from_slice(&[0, 80]);
        let (t, _) = parse_socks5_request(&utf).unwrap();
        assert_eq!(t.host.as_deref(), Some("\\xffa.cn"));
        // A SOCKS4 user id that never ends: refused once the buffer is full.
        let mut long = vec![4, 1, 0, 80, 1, 2, 3, 4];
        long.resize(SOCKS_BUFFER_MAX, b'a');
        assert_eq!(parse_socks4_request(&long), Err(ProxyError::NotProxy));
        // Unknown command or address type.
        assert_eq!(
            parse_socks5_request(&[5, 9, 0, 1, 1, 2, 3, 4, 0, 80]),
            Err(ProxyError::NotProxy)
        );
        assert_eq!(
            parse_socks5_request(&[5, 1, 0, 7, 1]),
            Err(ProxyError::NotProxy)
        );
        // Not SOCKS at all.
        assert_eq!(looks_like_socks(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(looks_like_socks(&[5, 200, 0]), None);
        assert_eq!(looks_like_socks(&[4, 1, 0, 80, 1, 2, 3, 4, 0xc3, 0]), None);
        // A tracker fed huge garbage stays bounded and gives up.
        let mut tr = SocksTracker::default();
        for _ in 0..100 {
            tr.push_client(&[5, 255, 1, 2, 3, 4, 5, 6, 7, 8]);
            tr.push_server(&[0xaa; 1000]);
        }
        assert!(tr.is_done());
        assert!(tr.client.len() <= SOCKS_BUFFER_MAX && tr.server.len() <= SOCKS_BUFFER_MAX);
    }

    #[test]
    fn tracker_follows_a_split_socks5_handshake() {
        let mut tr = SocksTracker::default();
        assert!(!tr.push_client(&[5]));
        assert!(!tr.push_client(&[2, 0, 2]));
        assert!(!tr.push_server(&[5, 2]));
        // RFC 1929 user/password, then the request in two pieces.
        assert!(!tr.push_client(&[1, 1, b'u', 1, b'p']));
        assert!(!tr.push_server(&[1, 0]));
        assert!(!tr.push_client(&[5, 1, 0, 1, 198, 18]));
        assert!(tr.push_client(&[1, 10, 0x01, 0xbb]));
        assert_eq!(tr.target.as_ref().unwrap().addr, v4("198.18.1.10"));
        assert!(!tr.is_done());
        assert!(tr.push_server(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        assert_eq!(tr.granted, Some(true));
        assert!(tr.is_done());
        // A refused SOCKS4 request.
        let mut tr = SocksTracker::default();
        assert!(tr.push_client(&[4, 1, 0, 80, 198, 18, 1, 10, 0]));
        assert!(tr.push_server(&[0, 91, 0, 0, 0, 0, 0, 0]));
        assert_eq!(tr.granted, Some(false));
    }

    #[test]
    fn http_proxy_requests() {
        let r =
            http::parse_request(b"CONNECT api.vendor.cn:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let t = http_proxy_target(&r).unwrap();
        assert_eq!(
            (t.host.as_deref(), t.port, t.kind),
            (Some("api.vendor.cn"), 443, ProxyKind::Http)
        );
        let r = http::parse_request(b"CONNECT [2001:db8:86::7]:8443 HTTP/1.1\r\n\r\n").unwrap();
        let t = http_proxy_target(&r).unwrap();
        assert_eq!(
            (t.addr, t.port),
            (Some("2001:db8:86::7".parse().unwrap()), 8443)
        );
        let r = http::parse_request(b"GET http://198.18.1.10/fw.bin HTTP/1.1\r\n\r\n").unwrap();
        let t = http_proxy_target(&r).unwrap();
        assert_eq!((t.addr, t.port), (v4("198.18.1.10"), 80));
        let r = http::parse_request(b"GET HTTPS://Example.ORG/ HTTP/1.1\r\n\r\n").unwrap();
        let t = http_proxy_target(&r).unwrap();
        assert_eq!((t.host.as_deref(), t.port), (Some("example.org"), 443));
        let r = http::parse_request(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n").unwrap();
        assert_eq!(
            http_proxy_target(&r),
            None,
            "origin-form is not a proxy request"
        );
        // CONNECT without a port is not a valid authority-form target.
        let r = http::parse_request(b"CONNECT example.org HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(http_proxy_target(&r), None);
        assert_eq!(
            connect_granted(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(true)
        );
        assert_eq!(
            connect_granted(b"HTTP/1.1 407 Proxy Authentication Required\r\n"),
            Some(false)
        );
        assert_eq!(connect_granted(b"\x16\x03\x01"), None);
    }
}
