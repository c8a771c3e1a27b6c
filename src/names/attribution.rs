//! Attribution: which name and protocol a flow's payload reveals, and the passive DNS cache.
//!
//! [`PassiveDns`] keeps, per device, what DNS answers seen in the capture said about each
//! address, honouring TTLs by packet time with a grace period. [`FlowInsight`] is the per-flow
//! state the engine feeds with each payload: protocol classification, TLS ClientHello
//! reassembly and handshake tracking, the HTTP Host, DNS over UDP and TCP. It reports whether
//! anything changed, so the engine knows when to evaluate the policy again.
//!
//! Name precedence (stated in docs/json-format.md): a name the flow itself carries beats a DNS
//! answer about its address, because a CDN address serves many names: `sni` > `quic` > `http`
//! > `dns`. Within one source the first name seen stays.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::quic::QuicInitialAssembler;
use super::tls::{TlsHandshakeState, TlsHelloAssembler, TlsVersion};
use super::{AppProto, classify, dns, http};
use crate::decode::{Packet, Transport};

/// Device/address pairs the DNS cache holds at most; beyond, expired entries go first, then all.
pub const DNS_CACHE_MAX_ENTRIES: usize = 262_144;
/// How long past its TTL a DNS answer still names an address (devices keep connections and
/// cached answers beyond the TTL).
pub const DNS_TTL_GRACE_NS: i64 = 600_000_000_000;
/// Payload packets examined per flow to classify it before it is called `unknown`.
pub const CLASSIFY_TRIES_MAX: u8 = 4;
/// The DNS port (RFC 1035 §4.2.1).
const DNS_PORT: u16 = 53;

/// Where a flow's name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostnameSource {
    Dns,
    Http,
    Quic,
    Sni,
}

impl HostnameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HostnameSource::Dns => "dns",
            HostnameSource::Http => "http",
            HostnameSource::Quic => "quic",
            HostnameSource::Sni => "sni",
        }
    }
}

/// What a DNS answer said about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsName {
    /// The name the device asked for.
    pub query: Arc<str>,
    /// CNAMEs followed from the query to the address.
    pub cname_chain: Arc<[Arc<str>]>,
}

struct CacheEntry {
    name: DnsName,
    expires_ns: i64,
}

/// A DNS response as seen on the wire, kept for `dns` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenResponse {
    pub ts_ns: i64,
    pub device: IpAddr,
    pub resolver: IpAddr,
    pub query: String,
    pub rcode: u8,
    /// Addresses the query resolved to, with the CNAMEs on the way.
    pub addresses: Vec<IpAddr>,
    pub cname_chain: Vec<String>,
    pub ttl: Option<u32>,
}

/// Responses waiting for the engine to write as `dns` events, at most.
pub const DNS_EVENTS_PENDING_MAX: usize = 1024;

/// What the DNS answers in the capture said, per device: address → name.
#[derive(Default)]
pub struct PassiveDns {
    map: HashMap<(IpAddr, IpAddr), CacheEntry>,
    /// Keep parsed responses in `pending` for `dns` events.
    pub record: bool,
    /// Responses not yet written as events (only when `record`).
    pub pending: Vec<SeenResponse>,
    /// Entries dropped because the cache was full.
    pub evicted: u64,
    /// Responses parsed.
    pub responses: u64,
    /// Payloads on DNS flows that did not parse.
    pub malformed: u64,
    /// Entries held at most (both generations together); `None`: [`DNS_CACHE_MAX_ENTRIES`].
    pub cap: Option<usize>,
    /// The older generation: entries move here when the young one fills, and are dropped
    /// (counted in `evicted`) when it fills again. O(1) per insert, whatever the TTLs.
    old: HashMap<(IpAddr, IpAddr), CacheEntry>,
    /// A/AAAA/CNAME records beyond [`dns::DNS_ANSWERS_MAX`] in a message, not kept.
    pub answers_dropped: u64,
    /// Questions beyond [`dns::DNS_QUESTIONS_MAX`] in a message, not kept.
    pub questions_dropped: u64,
    /// Resolutions whose CNAME chain was cut (longer than [`dns::DNS_CNAME_CHAIN_MAX`], or a loop).
    pub chains_cut: u64,
    /// `dns` events not written because [`DNS_EVENTS_PENDING_MAX`] were pending.
    pub events_dropped: u64,
}

