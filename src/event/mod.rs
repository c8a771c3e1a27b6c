//! Events: the output contract. Alerts, flow records and the end-of-run summary.
//!
//! Everything a sink writes is one of these types; their field names and nesting are what users
//! script against (documented in docs/json-format.md, with an ECS mapping). Fields serialize in
//! declaration order, absent values are left out rather than written as sentinels, and time is
//! always packet time, so the same input gives byte-identical output.

mod json;
mod time;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::decode::{Mac, Transport};
use crate::geoip::{CountryCode, DatabaseInfo};
use crate::policy::Severity;

pub use json::{Object, ToJson, write_summary};
pub use time::Rfc3339;

/// Version of the JSON schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Which event types to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSet {
    pub alert: bool,
    pub flow: bool,
    pub summary: bool,
    pub dns: bool,
}

impl EventSet {
    pub const ALL: EventSet = EventSet {
        alert: true,
        flow: true,
        summary: true,
        dns: true,
    };

    /// Parses a comma-separated list such as `alert,summary`.
    pub fn parse(list: &str) -> Result<EventSet, String> {
        let mut set = EventSet {
            alert: false,
            flow: false,
            summary: false,
            dns: false,
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "alert" => set.alert = true,
                "flow" => set.flow = true,
                "summary" => set.summary = true,
                "dns" => set.dns = true,
                "all" => set = EventSet::ALL,
                other => {
                    return Err(format!(
                        "unknown event type {other:?}: use alert, flow, summary, dns or all"
                    ));
                }
            }
        }
        Ok(set)
    }
}

/// The rule behind an alert.
#[derive(Clone, Debug, Serialize)]
pub struct RuleRef {
    pub id: String,
    pub severity: Severity,
    pub reason: String,
}

/// The device side of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRef {
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The remote side of a flow, with what the databases say about it.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteRef {
    /// The destination's address. For a proxied flow, the target the client named (the literal,
    /// or what a DNS answer in the capture gave the device for the name); absent when the
    /// target was named only by a name the capture never resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<Arc<str>>,
    /// The best name for the remote: from the flow itself (TLS SNI, QUIC, HTTP Host) or from a
    /// DNS answer seen in the capture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Arc<str>>,
    /// `sni`, `quic`, `proxy`, `http` or `dns`; `redirect` for an alert on a redirect target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname_source: Option<&'static str>,
    /// When a DNS answer named the remote: the name the device asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_query: Option<Arc<str>>,
    /// Name of the database that gave the country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_source: Option<String>,
}

/// What a flow went through before its destination: the tunnel that carried it, the proxy that
/// relayed it, or the server that redirected the device to it.
#[derive(Clone, Debug, Serialize)]
pub struct ViaRef {
    /// gre, erspan, ipip, 6in4, 4in6, ip6ip6, vxlan, geneve, gtpu or teredo (the outermost
    /// tunnel); http-proxy, socks4 or socks5 (a proxy); redirect (an HTTP 3xx).
    pub kind: &'static str,
    /// The tunnel endpoint on the far side (the outer address that is not local), the proxy,
    /// or the redirecting server.
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Levels of encapsulation opened (tunnels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<u8>,
    /// The proxy's or redirecting server's port (not for tunnels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A plaintext HTTP redirect (3xx with a `Location` naming another host) answered on a flow.
#[derive(Clone, Debug, Serialize)]
pub struct RedirectRef {
    pub status: u16,
    /// The `Location` value, cleaned and cut like names.
    pub location: String,
    /// The target's name, when the `Location` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The target's address: a literal in the `Location`, or what a DNS answer in the capture
    /// gave the device for the name by the time of the redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// Where in the input an event was triggered.
#[derive(Clone, Debug, Serialize)]
pub struct SourceRef {
    pub kind: &'static str,
    pub name: String,
    /// 1-based index of the packet within its input.
    pub packet: u64,
}

/// A rule fired on a flow.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub timestamp: Rfc3339,
    pub event_type: &'static str,
    pub schema: u32,
    pub flow_id: FlowId,
    pub rule: RuleRef,
    pub device: DeviceRef,
    pub remote: RemoteRef,
    /// The tunnel that carried the flow, when it was decapsulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<ViaRef>,
    pub transport: Transport,
    /// What the payload was recognised as: tls, dtls, quic, ssh, http, dns or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    /// Whether the payload so far was encrypted; absent while not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
    pub source: SourceRef,
    /// The flow carries the device's DNS queries: to which kind of resolver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<ResolverRef>,
}

/// A flow that ended, with its totals.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRecord {
    /// When the flow ended (its last packet).
    pub timestamp: Rfc3339,
    pub event_type: &'static str,
    pub schema: u32,
    pub flow_id: FlowId,
    pub start: Rfc3339,
    pub end: Rfc3339,
    /// `idle`, `reused`, `evicted` or `end_of_input`.
    pub end_reason: &'static str,
    pub device: DeviceRef,
    pub remote: RemoteRef,
    /// The tunnel that carried the flow, when it was decapsulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<ViaRef>,
    pub transport: Transport,
    /// Both endpoints are local: not egress.
    pub internal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    /// true: an encrypted protocol whose handshake completed; false: payload without one;
    /// absent: no payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<&'static str>,
    /// The first ALPN protocol the client offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Arc<str>>,
    /// false when no DNS answer in the capture named the remote for this device (a hard-coded
    /// address); absent when that cannot be said (non-public remote, start of capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_named: Option<bool>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
    pub payload_bytes_out: u64,
    pub payload_bytes_in: u64,
    /// TCP flags seen from the device and from the remote, as tcpdump letters (`SAFRPU`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags_out: Option<TcpFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags_in: Option<TcpFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Ids of the rules that fired on this flow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// Alerts of this flow not written because an identical one (rule, device, remote) was
    /// written within the de-duplication window.
    #[serde(skip_serializing_if = "is_zero")]
    pub alerts_suppressed: u64,
    pub source: SourceRef,
    /// The redirect the server answered on this flow, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectRef>,
    /// The flow carries the device's DNS queries: to which kind of resolver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<ResolverRef>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// TCP flags seen on a flow, written as tcpdump-style letters in a fixed order: S(YN) A(CK)
/// F(IN) R(ST) P(SH) U(RG) E(CE) C(WR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    const LETTERS: [(u8, u8); 8] = [
        (0x02, b'S'),
        (0x10, b'A'),
        (0x01, b'F'),
        (0x04, b'R'),
        (0x08, b'P'),
        (0x20, b'U'),
        (0x40, b'E'),
        (0x80, b'C'),
    ];

