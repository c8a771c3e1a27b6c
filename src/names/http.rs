//! Plaintext HTTP/1.x: the request line and `Host` header of a request (RFC 9112 §3, RFC 9110
//! §7.2), and the status line of a response (RFC 9112 §4).
//!
//! The caller passes the first client payload of a flow (the first request names the flow).
//! Guarantees: no panic on any bytes; at most [`HTTP_HEAD_MAX_BYTES`] are looked at; the host
//! goes through [`super::clean_name`], so it never carries a control character; a host with
//! bytes no hostname may hold (space, `/`, `@`, …) is refused rather than guessed at.

use super::{Escape, NameBuilder, clean_name};

/// Bytes of a message head scanned for the request line and the Host header.
pub const HTTP_HEAD_MAX_BYTES: usize = 8 * 1024;
/// Longest method token accepted (the registered ones are at most 17 characters).
pub const HTTP_METHOD_MAX: usize = 24;
/// Request target characters kept (longer ones are cut with the name truncation marker).
pub const HTTP_TARGET_MAX_CHARS: usize = super::NAME_MAX_CHARS;

/// Why a payload gave no request or status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("not an HTTP/1.x message")]
    NotHttp,
    #[error("HTTP request line incomplete")]
    Incomplete,
}

/// How the request target names the resource (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host/path` (proxies).
    Absolute,
    /// `host:port` (CONNECT).
    Authority,
    /// `*` (OPTIONS).
    Asterisk,
}

/// What a request line and its Host header say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method token, as sent (methods are case-sensitive, RFC 9110 §9.1).
    pub method: String,
    /// The request target, cleaned and cut at [`HTTP_TARGET_MAX_CHARS`].
    pub target: String,
    pub form: TargetForm,
    /// Minor version: 0 or 1.
    pub minor_version: u8,
    /// The host, lower-case, without port or IPv6 brackets: from an absolute-form or authority-
    /// form target when there is one (RFC 9112 §3.2.2: "the server MUST ignore the received Host
    /// header field … and instead use the host information of the request-target"), else from
    /// the Host header.
    pub host: Option<String>,
    /// The port given with that host, if any.
    pub port: Option<u16>,
}

/// A response's status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpStatus {
    pub minor_version: u8,
    pub code: u16,
}

/// The line starting at `pos`, without its CR LF (or bare LF); `None` when no line end is
/// within the scanned head.
fn line(head: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = head.get(pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let l = rest.get(..nl)?;
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    Some((l, pos + nl + 1))
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads `HTTP/1.x`, giving x.
fn http1_version(v: &[u8]) -> Option<u8> {
    match v {
        b"HTTP/1.0" => Some(0),
        b"HTTP/1.1" => Some(1),
        _ => None,
    }
}

/// Parses the request line and finds the host of an HTTP/1.x request.
///
/// Returns [`HttpError::Incomplete`] when the bytes start like a request but its line does not
/// end within them (and within [`HTTP_HEAD_MAX_BYTES`]). A request whose Host header was not
/// reached in the bytes given has `host: None`.
pub fn parse_request(payload: &[u8]) -> Result<HttpRequest, HttpError> {
    let head = payload.get(..HTTP_HEAD_MAX_BYTES).unwrap_or(payload);
    // The method must appear at once, before any line end: refuse early on other protocols.
    let sp = head
        .iter()
        .take(HTTP_METHOD_MAX + 1)
        .position(|&b| b == b' ')
        .ok_or(
            if head.len() <= HTTP_METHOD_MAX && head.iter().all(|&b| is_tchar(b)) {
                HttpError::Incomplete
            } else {
                HttpError::NotHttp
            },
        )?;
    let method = head.get(..sp).ok_or(HttpError::NotHttp)?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::NotHttp);
    }
    let Some((request_line, mut pos)) = line(head, 0) else {
        return Err(if head.len() < HTTP_HEAD_MAX_BYTES {
            HttpError::Incomplete
        } else {
            HttpError::NotHttp
        });
    };
    // method SP request-target SP HTTP-version (RFC 9112 §3).
    let mut parts = request_line.splitn(3, |&b| b == b' ');
    let _ = parts.next();
    let target = parts.next().ok_or(HttpError::NotHttp)?;
    let version = parts.next().ok_or(HttpError::NotHttp)?;
    let minor_version = http1_version(version).ok_or(HttpError::NotHttp)?;
    if target.is_empty() {
        return Err(HttpError::NotHttp);
    }
    let (form, mut host, mut port) = if method == b"CONNECT" {
        let (h, p) = split_host_port(target).ok_or(HttpError::NotHttp)?;
        (TargetForm::Authority, Some(h), p)
    } else if target == b"*" {
        (TargetForm::Asterisk, None, None)
    } else if target.first() == Some(&b'/') {
        (TargetForm::Origin, None, None)
    } else if let Some(authority) = absolute_authority(target) {
        match split_host_port(authority) {
            Some((h, p)) => (TargetForm::Absolute, Some(h), p),
            None => (TargetForm::Absolute, None, None),
        }
    } else {
        return Err(HttpError::NotHttp);
    };
    if host.is_none() {
        // Header fields: name ":" OWS value OWS (RFC 9112 §5).
        while let Some((l, next)) = line(head, pos) {
            if l.is_empty() {
                break;
            }
            pos = next;
            let Some(colon) = l.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = l.split_at(colon);
            if name.eq_ignore_ascii_case(b"host") {
                let value = value.get(1..).unwrap_or(&[]).trim_ascii();
                if let Some((h, p)) = split_host_port(value) {
                    host = Some(h);
                    port = p;
                }
                break;
            }
        }
    }
    Ok(HttpRequest {
        method: String::from_utf8_lossy(method).into_owned(),
        target: clean_target(target),
        form,
        minor_version,
        host,
        port,
    })
}

