//! Resolvers: which flows carry a device's DNS queries, and of which kind.
//!
//! Every DNS query a device sends is an egress of its own. A flow is a *resolver flow* when the
//! device sends DNS queries on it, in one of four forms:
//!
//! - `dns`: plain DNS over UDP or TCP (the flow's `app_proto` is `dns` and a message the device
//!   sent has QR = 0, a query; a query that gets no answer counts too). mDNS and LLMNR
//!   (ports 5353 and 5355) are local name resolution, not resolvers.
//! - `dot`: DNS over TLS (RFC 7858): TLS to port 853/TCP, or a ClientHello offering ALPN `dot`.
//! - `doq`: DNS over QUIC (RFC 9250): QUIC offering ALPN `doq`, or QUIC (or an unclassified
//!   datagram) to port 853/UDP.
//! - `doh`: DNS over HTTPS (RFC 8484): TLS, QUIC or HTTP whose hostname is a known DoH resolver
//!   name ([`DOH_NAMES`], or the policy's `[resolvers] doh_names`), or a plaintext HTTP request
//!   for `/dns-query` or with `application/dns-message`.
//!
//! The facts come from the flow's [`FlowInsight`] (protocol, ALPN, hostname); the only bytes
//! looked at here are the first bytes of the device's own payloads, to tell a DNS query from a
//! response and to spot a DoH request in plaintext HTTP. A flow's kind, once found, stays.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::decode::Transport;
use crate::names::AppProto;
use crate::names::attribution::FlowInsight;

/// The DNS over TLS and DNS over QUIC port (RFC 7858 §3.1, RFC 9250 §4.1.1).
pub const DOT_PORT: u16 = 853;
/// mDNS (RFC 6762) and LLMNR (RFC 4795): local name resolution, never a resolver.
const LOCAL_RESOLUTION_PORTS: [u16; 2] = [5353, 5355];
/// Resolvers listed per device in the summary, at most; more are counted in
/// `resolvers_dropped`.
pub const SUMMARY_RESOLVERS_MAX: usize = 256;
/// Bytes of a plaintext HTTP request head searched for a DoH request, at most.
pub const DOH_HEAD_SCAN_MAX: usize = 4096;

/// Well-known public DNS over HTTPS resolver names. A hostname matches when it is one of these or
/// a subdomain of one (`mozilla.cloudflare-dns.com`, `dns64.dns.google`). Sorted, lower-case.
/// Sources: the resolvers' own documentation (Google Public DNS, Cloudflare 1.1.1.1, Quad9,
/// OpenDNS, AliDNS, DNSPod, AdGuard, 360, NextDNS, CleanBrowsing, Control D, Mullvad, DNS.SB,
/// SWITCH, Hurricane Electric, dns0.eu, Applied Privacy, Comcast, Apple) and the curl wiki's
/// list of public DoH servers.
pub const DOH_NAMES: &[&str] = &[
    "cloudflare-dns.com",
    "dns.adguard-dns.com",
    "dns.adguard.com",
    "dns.alidns.com",
    "dns.controld.com",
    "dns.digitale-gesellschaft.ch",
    "dns.google",
    "dns.mullvad.net",
    "dns.nextdns.io",
    "dns.quad9.net",
    "dns.switch.ch",
    "dns.twnic.tw",
    "dns0.eu",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "dns9.quad9.net",
    "doh.360.cn",
    "doh.applied-privacy.net",
    "doh.cleanbrowsing.org",
    "doh.dns.apple.com",
    "doh.dns.sb",
    "doh.familyshield.opendns.com",
    "doh.libredns.gr",
    "doh.mullvad.net",
    "doh.opendns.com",
    "doh.pub",
    "doh.xfinity.com",
    "family.adguard-dns.com",
    "freedns.controld.com",
    "one.one.one.one",
    "ordns.he.net",
    "unfiltered.adguard-dns.com",
];