impl PassiveDns {
    /// A cache holding at most `cap` entries (at least 2).
    pub fn with_cap(cap: usize) -> PassiveDns {
        PassiveDns {
            cap: Some(cap.max(2)),
            ..PassiveDns::default()
        }
    }

    /// Records one resolution seen by `device` at `ts_ns`.
    pub fn insert(&mut self, device: IpAddr, r: &dns::Resolution<'_>, ts_ns: i64) {
        let key = (device, r.addr);
        // Two generations of at most half the cap each: when the young one is full, the old
        // one is dropped and the young one becomes old. The first answers in are the first
        // out, at O(1) per insert (a sweep for expired entries at every insert past the cap
        // was quadratic when answers expire one by one).
        let young_max = (self.cap.unwrap_or(DNS_CACHE_MAX_ENTRIES) / 2).max(1);
        // A key already held is updated where it is, so neither generation outgrows its half.
        let in_old = self.old.contains_key(&key);
        if !in_old && self.map.len() >= young_max && !self.map.contains_key(&key) {
            self.evicted += self.old.len() as u64;
            self.old = std::mem::take(&mut self.map);
        }
        let ttl_ns = i64::from(r.ttl).saturating_mul(1_000_000_000);
        let name = DnsName {
            query: Arc::from(r.query),
            cname_chain: r.cname_chain.iter().map(|c| Arc::from(*c)).collect(),
        };
        let generation = if in_old { &mut self.old } else { &mut self.map };
        generation.insert(
            key,
            CacheEntry {
                name,
                expires_ns: ts_ns
                    .saturating_add(ttl_ns)
                    .saturating_add(DNS_TTL_GRACE_NS),
            },
        );
    }

    /// The name a DNS answer gave `device` for `addr`, if still valid at `ts_ns`.
    pub fn lookup(&self, device: IpAddr, addr: IpAddr, ts_ns: i64) -> Option<&DnsName> {
        self.map
            .get(&(device, addr))
            .or_else(|| self.old.get(&(device, addr)))
            .filter(|e| e.expires_ns >= ts_ns)
            .map(|e| &e.name)
    }

    /// Entries held now (both generations).
    pub fn len(&self) -> usize {
        self.map.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts what a response's per-message bounds left out.
    fn count_dropped(&mut self, m: &dns::DnsMessage) {
        self.answers_dropped += u64::from(m.answers_dropped);
        self.questions_dropped += u64::from(m.qdcount).saturating_sub(m.questions.len() as u64);
        self.chains_cut += m.chains_cut();
    }

    /// Parses a DNS message sent to `device` and records its resolutions. Returns the message
    /// when it parsed, for `dns` events.
    pub fn learn(
        &mut self,
        device: IpAddr,
        resolver: IpAddr,
        msg: &[u8],
        ts_ns: i64,
    ) -> Option<dns::DnsMessage> {
        match dns::parse_message(msg) {
            Ok(m) => {
                if m.is_response {
                    self.responses += 1;
                    self.count_dropped(&m);
                    for r in m.resolutions() {
                        self.insert(device, &r, ts_ns);
                    }
                    if self.record && self.pending.len() >= DNS_EVENTS_PENDING_MAX {
                        self.events_dropped += m.questions.len() as u64;
                    }
                    if self.record && self.pending.len() < DNS_EVENTS_PENDING_MAX {
                        for q in &m.questions {
                            let mut seen = SeenResponse {
                                ts_ns,
                                device,
                                resolver,
                                query: q.name.clone(),
                                rcode: m.rcode,
                                addresses: Vec::new(),
                                cname_chain: Vec::new(),
                                ttl: None,
                            };
                            for r in m.resolutions().filter(|r| r.query == q.name) {
                                seen.addresses.push(r.addr);
                                seen.ttl = Some(seen.ttl.map_or(r.ttl, |t| t.min(r.ttl)));
                                if seen.cname_chain.is_empty() {
                                    seen.cname_chain =
                                        r.cname_chain.iter().map(|c| (*c).to_owned()).collect();
                                }
                            }
                            self.pending.push(seen);
                        }
                    }
                }
                Some(m)
            }
            Err(_) => {
                self.malformed += 1;
                None
            }
        }
    }
}

/// A flow's name, with its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hostname {
    pub name: Arc<str>,
    pub source: HostnameSource,
}