    /// The letters, in `buf`; returns how many.
    fn letters(self, buf: &mut [u8; 8]) -> usize {
        let mut n = 0;
        for (bit, letter) in TcpFlags::LETTERS {
            if self.0 & bit != 0 {
                buf[n] = letter;
                n += 1;
            }
        }
        n
    }
}

impl std::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; 8];
        let n = self.letters(&mut buf);
        // Only ASCII letters were written.
        f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 8];
        let n = self.letters(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }
}

/// Bytes and flows towards one country or operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub flows: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
}

impl Traffic {
    pub fn add(&mut self, bytes_out: u64, bytes_in: u64, packets_out: u64, packets_in: u64) {
        self.flows += 1;
        self.bytes_out += bytes_out;
        self.bytes_in += bytes_in;
        self.packets_out += packets_out;
        self.packets_in += packets_in;
    }
}

/// Alert counts for one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub severity: String,
    /// Alerts written.
    pub alerts: u64,
    /// Alerts de-duplicated away.
    pub suppressed: u64,
}

/// Everything one device did, as the summary reports it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceSummary {
    pub device: DeviceRef,
    /// Egress traffic (not internal) in total.
    pub egress: Traffic,
    /// Egress by remote country; `unknown` for public remotes no database places, `non-public`
    /// for multicast, broadcast and other addresses that never get a country.
    pub countries: BTreeMap<String, Traffic>,
    /// Egress by autonomous system number, where known.
    pub asns: BTreeMap<u32, Traffic>,
    pub internal: Traffic,
    /// Egress bytes on flows found encrypted, found plaintext, and with no payload.
    pub encryption: EncryptionBytes,
    /// Names contacted (hostname of each egress flow) with the countries they were served from.
    pub names: BTreeMap<String, NameSummary>,
    /// Names not listed because the per-device cap was reached.
    #[serde(skip_serializing_if = "is_zero")]
    pub names_dropped: u64,
    /// Public remote addresses contacted that no DNS answer in the capture named.
    pub hardcoded: Vec<IpAddr>,
    pub alerts: BTreeMap<String, RuleCount>,
    /// The DNS resolvers the device sent queries to, sorted by address then kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<ResolverSummary>,
    /// Resolvers not listed because the per-device cap was reached (flows counted).
    #[serde(skip_serializing_if = "is_zero")]
    pub resolvers_dropped: u64,
}

/// Egress bytes by encryption verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EncryptionBytes {
    pub encrypted_bytes_out: u64,
    pub plaintext_bytes_out: u64,
    pub no_payload_bytes_out: u64,
}

/// One name a device contacted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NameSummary {
    pub countries: std::collections::BTreeSet<String>,
    pub flows: u64,
    pub bytes_out: u64,
    /// How the name was learned, the strongest source seen.
    pub source: String,
}

/// An input and how reading it went.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub name: String,
    pub frames: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Live capture: frames the kernel (or libpcap) dropped on this interface; absent in replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<u64>,
}