/// Well-known public resolver addresses that also serve DNS over HTTPS on port 443, for clients
/// configured with an address rather than a name (`https://1.1.1.1/dns-query`): their TLS
/// ClientHello carries no SNI. Google Public DNS, Cloudflare (with its malware and family
/// variants), Quad9, OpenDNS, AdGuard, AliDNS and DNSPod, from their documentation.
pub const DOH_ADDRESSES: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(1, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(1, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(1, 0, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 2)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 3)),
    IpAddr::V4(Ipv4Addr::new(1, 12, 12, 12)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9)),
    IpAddr::V4(Ipv4Addr::new(9, 9, 9, 11)),
    IpAddr::V4(Ipv4Addr::new(94, 140, 14, 14)),
    IpAddr::V4(Ipv4Addr::new(94, 140, 15, 15)),
    IpAddr::V4(Ipv4Addr::new(120, 53, 53, 53)),
    IpAddr::V4(Ipv4Addr::new(149, 112, 112, 112)),
    IpAddr::V4(Ipv4Addr::new(208, 67, 220, 220)),
    IpAddr::V4(Ipv4Addr::new(208, 67, 222, 222)),
    IpAddr::V4(Ipv4Addr::new(223, 5, 5, 5)),
    IpAddr::V4(Ipv4Addr::new(223, 6, 6, 6)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
    IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1001)),
    IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
    IpAddr::V6(Ipv6Addr::new(0x2620, 0xfe, 0, 0, 0, 0, 0, 0x9)),
    IpAddr::V6(Ipv6Addr::new(0x2620, 0xfe, 0, 0, 0, 0, 0, 0xfe)),
];

/// The HTTPS port, where DoH to a [`DOH_ADDRESSES`] address is expected.
const HTTPS_PORT: u16 = 443;

/// Whether `ip` is one of [`DOH_ADDRESSES`].
pub fn is_doh_address(ip: IpAddr) -> bool {
    DOH_ADDRESSES.contains(&ip)
}

/// How a device reaches a resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResolverKind {
    /// Plain DNS over UDP or TCP.
    Dns,
    /// DNS over TLS.
    Dot,
    /// DNS over HTTPS (or over HTTP/3).
    Doh,
    /// DNS over QUIC.
    Doq,
}

impl ResolverKind {
    /// Every kind, in output order.
    pub const ALL: [ResolverKind; 4] = [
        ResolverKind::Dns,
        ResolverKind::Dot,
        ResolverKind::Doh,
        ResolverKind::Doq,
    ];

    /// Stable lower-case name for output and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolverKind::Dns => "dns",
            ResolverKind::Dot => "dot",
            ResolverKind::Doh => "doh",
            ResolverKind::Doq => "doq",
        }
    }

    /// The kind named `text` (ASCII case ignored).
    pub fn parse(text: &str) -> Option<ResolverKind> {
        ResolverKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text))
    }
}

impl std::fmt::Display for ResolverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `host` is one of [`DOH_NAMES`] or a subdomain of one.
pub fn is_builtin_doh_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    // Names from the wire are already lower-case (`names::clean_name`): copy only otherwise.
    let lower;
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = host.to_ascii_lowercase();
        lower.as_str()
    } else {
        host
    };
    // The name itself, then each suffix after a dot.
    let mut rest = host;
    loop {
        if DOH_NAMES.binary_search(&rest).is_ok() {
            return true;
        }
        match rest.as_bytes().iter().position(|&b| b == b'.') {
            Some(dot) if dot + 1 < rest.len() => rest = rest.get(dot + 1..).unwrap_or_default(),
            _ => return false,
        }
    }
}

/// Whether a UDP payload (or a TCP payload after its 2-byte length) starts a DNS query: a
/// 12-byte header with QR = 0 and opcode QUERY (0), NOTIFY (4) or UPDATE (5) left out (those
/// go to authoritative servers, not resolvers), and at least one question.
pub fn is_dns_query(msg: &[u8]) -> bool {
    let (Some(&flags), Some(qd_hi), Some(qd_lo)) = (msg.get(2), msg.get(4), msg.get(5)) else {
        return false;
    };
    msg.len() >= 12 && flags & 0x80 == 0 && (flags >> 3) & 0x0f == 0 && (*qd_hi, *qd_lo) != (0, 0)
}

/// Whether a plaintext HTTP request head is a DoH request (RFC 8484 §4.1): its target's path is
/// `/dns-query`, or a header names the media type `application/dns-message`. Only the first
/// [`DOH_HEAD_SCAN_MAX`] bytes are looked at.
pub fn is_doh_request(head: &[u8]) -> bool {
    scan_head(head).0
}

