//! HTTP redirects: the status and `Location` of a plaintext HTTP/1.x response head (RFC 9110
//! §15.4, §10.2.2), and the host and port the `Location` points to.
//!
//! Guarantees: no panic on any bytes; at most [`super::http::HTTP_HEAD_MAX_BYTES`] looked at;
//! the host goes through [`super::clean_name`] (lower-case, escaped, capped) and the whole
//! `Location` is kept cleaned and cut at [`LOCATION_MAX_CHARS`]; a host holding a byte no
//! hostname may hold is refused.

use std::net::IpAddr;

use super::http::{self, HTTP_HEAD_MAX_BYTES, HttpError};
use super::{Escape, NameBuilder};

/// Characters of a `Location` kept for output (longer ones are cut with the truncation marker).
pub const LOCATION_MAX_CHARS: usize = super::NAME_MAX_CHARS;

/// A 3xx response and where it sends the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub status: u16,
    /// The `Location` value, cleaned (case kept) and cut at [`LOCATION_MAX_CHARS`].
    pub location: String,
    /// The target's name; `None` for a relative reference (same host) or an address literal.
    pub host: Option<String>,
    /// The target's address, when the `Location` holds a literal.
    pub addr: Option<IpAddr>,
    /// The port given, or the scheme's (80 for `http`, 443 for `https`); `None` when neither.
    pub port: Option<u16>,
}

impl Redirect {
    /// Whether the target is another host than the one that answered (a relative reference
    /// stays on the same host).
    pub fn has_host(&self) -> bool {
        self.host.is_some() || self.addr.is_some()
    }
}