/// The target, cleaned like a name but keeping its case (paths are case-sensitive).
fn clean_target(t: &[u8]) -> String {
    let mut b = NameBuilder::new(Escape::Hex).keep_case();
    b.bytes(t, false);
    b.finish()
}

/// The authority of `scheme://authority/...` (RFC 3986 §3), without userinfo.
fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = target.get(..sep)?;
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return None;
    }
    let rest = target.get(sep + 3..)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    // userinfo@host: the host is after the last '@'.
    Some(match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => authority.get(at + 1..)?,
        None => authority,
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` (RFC 9110 §7.2, RFC 3986 §3.2.2). `None`
/// when the host is empty or holds a byte no hostname or address literal may hold.
pub fn split_host_port(s: &[u8]) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix(b"[") {
        let close = rest.iter().position(|&b| b == b']')?;
        let host = rest.get(..close)?;
        let after = rest.get(close + 1..)?;
        let port = match after {
            [] => None,
            [b':', p @ ..] => Some(p),
            _ => return None,
        };
        if !host
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b":.%".contains(b))
        {
            return None;
        }
        (host, port)
    } else {
        match s.iter().rposition(|&b| b == b':') {
            Some(c) => (s.get(..c)?, Some(s.get(c + 1..)?)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host
            .iter()
            .any(|&b| b <= 0x20 || b == 0x7f || b"/\\@?#[]<>\"{}|^`".contains(&b))
    {
        return None;
    }
    let port = match port {
        None | Some([]) => None,
        Some(p) => Some(std::str::from_utf8(p).ok()?.parse::<u16>().ok()?),
    };
    Some((clean_name(host), port))
}

/// Parses a response status line `HTTP/1.x NNN reason` (RFC 9112 §4).
pub fn parse_response_status(payload: &[u8]) -> Result<HttpStatus, HttpError> {
    let prefix = b"HTTP/1.";
    let n = payload.len().min(prefix.len());
    if payload.get(..n) != prefix.get(..n) {
        return Err(HttpError::NotHttp);
    }
    // "HTTP/1.x NNN" is 12 bytes; the reason phrase may be empty.
    let Some(head) = payload.get(..12) else {
        return Err(HttpError::Incomplete);
    };
    let minor_version =
        http1_version(head.get(..8).ok_or(HttpError::NotHttp)?).ok_or(HttpError::NotHttp)?;
    if head.get(8) != Some(&b' ') {
        return Err(HttpError::NotHttp);
    }
    let digits = head.get(9..12).ok_or(HttpError::NotHttp)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::NotHttp);
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    match payload.get(12) {
        None | Some(b' ' | b'\r' | b'\n') => Ok(HttpStatus {
            minor_version,
            code,
        }),
        _ => Err(HttpError::NotHttp),
    }
}