/// TLS state of one flow: the ClientHello assembler while it is needed, and handshake progress.
#[derive(Default)]
struct TlsTrack {
    hello: TlsHelloAssembler,
    handshake: TlsHandshakeState,
}

/// What one flow's payload revealed so far.
#[derive(Default)]
pub struct FlowInsight {
    pub app_proto: Option<AppProto>,
    pub hostname: Option<Hostname>,
    /// When DNS named the remote: what the device asked and the CNAMEs on the way.
    pub dns: Option<DnsName>,
    pub tls_version: Option<TlsVersion>,
    /// The first ALPN protocol the client offered.
    pub alpn: Option<Arc<str>>,
    pub payload_out: bool,
    pub payload_in: bool,
    tls: Option<Box<TlsTrack>>,
    quic: Option<Box<QuicInitialAssembler>>,
    dns_tcp: Option<Box<dns::DnsTcpReassembler>>,
    classify_tries: u8,
    http_seen: bool,
    /// Sequence number of the device's SYN, when seen.
    client_isn: Option<u32>,
    /// The client's request head so far, while its Host header has not been found.
    http_head: Option<Vec<u8>>,
    /// Counted by the engine: ClientHellos that could not be assembled.
    pub tls_failures: u8,
    /// The reassembly budget ran out on this flow: its buffers were freed and nothing more is
    /// gathered (see [`FlowInsight::shed`]).
    pub shed: bool,
}

/// What [`FlowInsight::observe`] learned from one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// The name, the protocol or the encryption verdict changed: evaluate the policy again.
    pub changed: bool,
}

impl FlowInsight {
    /// Sets the name if `source` ranks above the current one.
    pub fn offer_name(&mut self, name: &str, source: HostnameSource) -> bool {
        if name.is_empty() || self.hostname.as_ref().is_some_and(|h| h.source >= source) {
            return false;
        }
        self.hostname = Some(Hostname {
            name: Arc::from(name),
            source,
        });
        true
    }

    /// Names the flow from a DNS answer (at flow start).
    pub fn offer_dns(&mut self, name: &DnsName) -> bool {
        self.dns = Some(name.clone());
        self.offer_name(&name.query, HostnameSource::Dns)
    }

    /// Encrypted, plaintext, or not known yet (`None`: no payload, or a handshake in progress).
    /// With `ended`, a handshake that never completed counts as not encrypted.
    pub fn encrypted(&self, ended: bool) -> Option<bool> {
        if !(self.payload_out || self.payload_in) {
            return None;
        }
        match self.app_proto {
            Some(AppProto::Tls) => match &self.tls {
                Some(t) if t.handshake.is_encrypted() => Some(true),
                // A capture that starts mid-connection: the handshake happened before it, and
                // application data flows both ways.
                Some(t)
                    if !t.handshake.client_hello
                        && t.handshake.client_app_data
                        && t.handshake.server_app_data =>
                {
                    Some(true)
                }
                _ if ended => Some(false),
                _ => None,
            },
            Some(AppProto::Quic | AppProto::Dtls | AppProto::Ssh) => Some(true),
            // Still classifying (a ClientHello may arrive out of order): not known yet.
            Some(AppProto::Unknown) | None
                if !ended && self.classify_tries < CLASSIFY_TRIES_MAX =>
            {
                None
            }
            Some(_) | None => Some(false),
        }
    }