/// Reads a response head: `Ok(Some)` for a 3xx with a `Location`, `Ok(None)` for any other
/// complete status line (or a 3xx whose `Location` was not found in the head),
/// [`HttpError::Incomplete`] while the head may still be growing.
pub fn parse_redirect(head: &[u8]) -> Result<Option<Redirect>, HttpError> {
    let head = head.get(..HTTP_HEAD_MAX_BYTES).unwrap_or(head);
    let status = http::parse_response_status(head)?;
    if !(300..400).contains(&status.code) {
        return Ok(None);
    }
    let complete = head.windows(4).any(|w| w == b"\r\n\r\n")
        || head.windows(2).any(|w| w == b"\n\n")
        || head.len() >= HTTP_HEAD_MAX_BYTES;
    for l in head.split(|&b| b == b'\n').skip(1) {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.is_empty() {
            break;
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = l.split_at(colon);
        if !name.eq_ignore_ascii_case(b"location") {
            continue;
        }
        let value = value.get(1..).unwrap_or(&[]).trim_ascii();
        if value.is_empty() {
            return Ok(None);
        }
        return Ok(Some(location_target(status.code, value)));
    }
    if complete {
        Ok(None)
    } else {
        Err(HttpError::Incomplete)
    }
}

/// The host and port a `Location` reference names (RFC 3986 §4.2: absolute, scheme-relative
/// `//host/…`, or relative).
fn location_target(status: u16, value: &[u8]) -> Redirect {
    let mut b = NameBuilder::new(Escape::Hex).keep_case();
    b.bytes(value.get(..LOCATION_MAX_CHARS + 1).unwrap_or(value), false);
    let location = b.finish();
    let (scheme, rest) = match value.windows(3).position(|w| w == b"://") {
        Some(sep)
            if value.get(..sep).is_some_and(|s| {
                !s.is_empty()
                    && s.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
            }) =>
        {
            (value.get(..sep), value.get(sep + 3..))
        }
        _ => match value.strip_prefix(b"//") {
            Some(r) => (None, Some(r)),
            None => (None, None),
        },
    };
    let mut out = Redirect {
        status,
        location,
        host: None,
        addr: None,
        port: None,
    };
    let Some(rest) = rest else {
        return out;
    };
    let end = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?' || c == b'#')
        .unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or(&[]);
    let authority = match authority.iter().rposition(|&c| c == b'@') {
        Some(at) => authority.get(at + 1..).unwrap_or(&[]),
        None => authority,
    };
    let Some((host, port)) = http::split_host_port(authority) else {
        return out;
    };
    let default_port = match scheme {
        Some(s) if s.eq_ignore_ascii_case(b"http") => Some(80),
        Some(s) if s.eq_ignore_ascii_case(b"https") => Some(443),
        _ => None,
    };
    out.port = port.or(default_port);
    match host.parse::<IpAddr>() {
        Ok(a) => out.addr = Some(a),
        Err(_) => out.host = Some(host),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(head: &str) -> Redirect {
        parse_redirect(head.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn absolute_relative_and_literal_locations() {
        let r =
            red("HTTP/1.1 302 Found\r\nServer: x\r\nLocation: http://B.Example:8080/p?q\r\n\r\n");
        assert_eq!(
            (r.status, r.host.as_deref(), r.port),
            (302, Some("b.example"), Some(8080))
        );
        assert_eq!(r.location, "http://B.Example:8080/p?q");
        let r = red("HTTP/1.1 301 Moved\r\nlocation:https://user@cdn.example.cn/\r\n\r\n");
        assert_eq!(
            (r.host.as_deref(), r.port),
            (Some("cdn.example.cn"), Some(443))
        );
        let r = red("HTTP/1.0 307 x\r\nLocation: http://[2001:db8:86::7]/\r\n\r\n");
        assert_eq!(r.addr, Some("2001:db8:86::7".parse().unwrap()));
        let r = red("HTTP/1.1 308 x\r\nLocation: //198.18.1.10:81/x\r\n\r\n");
        assert_eq!(
            (r.addr, r.port),
            (Some("198.18.1.10".parse().unwrap()), Some(81))
        );
        let r = red("HTTP/1.1 302 x\r\nLocation: /login\r\n\r\n");
        assert!(!r.has_host());
        let r = red("HTTP/1.1 302 x\r\nLocation: ftp://files.example/x\r\n\r\n");
        assert_eq!((r.host.as_deref(), r.port), (Some("files.example"), None));
    }

    #[test]
    fn other_statuses_and_incomplete_heads() {
        assert_eq!(
            parse_redirect(b"HTTP/1.1 200 OK\r\nLocation: http://x/\r\n\r\n"),
            Ok(None)
        );
        assert_eq!(parse_redirect(b"HTTP/1.1 302 Found\r\n\r\n"), Ok(None));
        assert_eq!(
            parse_redirect(b"HTTP/1.1 302 Found\r\nServer: x\r\n"),
            Err(HttpError::Incomplete)
        );
        assert_eq!(parse_redirect(b"HTTP/1."), Err(HttpError::Incomplete));
        assert_eq!(parse_redirect(b"\x16\x03\x01\x00"), Err(HttpError::NotHttp));
        let full = b"HTTP/1.1 302 Found\r\nLocation: http://b.example/\r\n\r\n";
        for n in 0..full.len() {
            // Never a panic, never a wrong host.
            if let Ok(Some(r)) = parse_redirect(&full[..n]) {
                assert!(r.host.as_deref().is_none_or(|h| "b.example".starts_with(h)));
            }
        }
    }

    #[test]
    fn hostile_locations() {
        // Control characters in the host: no target, the location escaped.
        let r = parse_redirect(b"HTTP/1.1 302 x\r\nLocation: http://a\x1b[31m.cn/\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.has_host());
        assert!(!r.location.chars().any(char::is_control));
        // Invalid UTF-8: escaped.
        let r = parse_redirect(b"HTTP/1.1 302 x\r\nLocation: http://\xff\xfe.cn/\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.host.as_deref(), Some("\\xff\\xfe.cn"));
        // A huge Location: cut.
        let mut big = b"HTTP/1.1 302 x\r\nLocation: http://a.example/".to_vec();
        big.extend(std::iter::repeat_n(b'x', 100_000));
        big.extend_from_slice(b"\r\n\r\n");
        let r = parse_redirect(&big);
        assert!(matches!(r, Ok(None) | Ok(Some(_))));
        if let Ok(Some(r)) = r {
            assert!(r.location.chars().count() <= LOCATION_MAX_CHARS);
        }
        // A bad port: no port, host kept? The authority does not parse: no target.
        let r = red("HTTP/1.1 302 x\r\nLocation: http://a.example:99999/\r\n\r\n");
        assert!(!r.has_host());
    }
}