/// Counters of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunCounters {
    pub frames: u64,
    pub packets: u64,
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    /// Frames of link types not decoded, by link type number.
    pub unsupported_link_types: BTreeMap<u32, u64>,
    pub fragments: u64,
    pub fragments_unmatched: u64,
    /// Packets taken out of tunnels, by kind (one per level opened).
    pub tunnels: BTreeMap<&'static str, u64>,
    pub tunnel_malformed: u64,
    pub tunnel_not_decoded: u64,
    pub tunnel_depth_exceeded: u64,
    pub dns_responses: u64,
    pub dns_malformed: u64,
    pub dns_cache_evicted: u64,
    pub tls_hello_failures: u64,
    pub flows: u64,
    pub flows_evicted: u64,
    pub flows_peak: u64,
    pub alerts: u64,
    pub alerts_suppressed: u64,
    pub geoip_lookup_errors: u64,
    /// Times the GeoIP databases were reloaded during the run (live: SIGHUP or a file replaced).
    pub geoip_reloads: u64,
    /// Redirect targets forgotten before a flow could follow them because the table of pending
    /// redirects was full (absent when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub redirects_forgotten: u64,
}

/// The end-of-run summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The last packet's time; absent when the run saw no packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Rfc3339>,
    pub event_type: &'static str,
    pub schema: u32,
    pub tool: String,
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_packet: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_packet: Option<Rfc3339>,
    pub inputs: Vec<InputSummary>,
    pub databases: Vec<DatabaseInfo>,
    pub counters: RunCounters,
    /// Alerts by rule across all devices.
    pub alerts: BTreeMap<String, RuleCount>,
    pub devices: Vec<DeviceSummary>,
    /// Every cap on what the input could make the run hold or write, and what it dropped.
    pub limits: crate::limits::Limits,
}

/// A DNS response the device received (`--events dns`).
#[derive(Clone, Debug, Serialize)]
pub struct DnsRecord {
    pub timestamp: Rfc3339,
    pub event_type: &'static str,
    pub schema: u32,
    pub device: DeviceRef,
    pub resolver: IpAddr,
    /// The name the device asked for.
    pub query: String,
    /// The response code (0 is NOERROR, 3 NXDOMAIN).
    pub rcode: u8,
    /// Addresses the name resolved to (A and AAAA, through CNAMEs).
    pub answers: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cname_chain: Vec<String>,
    /// The smallest TTL along the answer chain, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

/// One event, as sinks receive it.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Alert(&'a Alert),
    Flow(&'a FlowRecord),
    Summary(&'a Summary),
    Dns(&'a DnsRecord),
}

/// A flow's id (an FNV-1a hash of its 5-tuple and first-packet time), written as 16
/// lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId(pub u64);

impl FlowId {
    /// The 16 hex digits, as `format!("{:016x}")` writes them.
    fn hex(self) -> [u8; 16] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = HEX[((self.0 >> ((15 - i) * 4)) & 0xf) as usize];
        }
        digits
    }
}

impl std::fmt::Display for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only hex digits were written.
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or("0000000000000000"))
    }
}

impl Serialize for FlowId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.hex()).unwrap_or("0000000000000000"))
    }
}

/// Live mode: counters of one interface, in a [`Stats`] event.
#[derive(Clone, Debug, Serialize)]
pub struct InterfaceStats {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// Frames the kernel dropped on this interface since capture started; absent when the
    /// backend does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<u64>,
}

/// Live mode: periodic counters (`event_type` `stats`), all since capture started. The
/// timestamp is wall-clock time.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub timestamp: Rfc3339,
    pub event_type: &'static str,
    pub schema: u32,
    /// Seconds since capture started.
    pub uptime_s: f64,
    /// Frames captured.
    pub packets: u64,
    /// Bytes captured (frame lengths on the wire).
    pub bytes: u64,
    /// Flows held now.
    pub flows_active: u64,
    /// Flows created.
    pub flows: u64,
    pub alerts: u64,
    pub alerts_suppressed: u64,
    /// Kernel drops over all interfaces; absent when no interface's backend says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<u64>,
    /// Times the GeoIP databases were reloaded since the start.
    pub geoip_reloads: u64,
    pub interfaces: Vec<InterfaceStats>,
    /// Every cap and what it dropped since the start (as in the summary).
    pub limits: crate::limits::Limits,
}

/// A resolver flow's kind (`resolver` in alerts and flow records).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolverRef {
    /// `dns`, `dot`, `doh` or `doq`.
    pub kind: &'static str,
    /// Plain DNS: queries the device sent on the flow (UDP datagrams and TCP segments that
    /// start with one); absent for the encrypted kinds, whose queries are not visible.
    #[serde(skip_serializing_if = "is_zero")]
    pub queries: u64,
}

/// One resolver a device used (`devices[].resolvers` in the summary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolverSummary {
    pub ip: IpAddr,
    /// `dns`, `dot`, `doh` or `doq`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The resolver's name, as the first of its flows with a name had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub flows: u64,
    /// Plain DNS queries counted (see [`ResolverRef::queries`]); 0 for the encrypted kinds.
    pub queries: u64,
    pub bytes_out: u64,
    pub first_seen: Rfc3339,
    pub last_seen: Rfc3339,
}