    /// Looks at one packet of the flow. `outbound` is device → remote; `dns_cache` learns from
    /// DNS answers sent to `device`.
    pub fn observe(
        &mut self,
        p: &Packet<'_>,
        outbound: bool,
        device: IpAddr,
        ts_ns: i64,
        dns_cache: &mut PassiveDns,
    ) -> Learned {
        if outbound && p.transport == Transport::Tcp && p.tcp_flags & 0x02 != 0 {
            self.client_isn = Some(p.seq);
        }
        if p.payload.is_empty() {
            return Learned::default();
        }
        let before = (self.encrypted(false), self.app_proto);
        let mut changed = false;
        if outbound {
            self.payload_out = true;
        } else {
            self.payload_in = true;
        }
        let undecided = matches!(self.app_proto, None | Some(AppProto::Unknown));
        if undecided && self.classify_tries < CLASSIFY_TRIES_MAX {
            self.classify_tries += 1;
            match classify(p.payload, p.transport, (p.src_port, p.dst_port)) {
                Some(AppProto::Unknown) | None => {
                    self.app_proto = Some(AppProto::Unknown);
                    // The client's very first byte (just after its SYN) is not TLS: nothing
                    // can arrive before it, so the flow is settled at once. Otherwise a
                    // ClientHello may still come from a segment that arrived late.
                    let first_byte = self.client_isn.map(|isn| isn.wrapping_add(1));
                    // Datagrams are classified one by one: no reordering to wait for.
                    let settled =
                        p.transport != Transport::Tcp || (outbound && first_byte == Some(p.seq));
                    if settled {
                        self.classify_tries = CLASSIFY_TRIES_MAX;
                    }
                }
                Some(proto) => self.app_proto = Some(proto),
            }
        }
        // A ClientHello whose first segment arrives late classifies its first-seen segment as
        // unknown: while the flow is still being classified, its client segments wait in a TLS
        // assembler (bounded), which names the flow if a hello completes.
        if outbound && p.transport == Transport::Tcp && self.app_proto == Some(AppProto::Unknown) {
            if self.classify_tries < CLASSIFY_TRIES_MAX && !self.shed {
                let track = self.tls.get_or_insert_with(Box::default);
                if let Some(Ok(hello)) = track.hello.push(p.seq, p.payload) {
                    track.handshake.client_hello = true;
                    self.app_proto = Some(AppProto::Tls);
                    self.tls_version = Some(hello.version);
                    self.alpn = hello.alpn.first().map(|a| Arc::from(a.as_str()));
                    if let Some(sni) = &hello.sni {
                        changed |= self.offer_name(sni, HostnameSource::Sni);
                    }
                }
            } else {
                // Settled as unknown: free what was held.
                self.tls = None;
            }
        }
        match self.app_proto {
            Some(AppProto::Tls) if p.transport == Transport::Tcp => {
                let track = self.tls.get_or_insert_with(Box::default);
                // Once encrypted, nothing in later records changes the verdict.
                if !track.handshake.is_encrypted() {
                    track.handshake.observe(outbound, p.payload);
                }
                let mut sni = None;
                if outbound && !track.hello.is_finished() && !self.shed {
                    match track.hello.push(p.seq, p.payload) {
                        Some(Ok(hello)) => {
                            self.tls_version = Some(hello.version);
                            self.alpn = hello.alpn.first().map(|a| Arc::from(a.as_str()));
                            sni = hello.sni;
                        }
                        Some(Err(_)) => self.tls_failures = self.tls_failures.saturating_add(1),
                        None => {}
                    }
                }
                if let Some(v) = track.handshake.server_hello {
                    self.tls_version = Some(v);
                }
                if let Some(sni) = sni {
                    changed |= self.offer_name(&sni, HostnameSource::Sni);
                }
            }
            Some(AppProto::Quic) if outbound && p.transport == Transport::Udp && !self.shed => {
                let q = self.quic.get_or_insert_with(Box::default);
                if let Some(Ok(hello)) = q.push(p.payload) {
                    self.tls_version = Some(hello.version);
                    self.alpn = hello.alpn.first().map(|a| Arc::from(a.as_str()));
                    if let Some(sni) = &hello.sni {
                        changed |= self.offer_name(sni, HostnameSource::Quic);
                    }
                }
            }
            Some(AppProto::Dtls) if outbound && self.hostname.is_none() => {
                if let Ok(hello) = super::tls::parse_dtls_client_hello(p.payload) {
                    self.tls_version = Some(hello.version);
                    if let Some(sni) = &hello.sni {
                        changed |= self.offer_name(sni, HostnameSource::Sni);
                    }
                }
            }
            Some(AppProto::Http) if outbound && !self.http_seen && !self.shed => {
                // The request head may span segments (a long URL or User-Agent before Host):
                // gather the client's bytes, in order, up to the head limit.
                let head = self.http_head.get_or_insert_with(Vec::new);
                let room = http::HTTP_HEAD_MAX_BYTES.saturating_sub(head.len());
                head.extend_from_slice(p.payload.get(..room).unwrap_or(p.payload));
                let complete = head.windows(4).any(|w| w == b"\r\n\r\n")
                    || head.len() >= http::HTTP_HEAD_MAX_BYTES;
                let parsed = http::parse_request(head);
                let host = parsed.as_ref().ok().and_then(|r| r.host.clone());
                if host.is_some() || complete || matches!(parsed, Err(http::HttpError::NotHttp)) {
                    self.http_seen = true;
                    self.http_head = None;
                }
                if let Some(host) = host {
                    changed |= self.offer_name(&host, HostnameSource::Http);
                }
            }
            _ => {}
        }
        // DNS answers to the device, over UDP or TCP, from a resolver on port 53.
        if !outbound && p.src_port == DNS_PORT {
            match p.transport {
                Transport::Udp => {
                    dns_cache.learn(device, p.src, p.payload, ts_ns);
                }
                Transport::Tcp if !self.shed => {
                    let r = self.dns_tcp.get_or_insert_with(Box::default);
                    r.push(p.payload, |msg| {
                        dns_cache.learn(device, p.src, msg, ts_ns);
                    });
                }
                _ => {}
            }
        }
        changed |= before != (self.encrypted(false), self.app_proto);
        Learned { changed }
    }
}

