//! Attribution: which name and protocol a flow's payload reveals, and the passive DNS cache.
//!
//! [`PassiveDns`] keeps, per device, what DNS answers seen in the capture said about each
//! address, honouring TTLs by packet time with a grace period. [`FlowInsight`] is the per-flow
//! state the engine feeds with each payload: protocol classification, TLS ClientHello
//! reassembly and handshake tracking, the HTTP Host, DNS over UDP and TCP. It reports whether
//! anything changed, so the engine knows when to evaluate the policy again.
//!
//! Name precedence (stated in docs/json-format.md): a name the flow itself carries beats a DNS
//! answer about its address, because a CDN address serves many names: `sni` > `quic` > `proxy`
//! (the name a client gave a proxy) > `http` > `dns`. Within one source the first name seen stays.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::proxy::{self, ProxyTarget, SocksTracker};
use super::quic::QuicInitialAssembler;
use super::redirect::{self, Redirect};
use super::tls::{TlsHandshakeState, TlsHelloAssembler, TlsVersion};
use super::{AppProto, classify, dns, http, proto};
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
    /// The destination a client named to a proxy (HTTP CONNECT or absolute-form, SOCKS).
    Proxy,
    Quic,
    Sni,
}

impl HostnameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HostnameSource::Dns => "dns",
            HostnameSource::Http => "http",
            HostnameSource::Proxy => "proxy",
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

/// The cache's maps: foldhash, seeded per process like the flow table's index (fast, and a
/// capture cannot choose colliding keys). Nothing iterates them, so the hasher decides no order.
type DnsMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What the DNS answers in the capture said, per device: address → name.
#[derive(Default)]
pub struct PassiveDns {
    map: DnsMap<(IpAddr, IpAddr), CacheEntry>,
    /// Keep parsed responses in `pending` for `dns` events.
    pub record: bool,
    /// Responses not yet written as events (only when `record`).
    pub pending: Vec<SeenResponse>,
    /// Entries dropped because the cache was full.
    pub evicted: u64,
    /// (device, name) entries of the name → addresses side dropped because it was full.
    pub names_evicted: u64,
    /// Responses parsed.
    pub responses: u64,
    /// Payloads on DNS flows that did not parse.
    pub malformed: u64,
    /// Entries held at most (both generations together); `None`: [`DNS_CACHE_MAX_ENTRIES`].
    pub cap: Option<usize>,
    /// The older generation: entries move here when the young one fills, and are dropped
    /// (counted in `evicted`) when it fills again. O(1) per insert, whatever the TTLs.
    old: DnsMap<(IpAddr, IpAddr), CacheEntry>,
    /// A/AAAA/CNAME records beyond [`dns::DNS_ANSWERS_MAX`] in a message, not kept.
    pub answers_dropped: u64,
    /// Questions beyond [`dns::DNS_QUESTIONS_MAX`] in a message, not kept.
    pub questions_dropped: u64,
    /// Resolutions whose CNAME chain was cut (longer than [`dns::DNS_CNAME_CHAIN_MAX`], or a loop).
    pub chains_cut: u64,
    /// `dns` events not written because [`DNS_EVENTS_PENDING_MAX`] were pending.
    pub events_dropped: u64,
    /// Name → addresses, per device: what a proxy or redirect target named by host resolves to.
    /// Two generations like the address side (`by_name_old` the older), under the same cap.
    by_name: DnsMap<(IpAddr, Arc<str>), NameEntry>,
    by_name_old: DnsMap<(IpAddr, Arc<str>), NameEntry>,
}

/// Addresses kept per (device, name), at most; the newest answers replace the oldest.
pub const DNS_NAME_ADDRS_MAX: usize = 4;