/// [`is_doh_request`], and whether the head's end (an empty line) is in `head`.
fn scan_head(head: &[u8]) -> (bool, bool) {
    let head = head.get(..DOH_HEAD_SCAN_MAX).unwrap_or(head);
    let head_end = find(head, b"\r\n\r\n");
    // Headers only: the body of a POST may be anything.
    let headers = head_end.map_or(head, |end| head.get(..end).unwrap_or(head));
    (
        request_path(headers).eq_ignore_ascii_case(b"/dns-query") || has_dns_media_type(headers),
        head_end.is_some(),
    )
}

/// The path of a request line's target (without query or fragment); empty when there is none.
fn request_path(head: &[u8]) -> &[u8] {
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = head.get(..line_end).unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_method), Some(target)) = (parts.next(), parts.next()) else {
        return b"";
    };
    // Origin form (`/dns-query?dns=...`) or absolute form (`https://host/dns-query`).
    let path_start = if target.starts_with(b"/") {
        Some(0)
    } else {
        find(target, b"://").and_then(|s| {
            let after = s + 3;
            target
                .get(after..)
                .and_then(|t| t.iter().position(|&b| b == b'/'))
                .map(|p| after + p)
        })
    };
    path_start
        .and_then(|s| target.get(s..))
        .map(|p| {
            let end = p
                .iter()
                .position(|&b| b == b'?' || b == b'#')
                .unwrap_or(p.len());
            p.get(..end).unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Whether `application/dns-message` appears (ASCII case ignored).
fn has_dns_media_type(headers: &[u8]) -> bool {
    const MEDIA_TYPE: &[u8] = b"application/dns-message";
    headers
        .iter()
        .enumerate()
        .filter(|(_, b)| b.eq_ignore_ascii_case(&b'a'))
        .any(|(at, _)| {
            headers
                .get(at..at + MEDIA_TYPE.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(MEDIA_TYPE))
        })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the engine keeps per flow about resolver use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverTrack {
    /// The kind, once found; it stays.
    pub kind: Option<ResolverKind>,
    /// DNS queries the device sent (plain DNS: each UDP datagram, and each TCP segment, that
    /// starts with a query; not counted for the encrypted kinds).
    pub queries: u64,
    /// A plaintext DoH request was seen.
    doh_request: bool,
    /// Client payloads looked at for a DoH request.
    http_scans: u8,
    /// The facts the last detection looked at: detection runs again only when they change.
    seen: Option<Facts>,
}

/// What detection depends on, cheap to compare per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Facts {
    app_proto: Option<AppProto>,
    alpn: bool,
    hostname: Option<crate::names::attribution::HostnameSource>,
    queried: bool,
    doh_request: bool,
}

/// Client payloads of a plaintext HTTP flow searched for a DoH request, at most.
const HTTP_SCANS_MAX: u8 = 2;

impl ResolverTrack {
    /// Looks at one packet of the flow after `insight` has: `payload` is what the packet
    /// carried, `outbound` is device → remote, `remote` the remote's address and port (0
    /// without ports). `doh_name` says whether a hostname is a DoH resolver name. Returns true when the
    /// kind was found by this packet.
    #[inline(always)]
    pub fn observe(
        &mut self,
        insight: &FlowInsight,
        transport: Transport,
        remote: (IpAddr, u16),
        outbound: bool,
        payload: &[u8],
        doh_name: impl Fn(&str) -> bool,
    ) -> bool {
        // Nothing to count and nothing to find: no payload, or an answer on a flow whose kind
        // is known (only the device's queries are counted). Checked here, without a call.
        if payload.is_empty() || (!outbound && self.kind.is_some()) {
            return false;
        }
        self.observe_payload(insight, transport, remote, outbound, payload, doh_name)
    }

    /// [`ResolverTrack::observe`] of a packet with payload that may count or find something.
    fn observe_payload(
        &mut self,
        insight: &FlowInsight,
        transport: Transport,
        remote: (IpAddr, u16),
        outbound: bool,
        payload: &[u8],
        doh_name: impl Fn(&str) -> bool,
    ) -> bool {
        if outbound && !payload.is_empty() {
            match (insight.app_proto, transport) {
                (Some(AppProto::Dns), Transport::Udp) if is_dns_query(payload) => {
                    self.queries = self.queries.saturating_add(1);
                }
                (Some(AppProto::Dns), Transport::Tcp)
                    if payload.get(2..).is_some_and(is_dns_query) =>
                {
                    self.queries = self.queries.saturating_add(1);
                }
                (Some(AppProto::Http), _)
                    if !self.doh_request && self.http_scans < HTTP_SCANS_MAX =>
                {
                    self.http_scans += 1;
                    let (doh, head_ended) = scan_head(payload);
                    self.doh_request = doh;
                    // The head ended in this payload: what follows is the body.
                    if head_ended {
                        self.http_scans = HTTP_SCANS_MAX;
                    }
                }
                _ => {}
            }
        }
        // Only a payload changes what the flow's insight knows.
        if self.kind.is_some() || payload.is_empty() {
            return false;
        }
        let facts = Facts {
            app_proto: insight.app_proto,
            alpn: insight.alpn.is_some(),
            hostname: insight.hostname.as_ref().map(|h| h.source),
            queried: self.queries > 0,
            doh_request: self.doh_request,
        };
        if self.seen == Some(facts) {
            return false;
        }
        self.seen = Some(facts);
        self.kind = self.detect(insight, transport, remote, doh_name);
        self.kind.is_some()
    }

    /// The kind the flow's facts show now, if any.
    fn detect(
        &self,
        insight: &FlowInsight,
        transport: Transport,
        (remote_ip, remote_port): (IpAddr, u16),
        doh_name: impl Fn(&str) -> bool,
    ) -> Option<ResolverKind> {
        let alpn = insight.alpn.as_deref();
        // HTTPS to a well-known DoH address without a name of its own (no SNI).
        let unnamed_doh_address =
            remote_port == HTTPS_PORT && insight.hostname.is_none() && is_doh_address(remote_ip);
        let named_doh = || insight.hostname.as_ref().is_some_and(|h| doh_name(&h.name));
        match (insight.app_proto?, transport) {
            (AppProto::Quic, _) if alpn == Some("doq") || remote_port == DOT_PORT => {
                Some(ResolverKind::Doq)
            }
            (AppProto::Unknown, Transport::Udp) if remote_port == DOT_PORT => {
                Some(ResolverKind::Doq)
            }
            (AppProto::Tls, _) if alpn == Some("dot") || remote_port == DOT_PORT => {
                Some(ResolverKind::Dot)
            }
            (AppProto::Tls | AppProto::Quic, _) if unnamed_doh_address || named_doh() => {
                Some(ResolverKind::Doh)
            }
            (AppProto::Http, _) if self.doh_request || named_doh() => Some(ResolverKind::Doh),
            (AppProto::Dns, Transport::Udp | Transport::Tcp)
                if self.queries > 0 && !LOCAL_RESOLUTION_PORTS.contains(&remote_port) =>
            {
                Some(ResolverKind::Dns)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::attribution::{Hostname, HostnameSource};
    use std::sync::Arc;

    fn insight(proto: AppProto, alpn: Option<&str>, host: Option<&str>) -> FlowInsight {
        let mut i = FlowInsight::default();
        i.app_proto = Some(proto);
        i.alpn = alpn.map(Arc::from);
        i.hostname = host.map(|h| Hostname {
            name: Arc::from(h),
            source: HostnameSource::Sni,
        });
        i
    }

    const SOMEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    fn kind(i: &FlowInsight, t: Transport, port: u16, payload: &[u8]) -> Option<ResolverKind> {
        kind_at(i, t, (SOMEWHERE, port), payload)
    }

    fn kind_at(
        i: &FlowInsight,
        t: Transport,
        remote: (IpAddr, u16),
        payload: &[u8],
    ) -> Option<ResolverKind> {
        let mut track = ResolverTrack::default();
        track.observe(i, t, remote, true, payload, is_builtin_doh_name);
        track.kind
    }

    /// A query for `example.com` A, RD set.
    fn query() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        m
    }

    #[test]
    fn the_doh_list_is_sorted_lower_case_and_matches_subdomains() {
        assert!(DOH_NAMES.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        assert!(DOH_NAMES.iter().all(|n| n.to_ascii_lowercase() == *n));
        for (host, want) in [
            ("dns.google", true),
            ("DNS.Google.", true),
            ("dns64.dns.google", true),
            ("mozilla.cloudflare-dns.com", true),
            ("cloudflare-dns.com", true),
            ("one.one.one.one", true),
            ("doh.pub", true),
            ("google", false),
            ("www.google.com", false),
            ("notdns.google", false),
            ("xcloudflare-dns.com", false),
            ("", false),
            (".", false),
            ("..", false),
        ] {
            assert_eq!(is_builtin_doh_name(host), want, "{host:?}");
        }
    }

    #[test]
    fn queries_are_told_from_responses() {
        let q = query();
        assert!(is_dns_query(&q));
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(!is_dns_query(&response), "QR = 1");
        let mut notify = q.clone();
        notify[2] = 4 << 3;
        assert!(!is_dns_query(&notify), "opcode NOTIFY");
        let mut no_question = q.clone();
        no_question[5] = 0;
        assert!(!is_dns_query(&no_question));
        assert!(!is_dns_query(&q[..11]), "short header");
        assert!(!is_dns_query(b""));
    }

    #[test]
    fn plain_dns_needs_a_query_from_the_device() {
        let dns = insight(AppProto::Dns, None, None);
        assert_eq!(
            kind(&dns, Transport::Udp, 53, &query()),
            Some(ResolverKind::Dns)
        );
        let mut tcp = vec![0, query().len() as u8];
        tcp.extend_from_slice(&query());
        assert_eq!(
            kind(&dns, Transport::Tcp, 53, &tcp),
            Some(ResolverKind::Dns)
        );
        let mut answer = query();
        answer[2] |= 0x80;
        assert_eq!(kind(&dns, Transport::Udp, 53, &answer), None, "a response");
        assert_eq!(kind(&dns, Transport::Udp, 5353, &query()), None, "mDNS");
        assert_eq!(kind(&dns, Transport::Udp, 5355, &query()), None, "LLMNR");
        // A packet from the resolver alone does not make the flow a resolver flow.
        let mut track = ResolverTrack::default();
        track.observe(
            &dns,
            Transport::Udp,
            (SOMEWHERE, 53),
            false,
            &query(),
            is_builtin_doh_name,
        );
        assert_eq!((track.kind, track.queries), (None, 0));
    }

    #[test]
    fn encrypted_kinds_by_port_alpn_and_name() {
        let tls = |alpn, host| insight(AppProto::Tls, alpn, host);
        let quic = |alpn, host| insight(AppProto::Quic, alpn, host);
        let t = Transport::Tcp;
        let u = Transport::Udp;
        assert_eq!(
            kind(&tls(None, None), t, 853, b"x"),
            Some(ResolverKind::Dot)
        );
        assert_eq!(
            kind(&tls(Some("dot"), None), t, 8853, b"x"),
            Some(ResolverKind::Dot)
        );
        assert_eq!(
            kind(&tls(None, Some("dns.google")), t, 853, b"x"),
            Some(ResolverKind::Dot),
            "853 is DoT even with a DoH name"
        );
        assert_eq!(
            kind(&tls(Some("h2"), Some("dns.google")), t, 443, b"x"),
            Some(ResolverKind::Doh)
        );
        assert_eq!(
            kind(&tls(Some("h2"), Some("www.google.com")), t, 443, b"x"),
            None
        );
        assert_eq!(
            kind(&quic(Some("doq"), None), u, 8853, b"x"),
            Some(ResolverKind::Doq)
        );
        assert_eq!(
            kind(&quic(None, None), u, 853, b"x"),
            Some(ResolverKind::Doq)
        );
        assert_eq!(
            kind(&insight(AppProto::Unknown, None, None), u, 853, b"x"),
            Some(ResolverKind::Doq)
        );
        assert_eq!(
            kind(&quic(Some("h3"), Some("cloudflare-dns.com")), u, 443, b"x"),
            Some(ResolverKind::Doh)
        );
        assert_eq!(
            kind(&quic(Some("h3"), Some("example.com")), u, 443, b"x"),
            None
        );
        let extra = |h: &str| h == "doh.lab.example";
        let mut track = ResolverTrack::default();
        track.observe(
            &tls(None, Some("doh.lab.example")),
            t,
            (SOMEWHERE, 443),
            true,
            b"x",
            extra,
        );
        assert_eq!(track.kind, Some(ResolverKind::Doh), "a policy DoH name");
    }

    #[test]
    fn https_without_a_name_to_a_well_known_doh_address() {
        let one: IpAddr = "1.1.1.1".parse().unwrap();
        let six: IpAddr = "2001:4860:4860::8888".parse().unwrap();
        assert!(is_doh_address(one) && is_doh_address(six));
        assert!(!is_doh_address(SOMEWHERE));
        let tls = insight(AppProto::Tls, Some("h2"), None);
        let t = Transport::Tcp;
        assert_eq!(kind_at(&tls, t, (one, 443), b"x"), Some(ResolverKind::Doh));
        assert_eq!(kind_at(&tls, t, (six, 443), b"x"), Some(ResolverKind::Doh));
        assert_eq!(
            kind_at(&tls, t, (one, 8443), b"x"),
            None,
            "not the HTTPS port"
        );
        assert_eq!(kind_at(&tls, t, (SOMEWHERE, 443), b"x"), None);
        let named = insight(AppProto::Tls, Some("h2"), Some("www.example.com"));
        assert_eq!(kind_at(&named, t, (one, 443), b"x"), None, "another name");
    }

    #[test]
    fn detection_runs_again_when_a_fact_arrives() {
        let mut i = insight(AppProto::Tls, Some("h2"), None);
        let mut track = ResolverTrack::default();
        let remote = (SOMEWHERE, 443);
        let t = Transport::Tcp;
        assert!(!track.observe(&i, t, remote, true, b"x", is_builtin_doh_name));
        assert!(!track.observe(&i, t, remote, false, b"y", is_builtin_doh_name));
        // The SNI completes in a later segment.
        i.hostname = Some(Hostname {
            name: Arc::from("dns.google"),
            source: HostnameSource::Sni,
        });
        assert!(track.observe(&i, t, remote, true, b"z", is_builtin_doh_name));
        assert_eq!(track.kind, Some(ResolverKind::Doh));
        assert!(
            !track.observe(&i, t, remote, true, b"z", is_builtin_doh_name),
            "found once"
        );
    }

    #[test]
    fn plaintext_doh_requests() {
        assert!(is_doh_request(
            b"GET /dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
        assert!(is_doh_request(
            b"POST /resolve HTTP/1.1\r\nContent-Type: Application/DNS-Message\r\n\r\n"
        ));
        assert!(is_doh_request(
            b"GET http://doh.lab.example/dns-query?dns=AA HTTP/1.1\r\n\r\n"
        ));
        assert!(!is_doh_request(
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
        assert!(!is_doh_request(b"GET /dns-query-log HTTP/1.1\r\n\r\n"));
        assert!(
            !is_doh_request(b"POST /upload HTTP/1.1\r\n\r\napplication/dns-message"),
            "in the body, not a header"
        );
        assert!(!is_doh_request(b""));
        assert!(!is_doh_request(b"GET"));
        let http = insight(AppProto::Http, None, Some("lab.example"));
        assert_eq!(
            kind(
                &http,
                Transport::Tcp,
                80,
                b"POST /dns-query HTTP/1.1\r\nHost: lab.example\r\n\r\n"
            ),
            Some(ResolverKind::Doh)
        );
        assert_eq!(
            kind(&http, Transport::Tcp, 80, b"GET / HTTP/1.1\r\n\r\n"),
            None
        );
    }

    #[test]
    fn kinds_parse_and_print() {
        for k in ResolverKind::ALL {
            assert_eq!(ResolverKind::parse(k.as_str()), Some(k));
            assert_eq!(ResolverKind::parse(&k.as_str().to_uppercase()), Some(k));
        }
        assert_eq!(ResolverKind::parse("dnscrypt"), None);
    }

    #[test]
    fn no_panic_on_any_bytes() {
        let dns = insight(AppProto::Dns, None, None);
        let http = insight(AppProto::Http, None, None);
        let mut bytes = Vec::new();
        for n in 0..64u8 {
            bytes.push(n.wrapping_mul(37));
            let _ = is_dns_query(&bytes);
            let _ = is_doh_request(&bytes);
            let _ = kind(&dns, Transport::Tcp, 53, &bytes);
            let _ = kind(&http, Transport::Tcp, 80, &bytes);
        }
    }
}