/// The reassembly budget (`--max-reassembly-bytes`): what a flow holds and how it lets go.
impl FlowInsight {
    /// Bytes this flow holds in reassembly buffers: ClientHello segments, QUIC CRYPTO data,
    /// a DNS-over-TCP message in progress, an HTTP request head.
    pub fn held_bytes(&self) -> usize {
        let tls = self.tls.as_ref().map_or(0, |t| t.hello.held_bytes());
        let quic = self.quic.as_ref().map_or(0, |q| q.held_bytes());
        let dns = self.dns_tcp.as_ref().map_or(0, |d| d.held_bytes());
        let http = self.http_head.as_ref().map_or(0, Vec::capacity);
        tls + quic + dns + http
    }

    /// Frees every reassembly buffer and stops gathering: the flow keeps what it learned, and
    /// names from later single-packet sources (a DTLS hello) only.
    pub fn shed(&mut self) {
        self.shed = true;
        if let Some(t) = &mut self.tls {
            t.hello.abandon();
        }
        self.quic = None;
        self.dns_tcp = None;
        self.http_head = None;
        self.http_seen = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution<'a>(query: &'a str, addr: &str, ttl: u32) -> dns::Resolution<'a> {
        dns::Resolution {
            query,
            addr: addr.parse().unwrap(),
            cname_chain: vec!["edge.cdn.example"],
            ttl,
        }
    }

    #[test]
    fn dns_answers_expire_after_ttl_and_grace_per_device() {
        let mut cache = PassiveDns::default();
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        let other: IpAddr = "192.168.1.60".parse().unwrap();
        let addr: IpAddr = "203.0.113.9".parse().unwrap();
        cache.insert(dev, &resolution("api.vendor.example", "203.0.113.9", 30), 0);
        let hit = cache.lookup(dev, addr, 1_000_000_000).unwrap();
        assert_eq!(&*hit.query, "api.vendor.example");
        assert_eq!(&*hit.cname_chain[0], "edge.cdn.example");
        assert!(
            cache.lookup(other, addr, 0).is_none(),
            "answers are per device"
        );
        let last_valid = 30_000_000_000 + DNS_TTL_GRACE_NS;
        assert!(cache.lookup(dev, addr, last_valid).is_some());
        assert!(cache.lookup(dev, addr, last_valid + 1).is_none());
    }

    #[test]
    fn the_dns_cache_stays_within_its_cap_and_drops_the_oldest_first() {
        let mut cache = PassiveDns::with_cap(100);
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        let addr = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x1400_0000 + i));
        for i in 0..10_000u32 {
            let r = dns::Resolution {
                query: "flood.example",
                addr: addr(i),
                cname_chain: Vec::new(),
                ttl: 300,
            };
            cache.insert(dev, &r, 0);
            assert!(cache.len() <= 100);
        }
        assert!(cache.len() >= 50);
        assert_eq!(cache.evicted + cache.len() as u64, 10_000);
        assert!(cache.lookup(dev, addr(9_999), 0).is_some(), "newest kept");
        assert!(cache.lookup(dev, addr(0), 0).is_none(), "oldest dropped");
        // A key already held is refreshed in place: no eviction.
        let before = cache.evicted;
        let r = dns::Resolution {
            query: "again.example",
            addr: addr(9_950),
            cname_chain: Vec::new(),
            ttl: 300,
        };
        cache.insert(dev, &r, 1);
        assert_eq!(cache.evicted, before);
        assert_eq!(
            &*cache.lookup(dev, addr(9_950), 1).unwrap().query,
            "again.example"
        );
    }

    #[test]
    fn a_shed_flow_frees_its_buffers_and_gathers_no_more() {
        let mut f = FlowInsight {
            http_head: Some(Vec::with_capacity(4096)),
            dns_tcp: Some(Box::default()),
            ..FlowInsight::default()
        };
        assert!(f.held_bytes() >= 4096);
        f.shed();
        assert_eq!(f.held_bytes(), 0);
        assert!(f.shed);
    }

    #[test]
    fn a_name_from_the_flow_beats_a_dns_answer() {
        let mut f = FlowInsight::default();
        assert!(f.offer_name("cdn-shared.example", HostnameSource::Dns));
        assert!(f.offer_name("www.example.org", HostnameSource::Http));
        assert!(f.offer_name("api.example.org", HostnameSource::Sni));
        assert!(!f.offer_name("other.example", HostnameSource::Dns));
        assert!(
            !f.offer_name("second.example", HostnameSource::Sni),
            "first SNI stays"
        );
        let h = f.hostname.unwrap();
        assert_eq!(
            (&*h.name, h.source),
            ("api.example.org", HostnameSource::Sni)
        );
    }

    #[test]
    fn encryption_needs_payload_and_a_completed_handshake() {
        let mut f = FlowInsight::default();
        assert_eq!(f.encrypted(true), None, "no payload: not known");
        f.payload_out = true;
        f.app_proto = Some(AppProto::Tls);
        assert_eq!(f.encrypted(false), None, "handshake in progress");
        assert_eq!(f.encrypted(true), Some(false), "handshake never completed");
        f.app_proto = Some(AppProto::Http);
        assert_eq!(f.encrypted(false), Some(false));
        f.app_proto = Some(AppProto::Ssh);
        assert_eq!(f.encrypted(false), Some(true));
    }
}