struct NameEntry {
    addrs: Vec<IpAddr>,
    expires_ns: i64,
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
        // A key answered again moves to the young generation, so a name a device keeps
        // resolving is not dropped at the next rotation; a key already young is updated there.
        self.old.remove(&key);
        if self.map.len() >= young_max && !self.map.contains_key(&key) {
            self.evicted += self.old.len() as u64;
            self.old = std::mem::take(&mut self.map);
        }
        let ttl_ns = i64::from(r.ttl).saturating_mul(1_000_000_000);
        let query: Arc<str> = Arc::from(r.query);
        self.insert_name(device, &query, r.addr, ts_ns, ttl_ns);
        let name = DnsName {
            query,
            cname_chain: r.cname_chain.iter().map(|c| Arc::from(*c)).collect(),
        };
        self.map.insert(
            key,
            CacheEntry {
                name,
                expires_ns: ts_ns
                    .saturating_add(ttl_ns)
                    .saturating_add(DNS_TTL_GRACE_NS),
            },
        );
    }

    /// Records `addr` as an answer for `name` (the name → addresses side), bounded like the
    /// address side: two generations of half the cap each, the older dropped (counted in
    /// `names_evicted`) when the younger fills, and at most [`DNS_NAME_ADDRS_MAX`] addresses per name.
    fn insert_name(
        &mut self,
        device: IpAddr,
        name: &Arc<str>,
        addr: IpAddr,
        ts_ns: i64,
        ttl_ns: i64,
    ) {
        let key = (device, name.clone());
        let young_max = (self.cap.unwrap_or(DNS_CACHE_MAX_ENTRIES) / 2).max(1);
        // A name answered again moves to the young generation with its addresses.
        let moved = self.by_name_old.remove(&key);
        if self.by_name.len() >= young_max && !self.by_name.contains_key(&key) {
            self.names_evicted += self.by_name_old.len() as u64;
            self.by_name_old = std::mem::take(&mut self.by_name);
        }
        let expires_ns = ts_ns
            .saturating_add(ttl_ns)
            .saturating_add(DNS_TTL_GRACE_NS);
        let e = self.by_name.entry(key).or_insert_with(|| {
            moved.unwrap_or(NameEntry {
                addrs: Vec::new(),
                expires_ns,
            })
        });
        if e.expires_ns < ts_ns {
            e.addrs.clear();
        }
        e.expires_ns = e.expires_ns.max(expires_ns);
        e.addrs.retain(|a| *a != addr);
        if e.addrs.len() >= DNS_NAME_ADDRS_MAX {
            e.addrs.remove(0);
        }
        e.addrs.push(addr);
    }

    /// The addresses DNS answers gave `device` for `name` (lower-case, no final dot), newest
    /// last, if still valid at `ts_ns`.
    pub fn lookup_name(&self, device: IpAddr, name: &str, ts_ns: i64) -> &[IpAddr] {
        let key = (device, Arc::from(name));
        self.by_name
            .get(&key)
            .or_else(|| self.by_name_old.get(&key))
            .filter(|e| e.expires_ns >= ts_ns)
            .map_or(&[], |e| &e.addrs)
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

    /// Counts what a response's per-message bounds left out (`chains_cut`: from its
    /// resolution walk).
    fn count_dropped(&mut self, m: &dns::DnsMessage, chains_cut: u64) {
        self.answers_dropped += u64::from(m.answers_dropped);
        self.questions_dropped += u64::from(m.qdcount).saturating_sub(m.questions.len() as u64);
        self.chains_cut += chains_cut;
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
                    let (resolutions, chains_cut) = m.resolve_all();
                    self.count_dropped(&m, chains_cut);
                    for r in &resolutions {
                        self.insert(device, r, ts_ns);
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
                            for r in resolutions.iter().filter(|r| r.query == q.name) {
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
    // --- proxies and redirects (see `names::proxy`, `names::redirect`) ---
    /// The destination the client named to a proxy, once its request was read.
    pub proxy: Option<Box<ProxyTarget>>,
    /// Whether the proxy granted the request (`None`: no answer seen, or none expected).
    pub proxy_granted: Option<bool>,
    /// The first redirect to another host that a plaintext HTTP server answered.
    pub redirect: Option<Box<Redirect>>,
    socks: Option<Box<SocksTracker>>,
    /// The server's first response head so far, on plaintext HTTP flows.
    response_head: Option<Vec<u8>>,
    response_seen: bool,
    /// What the VPN and equipment recognisers learned (issue 8).
    vpn: ProtoTrack,
}

/// Per-flow facts of the VPN and equipment protocols that decide the encryption verdict.
#[derive(Default)]
struct ProtoTrack {
    /// An IKE message with protected payloads (or ESP in UDP on the same flow) was seen.
    ike_protected: bool,
    /// The SNMP message that classified the flow was SNMPv3 with privacy.
    snmp_private: bool,
    /// An SNMP message was parsed on this flow.
    snmp_seen: bool,
    /// HTTP payloads looked at for the CWMP namespace (a SOAP body after plain headers).
    cwmp_tries: u8,
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
    #[inline]
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
            // VPN tunnels: encrypted by construction (WireGuard's handshake already encrypts
            // the static key; OpenVPN's control channel is TLS; ESP is ciphertext past its SPI).
            // NETCONF runs inside SSH.
            Some(AppProto::Esp | AppProto::Wireguard | AppProto::Openvpn | AppProto::Netconf) => {
                Some(true)
            }
            // IKE: IKE_SA_INIT (and IKEv1's first exchanges) travel in the clear; the first
            // protected message, or ESP on the same NAT-T flow, settles it as encrypted.
            Some(AppProto::Ike) if self.vpn.ike_protected => Some(true),
            Some(AppProto::Ike) if !ended => None,
            // SNMPv3 with privacy encrypts its PDUs; v1, v2c and v3 without privacy do not.
            Some(AppProto::Snmp) => Some(self.vpn.snmp_private),
            // A proxy handshake: the proxied stream, not yet seen, decides.
            Some(AppProto::Socks4 | AppProto::Socks5 | AppProto::HttpProxy) if !ended => None,
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
    #[inline]
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
        self.observe_payload(p, outbound, device, ts_ns, dns_cache)
    }

    /// [`FlowInsight::observe`] of a packet with payload. Apart, so that a packet without
    /// payload (a third of a capture: handshakes, ACKs) costs the two checks above and no call.
    fn observe_payload(
        &mut self,
        p: &Packet<'_>,
        outbound: bool,
        device: IpAddr,
        ts_ns: i64,
        dns_cache: &mut PassiveDns,
    ) -> Learned {
        let before = (self.encrypted(false), self.app_proto, self.protocol(false));
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
        self.observe_proto(p);
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
            Some(AppProto::Http | AppProto::Cwmp | AppProto::Sstp | AppProto::Anyconnect)
                if outbound && !self.http_seen && !self.shed =>
            {
                // The request head may span segments (a long URL or User-Agent before Host):
                // gather the client's bytes, in order, up to the head limit.
                let head = self.http_head.get_or_insert_with(Vec::new);
                let room = http::HTTP_HEAD_MAX_BYTES.saturating_sub(head.len());
                head.extend_from_slice(p.payload.get(..room).unwrap_or(p.payload));
                let complete = head.windows(4).any(|w| w == b"\r\n\r\n")
                    || head.len() >= http::HTTP_HEAD_MAX_BYTES;
                let parsed = http::parse_request(head);
                if let Ok(r) = &parsed {
                    changed |= self.offer_proxy_request(r);
                }
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
        changed |= self.observe_proxy(p, outbound);
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
        changed |= before != (self.encrypted(false), self.app_proto, self.protocol(false));
        Learned { changed }
    }
}

impl FlowInsight {
    /// The protocol for the policy: `None` while nothing was classified, and while `unknown`
    /// may still become something else (a TCP flow whose first client bytes were not seen yet);
    /// with `ended`, whatever was found.
    #[inline]
    pub fn protocol(&self, ended: bool) -> Option<AppProto> {
        match self.app_proto {
            Some(AppProto::Unknown) if !ended && self.classify_tries < CLASSIFY_TRIES_MAX => None,
            p => p,
        }
    }

    /// Follows the VPN and equipment protocols past their first payload: IKE's protected
    /// messages, SNMPv3 privacy, and a CWMP SOAP body arriving after plain HTTP headers.
    fn observe_proto(&mut self, p: &Packet<'_>) {
        let ports = (p.src_port, p.dst_port);
        match self.app_proto {
            Some(AppProto::Ike) if p.transport == Transport::Udp && !self.vpn.ike_protected => {
                self.vpn.ike_protected = proto::ike(p.payload, ports).is_some_and(|h| h.protected)
                    || proto::esp_in_udp(p.payload, ports);
            }
            // IKE over TCP: each segment is looked at from its start (a frame split across
            // segments is missed, a later one is found).
            Some(AppProto::Ike) if p.transport == Transport::Tcp && !self.vpn.ike_protected => {
                self.vpn.ike_protected = proto::ike_tcp(p.payload) == Some(true);
            }
            Some(AppProto::Snmp) if p.transport == Transport::Udp => {
                if let Some(m) = proto::snmp(p.payload) {
                    // The first message decides; a later plaintext one makes it plaintext.
                    self.vpn.snmp_private =
                        m.private && (self.vpn.snmp_private || !self.vpn.snmp_seen);
                    self.vpn.snmp_seen = true;
                }
            }
            Some(AppProto::Http) if self.vpn.cwmp_tries < CLASSIFY_TRIES_MAX => {
                self.vpn.cwmp_tries += 1;
                if proto::cwmp_namespace(p.payload) {
                    self.app_proto = Some(AppProto::Cwmp);
                }
            }
            _ => {}
        }
    }
}

/// Proxies and redirects: what the client asked a proxy for, the proxy's answer, and the
/// server's redirects.
impl FlowInsight {
    /// An HTTP request that names a proxy target (CONNECT, absolute-form); true when it did.
    fn offer_proxy_request(&mut self, r: &http::HttpRequest) -> bool {
        if self.proxy.is_some() {
            return false;
        }
        let Some(target) = proxy::http_proxy_target(r) else {
            return false;
        };
        if r.form == http::TargetForm::Authority {
            if let Some(host) = &target.host {
                self.offer_name(host, HostnameSource::Proxy);
            }
            // CONNECT: the answer, then the tunnelled stream, follow.
            self.app_proto = Some(AppProto::HttpProxy);
        }
        self.proxy = Some(Box::new(target));
        true
    }

    /// The proxy's answer, the SOCKS handshake and redirects; true when a fact changed.
    #[inline(always)]
    fn observe_proxy(&mut self, p: &Packet<'_>, outbound: bool) -> bool {
        // Only the proxy handshakes and plain HTTP (for redirects) have anything to read here:
        // every other packet stops at this check, without a call.
        let proxy_or_http = matches!(
            self.app_proto,
            Some(AppProto::Socks4 | AppProto::Socks5 | AppProto::HttpProxy | AppProto::Http)
        );
        p.transport == Transport::Tcp && proxy_or_http && self.observe_proxy_stream(p, outbound)
    }

    /// [`FlowInsight::observe_proxy`] past its check: TCP, and a protocol it reads.
    fn observe_proxy_stream(&mut self, p: &Packet<'_>, outbound: bool) -> bool {
        match self.app_proto {
            Some(AppProto::Socks4 | AppProto::Socks5)
                if self.proxy.is_none() || self.socks.is_some() =>
            {
                let tr = self.socks.get_or_insert_with(Box::default);
                let mut changed = false;
                let target = if outbound {
                    tr.push_client(p.payload)
                        .then(|| tr.target.clone())
                        .flatten()
                } else {
                    tr.push_server(p.payload);
                    None
                };
                let (done, granted) = (tr.is_done(), tr.granted);
                if let Some(t) = target {
                    if let Some(host) = &t.host {
                        self.offer_name(host, HostnameSource::Proxy);
                    }
                    self.proxy = Some(Box::new(t));
                    changed = true;
                }
                if done {
                    self.proxy_granted = granted;
                    self.socks = None;
                    if self.proxy_granted == Some(true) {
                        self.reclassify();
                    }
                    changed = true;
                }
                changed
            }
            Some(AppProto::HttpProxy) if !outbound && self.proxy_granted.is_none() => {
                match http::parse_response_status(p.payload).map(|st| st.code) {
                    Ok(200..=299) => {
                        self.proxy_granted = Some(true);
                        self.reclassify();
                        true
                    }
                    // 407: the client answers the challenge with another CONNECT on this
                    // connection (NTLM and Negotiate always do), and 1xx is interim: the next
                    // status decides.
                    Ok(100..=199 | 407) => false,
                    Ok(_) => {
                        self.proxy_granted = Some(false);
                        true
                    }
                    // Not a status line: the body of an earlier answer, or one cut short.
                    Err(_) => false,
                }
            }
            Some(AppProto::Http) if !outbound && !self.response_seen => {
                let head = self.response_head.get_or_insert_with(Vec::new);
                let room = http::HTTP_HEAD_MAX_BYTES.saturating_sub(head.len());
                head.extend_from_slice(p.payload.get(..room).unwrap_or(p.payload));
                match redirect::parse_redirect(head) {
                    Err(http::HttpError::Incomplete) if head.len() < http::HTTP_HEAD_MAX_BYTES => {
                        false
                    }
                    done => {
                        self.response_seen = true;
                        self.response_head = None;
                        match done {
                            Ok(Some(r)) if r.has_host() => {
                                self.redirect = Some(Box::new(r));
                                true
                            }
                            _ => false,
                        }
                    }
                }
            }
            _ => false,
        }
    }

    /// The proxy granted the request: what follows is the proxied stream, classified afresh.
    fn reclassify(&mut self) {
        self.app_proto = None;
        self.classify_tries = 0;
        self.http_seen = false;
        self.http_head = None;
        self.tls = None;
        self.vpn = ProtoTrack::default();
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
        let response = self.response_head.as_ref().map_or(0, Vec::capacity);
        tls + quic + dns + http + response
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
        self.response_head = None;
        self.response_seen = true;
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
    fn names_resolve_to_their_newest_addresses_per_device() {
        let mut cache = PassiveDns::default();
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        for i in 1..=6u8 {
            let a = format!("198.18.1.{i}");
            cache.insert(dev, &resolution("api.vendor.example", &a, 30), 0);
        }
        let got = cache.lookup_name(dev, "api.vendor.example", 1);
        assert_eq!(got.len(), DNS_NAME_ADDRS_MAX);
        assert_eq!(got.last(), Some(&"198.18.1.6".parse().unwrap()));
        assert!(
            cache
                .lookup_name("192.168.1.60".parse().unwrap(), "api.vendor.example", 1)
                .is_empty()
        );
        assert!(
            cache
                .lookup_name(dev, "api.vendor.example", 31_000_000_000 + DNS_TTL_GRACE_NS)
                .is_empty()
        );
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
    fn an_answer_seen_again_survives_the_next_rotation() {
        // Cap 4: two entries per generation.
        let mut cache = PassiveDns::with_cap(4);
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        let put = |cache: &mut PassiveDns, name: &str, addr: &str| {
            cache.insert(dev, &resolution(name, addr, 300), 0);
        };
        put(&mut cache, "a.example", "198.18.1.1");
        put(&mut cache, "b.example", "198.18.1.2");
        put(&mut cache, "c.example", "198.18.1.3"); // a and b become old
        put(&mut cache, "a.example", "198.18.1.1"); // a answered again: young
        put(&mut cache, "d.example", "198.18.1.4"); // c and a become old, b dropped
        put(&mut cache, "e.example", "198.18.1.5");
        assert!(
            cache
                .lookup(dev, "198.18.1.1".parse().unwrap(), 1)
                .is_some()
        );
        assert!(
            cache
                .lookup(dev, "198.18.1.2".parse().unwrap(), 1)
                .is_none()
        );
        assert_eq!(
            cache.lookup_name(dev, "a.example", 1),
            &["198.18.1.1".parse::<IpAddr>().unwrap()]
        );
        assert!(cache.lookup_name(dev, "b.example", 1).is_empty());
        assert!(cache.len() <= 4);
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

    // ---- VPN and equipment protocols (issue 8) ----------------------------------------------

    use crate::craft::proto as m;
    use crate::decode::Fragment;

    fn pkt(transport: Transport, ports: (u16, u16), payload: &[u8]) -> Packet<'_> {
        Packet {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src: "192.168.1.50".parse().unwrap(),
            dst: "203.0.113.9".parse().unwrap(),
            transport,
            src_port: ports.0,
            dst_port: ports.1,
            tcp_flags: 0x18,
            seq: 1,
            ip_len: 0,
            payload_len: u32::try_from(payload.len()).unwrap(),
            payload,
            fragment: Fragment::None,
            tunnel: None,
        }
    }

    fn feed(f: &mut FlowInsight, p: &Packet<'_>, outbound: bool) -> bool {
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        f.observe(p, outbound, dev, 0, &mut PassiveDns::default())
            .changed
    }

    #[test]
    fn ike_is_encrypted_once_a_protected_message_is_seen() {
        let mut f = FlowInsight::default();
        let init = m::ike_sa_init(false);
        assert!(feed(&mut f, &pkt(Transport::Udp, (500, 500), &init), true));
        assert_eq!(f.app_proto, Some(AppProto::Ike));
        assert_eq!(f.protocol(false), Some(AppProto::Ike));
        assert_eq!(f.encrypted(false), None, "IKE_SA_INIT is in the clear");
        assert_eq!(
            f.encrypted(true),
            Some(false),
            "no protected message by the end"
        );
        let auth = m::ike_auth(false, 100);
        assert!(feed(&mut f, &pkt(Transport::Udp, (500, 500), &auth), true));
        assert_eq!(f.encrypted(false), Some(true));
        // On the NAT-T port, ESP after the IKE messages settles it too.
        let mut g = FlowInsight::default();
        let marked = m::non_esp_marker(&m::ike_sa_init(false));
        feed(&mut g, &pkt(Transport::Udp, (4500, 4500), &marked), true);
        assert_eq!(g.encrypted(false), None);
        let esp = m::esp(0x1000, 1, 64);
        assert!(feed(&mut g, &pkt(Transport::Udp, (4500, 4500), &esp), true));
        assert_eq!(
            (g.app_proto, g.encrypted(false)),
            (Some(AppProto::Ike), Some(true))
        );
    }

    #[test]
    fn vpns_are_encrypted_equipment_protocols_are_not() {
        for (transport, ports, payload, proto, enc) in [
            (
                Transport::Other(50),
                (0, 0),
                m::esp(0x1000, 1, 64),
                AppProto::Esp,
                true,
            ),
            (
                Transport::Udp,
                (40000, 51820),
                m::wireguard(1, 0),
                AppProto::Wireguard,
                true,
            ),
            (
                Transport::Udp,
                (40000, 1194),
                m::openvpn_hard_reset(false),
                AppProto::Openvpn,
                true,
            ),
            (
                Transport::Udp,
                (40000, 514),
                m::syslog(34, "x"),
                AppProto::Syslog,
                false,
            ),
            (
                Transport::Udp,
                (123, 123),
                m::ntp_client(),
                AppProto::Ntp,
                false,
            ),
            (
                Transport::Udp,
                (40000, 162),
                m::snmp_v2c(1, "public", 0xa7),
                AppProto::Snmp,
                false,
            ),
            (
                Transport::Udp,
                (40000, 162),
                m::snmp_v3(true, 0xa6),
                AppProto::Snmp,
                true,
            ),
            (
                Transport::Udp,
                (40000, 162),
                m::snmp_v3(false, 0xa6),
                AppProto::Snmp,
                false,
            ),
            (
                Transport::Udp,
                (40000, 5683),
                m::coap_post("t"),
                AppProto::Coap,
                false,
            ),
            (
                Transport::Tcp,
                (40000, 1883),
                m::mqtt_connect("c"),
                AppProto::Mqtt,
                false,
            ),
            (
                Transport::Tcp,
                (40000, 830),
                b"SSH-2.0-x\r\n".to_vec(),
                AppProto::Netconf,
                true,
            ),
        ] {
            let mut f = FlowInsight::default();
            feed(&mut f, &pkt(transport, ports, &payload), true);
            assert_eq!(f.app_proto, Some(proto));
            assert_eq!(f.encrypted(false), Some(enc), "{proto}");
            assert_eq!(f.encrypted(true), Some(enc), "{proto} at the end");
        }
        // A plaintext SNMP message after a private one makes the flow plaintext.
        let mut f = FlowInsight::default();
        feed(
            &mut f,
            &pkt(Transport::Udp, (40000, 162), &m::snmp_v3(true, 0xa6)),
            true,
        );
        feed(
            &mut f,
            &pkt(Transport::Udp, (162, 40000), &m::snmp_v2c(1, "p", 0xa2)),
            false,
        );
        assert_eq!(f.encrypted(false), Some(false));
    }

    #[test]
    fn a_cwmp_body_after_plain_headers_makes_the_flow_cwmp() {
        let inform = m::cwmp_inform("acs.example");
        let split = inform.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut f = FlowInsight::default();
        feed(
            &mut f,
            &pkt(Transport::Tcp, (40000, 80), &inform[..split]),
            true,
        );
        assert_eq!(f.app_proto, Some(AppProto::Http));
        assert_eq!(f.hostname.as_ref().map(|h| &*h.name), Some("acs.example"));
        assert!(feed(
            &mut f,
            &pkt(Transport::Tcp, (40000, 80), &inform[split..]),
            true
        ));
        assert_eq!(f.app_proto, Some(AppProto::Cwmp));
        assert_eq!(f.hostname.as_ref().map(|h| &*h.name), Some("acs.example"));
    }

    #[test]
    fn the_policy_sees_unknown_only_once_it_is_settled() {
        let mut f = FlowInsight::default();
        // A TCP segment that is not the client's first byte: a ClientHello may still come.
        feed(
            &mut f,
            &pkt(Transport::Tcp, (40000, 443), b"\x01\x02\x03"),
            true,
        );
        assert_eq!(f.app_proto, Some(AppProto::Unknown));
        assert_eq!(f.protocol(false), None);
        assert_eq!(f.protocol(true), Some(AppProto::Unknown));
        // A datagram is settled at once.
        let mut g = FlowInsight::default();
        feed(
            &mut g,
            &pkt(Transport::Udp, (40000, 9999), b"\x01\x02\x03"),
            true,
        );
        assert_eq!(g.protocol(false), Some(AppProto::Unknown));
    }
}
