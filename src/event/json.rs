//! The JSON text of events, written straight into a byte buffer.
//!
//! Every flow record and alert is written as one line, so this is on the hot path of a replay:
//! serde_json's generic machinery (an escape-table look-up per byte of every key, `core::fmt`
//! for addresses and `Display` fields, a layer of calls per map entry) cost ~23 instructions per
//! byte written. Here keys are literals written as they are, strings are escaped run by run,
//! integers go through `itoa`, and addresses, MACs and timestamps are formatted by hand.
//!
//! The derived `Serialize` impls in `event/mod.rs` stay the specification: for every type here,
//! the tests check that [`ToJson`] writes exactly the bytes `serde_json::to_vec` writes (same
//! key order, same omitted fields, same escaping), over arbitrary values.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{
    Alert, DeviceRef, DeviceSummary, DnsRecord, EncryptionBytes, FlowId, FlowRecord, NameSummary,
    RedirectRef, RemoteRef, ResolverRef, ResolverSummary, Rfc3339, RuleCount, RuleRef, SourceRef,
    Summary, TcpFlags, Traffic, ViaRef,
};
use crate::decode::{Mac, Transport};
use crate::geoip::CountryCode;
use crate::policy::Severity;

/// A value that writes itself as JSON, byte for byte as serde_json writes its `Serialize` form.
pub trait ToJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Writes a JSON object field by field, in the order of the calls.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Starts a field. `key` is a literal of the schema: plain ASCII that needs no escaping.
    /// Inlined, so that each key's length is a constant and its copy a few stores.
    #[inline(always)]
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{key:?} needs escaping"
        );
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub fn field<T: ToJson + ?Sized>(&mut self, key: &'static str, value: &T) {
        self.key(key);
        value.write_json(self.out);
    }

    /// A field left out when absent (`skip_serializing_if = "Option::is_none"`).
    #[inline(always)]
    pub fn opt<T: ToJson>(&mut self, key: &'static str, value: &Option<T>) {
        if let Some(v) = value {
            self.field(key, v);
        }
    }

    /// A count left out when zero (`skip_serializing_if = "is_zero"`).
    #[inline(always)]
    pub fn nonzero(&mut self, key: &'static str, value: u64) {
        if value != 0 {
            self.field(key, &value);
        }
    }

    /// A list left out when empty (`skip_serializing_if = "Vec::is_empty"`).
    #[inline(always)]
    pub fn nonempty<T: ToJson>(&mut self, key: &'static str, value: &[T]) {
        if !value.is_empty() {
            self.field(key, value);
        }
    }

    /// A field written through serde_json: for the parts of the summary that are written
    /// once per run and are not worth a hand-written twin.
    pub fn serde<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value)
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

// --- Scalars ---

/// Lower-case hex digits, as serde_json writes `\u00XX` and std writes addresses.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether serde_json escapes this byte: `"`, `\` and the control characters below 0x20.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// How many bytes at the start of `bytes` need no escaping. Eight bytes at a time: a word
/// has no byte to escape when it has no byte below 0x20 and none equal to `"` or `\`.
fn clean_prefix(bytes: &[u8]) -> usize {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether some byte of `w` is below `n` (n <= 0x80): exact for the word as a whole.
    let has_below = |w: u64, n: u8| w.wrapping_sub(LOW * u64::from(n)) & !w & HIGH != 0;
    let has_byte = |w: u64, b: u8| has_below(w ^ (LOW * u64::from(b)), 1);
    let mut i = 0;
    while let Some(word) = bytes[i..].first_chunk::<8>() {
        let w = u64::from_le_bytes(*word);
        if has_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            break;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| needs_escape(b))
        .unwrap_or(bytes.len() - i)
}

/// A JSON string: runs of bytes that need no escaping are copied whole; `\b \f \n \r \t` get
/// their short forms and other control characters `\u00XX`; non-ASCII UTF-8 is kept as is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    loop {
        let clean = clean_prefix(rest);
        out.extend_from_slice(&rest[..clean]);
        let Some((&b, tail)) = rest[clean..].split_first() else {
            break;
        };
        rest = tail;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                continue;
            }
        };
        out.push(b'\\');
        out.push(short);
    }
    out.push(b'"');
}

/// A string known to need no escaping (digits, hex, addresses), in quotes.
#[inline]
fn write_plain(out: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(!s.iter().any(|&b| needs_escape(b)));
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, n: I) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

impl ToJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJson for std::sync::Arc<str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

macro_rules! int_to_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                write_int(out, *self);
            }
        }
    )*};
}
int_to_json!(u8, u16, u32, u64);

/// An IPv4 address in dotted decimal, as std's `Display` writes it.
fn write_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_int(out, octet);
    }
}

/// Hex without leading zeros, lower case.
fn write_hex_u16(out: &mut Vec<u8>, v: u16) {
    let digits = (16 - v.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[usize::from((v >> (shift * 4)) & 0xf)]);
    }
}

/// Colon-separated groups.
fn write_groups(out: &mut Vec<u8>, groups: &[u16]) {
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        write_hex_u16(out, g);
    }
}

/// An IPv6 address as std's `Display` writes it (RFC 5952): IPv4-mapped addresses as
/// `::ffff:a.b.c.d`; otherwise groups in hex without leading zeros, the longest run of two or
/// more zero groups (the first of equal runs) written `::`.
fn write_ipv6(out: &mut Vec<u8>, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        write_ipv4(out, v4);
        return;
    }
    let groups = ip.segments();
    // (start, len) of the longest run of zero groups.
    let (mut best, mut current) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        if g != 0 {
            current = (i + 1, 0);
            continue;
        }
        current.1 += 1;
        if current.1 > best.1 {
            best = current;
        }
    }
    let (start, len) = best;
    if len > 1 {
        write_groups(out, &groups[..start]);
        out.extend_from_slice(b"::");
        write_groups(out, &groups[start + len..]);
    } else {
        write_groups(out, &groups);
    }
}

/// An address, unquoted.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => write_ipv4(out, v4),
        IpAddr::V6(v6) => write_ipv6(out, v6),
    }
}

impl ToJson for IpAddr {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        write_ip(out, *self);
        out.push(b'"');
    }
}

impl ToJson for Mac {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut text = [b':'; 17];
        for (i, byte) in self.0.into_iter().enumerate() {
            text[i * 3] = HEX[usize::from(byte >> 4)];
            text[i * 3 + 1] = HEX[usize::from(byte & 0xf)];
        }
        write_plain(out, &text);
    }
}

impl ToJson for CountryCode {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self.as_str());
    }
}

impl ToJson for Rfc3339 {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 32];
        let n = self.render(&mut buf);
        write_plain(out, &buf[..n]);
    }
}

impl ToJson for FlowId {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_plain(out, &self.hex());
    }
}

impl ToJson for TcpFlags {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 8];
        let n = self.letters(&mut buf);
        write_plain(out, &buf[..n]);
    }
}

impl ToJson for Transport {
    /// The `Display` names: `tcp`, `udp`, `icmp`, `icmpv6`, `ip-proto-N`.
    fn write_json(&self, out: &mut Vec<u8>) {
        let name: &[u8] = match self {
            Transport::Tcp => b"tcp",
            Transport::Udp => b"udp",
            Transport::Icmp => b"icmp",
            Transport::Icmpv6 => b"icmpv6",
            Transport::Other(n) => {
                out.extend_from_slice(b"\"ip-proto-");
                write_int(out, *n);
                out.push(b'"');
                return;
            }
        };
        write_plain(out, name);
    }
}

impl ToJson for Severity {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self.as_str());
    }
}

// --- Collections ---

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson> ToJson for BTreeSet<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }
}

/// A map key: serde_json writes string keys escaped and integer keys as quoted digits.
pub trait ToJsonKey {
    fn write_key(&self, out: &mut Vec<u8>);
}

impl ToJsonKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJsonKey for &str {
    fn write_key(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJsonKey for u32 {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        write_int(out, *self);
        out.push(b'"');
    }
}

impl<K: ToJsonKey, V: ToJson> ToJson for BTreeMap<K, V> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            k.write_key(out);
            out.push(b':');
            v.write_json(out);
        }
        out.push(b'}');
    }
}

// --- Events, field by field in declaration order (the order serde writes) ---

impl ToJson for RuleRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("id", &self.id);
        o.field("severity", &self.severity);
        o.field("reason", &self.reason);
        o.end();
    }
}

impl ToJson for DeviceRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("ip", &self.ip);
        o.opt("port", &self.port);
        o.opt("mac", &self.mac);
        o.opt("name", &self.name);
        o.end();
    }
}

impl ToJson for RemoteRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.opt("ip", &self.ip);
        o.opt("port", &self.port);
        o.opt("country", &self.country);
        o.opt("registered_country", &self.registered_country);
        o.opt("asn", &self.asn);
        o.opt("as_org", &self.as_org);
        o.opt("hostname", &self.hostname);
        o.opt("hostname_source", &self.hostname_source);
        o.opt("dns_query", &self.dns_query);
        o.opt("geo_source", &self.geo_source);
        o.end();
    }
}

impl ToJson for ViaRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("kind", self.kind);
        o.field("ip", &self.ip);
        o.opt("country", &self.country);
        o.opt("asn", &self.asn);
        o.opt("depth", &self.depth);
        o.opt("port", &self.port);
        o.end();
    }
}

impl ToJson for RedirectRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("status", &self.status);
        o.field("location", &self.location);
        o.opt("host", &self.host);
        o.opt("port", &self.port);
        o.opt("ip", &self.ip);
        o.opt("country", &self.country);
        o.opt("asn", &self.asn);
        o.end();
    }
}

impl ToJson for SourceRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("kind", self.kind);
        o.field("name", &self.name);
        o.field("packet", &self.packet);
        o.end();
    }
}

impl ToJson for ResolverRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("kind", self.kind);
        o.nonzero("queries", self.queries);
        o.end();
    }
}

impl ToJson for Alert {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("timestamp", &self.timestamp);
        o.field("event_type", self.event_type);
        o.field("schema", &self.schema);
        o.field("flow_id", &self.flow_id);
        o.field("rule", &self.rule);
        o.field("device", &self.device);
        o.field("remote", &self.remote);
        o.opt("via", &self.via);
        o.field("transport", &self.transport);
        o.opt("app_proto", &self.app_proto);
        o.opt("encrypted", &self.encrypted);
        o.field("bytes_out", &self.bytes_out);
        o.field("bytes_in", &self.bytes_in);
        o.field("packets_out", &self.packets_out);
        o.field("packets_in", &self.packets_in);
        o.field("source", &self.source);
        o.opt("resolver", &self.resolver);
        o.end();
    }
}

impl ToJson for FlowRecord {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("timestamp", &self.timestamp);
        o.field("event_type", self.event_type);
        o.field("schema", &self.schema);
        o.field("flow_id", &self.flow_id);
        o.field("start", &self.start);
        o.field("end", &self.end);
        o.field("end_reason", self.end_reason);
        o.field("device", &self.device);
        o.field("remote", &self.remote);
        o.opt("via", &self.via);
        o.field("transport", &self.transport);
        o.field("internal", &self.internal);
        o.opt("app_proto", &self.app_proto);
        o.opt("encrypted", &self.encrypted);
        o.opt("tls_version", &self.tls_version);
        o.opt("alpn", &self.alpn);
        o.opt("dns_named", &self.dns_named);
        o.field("bytes_out", &self.bytes_out);
        o.field("bytes_in", &self.bytes_in);
        o.field("packets_out", &self.packets_out);
        o.field("packets_in", &self.packets_in);
        o.field("payload_bytes_out", &self.payload_bytes_out);
        o.field("payload_bytes_in", &self.payload_bytes_in);
        o.opt("tcp_flags_out", &self.tcp_flags_out);
        o.opt("tcp_flags_in", &self.tcp_flags_in);
        o.opt("vlan", &self.vlan);
        o.nonempty("alerts", &self.alerts);
        o.nonzero("alerts_suppressed", self.alerts_suppressed);
        o.field("source", &self.source);
        o.opt("redirect", &self.redirect);
        o.opt("resolver", &self.resolver);
        o.end();
    }
}

impl ToJson for DnsRecord {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("timestamp", &self.timestamp);
        o.field("event_type", self.event_type);
        o.field("schema", &self.schema);
        o.field("device", &self.device);
        o.field("resolver", &self.resolver);
        o.field("query", &self.query);
        o.field("rcode", &self.rcode);
        o.field("answers", &self.answers);
        o.nonempty("cname_chain", &self.cname_chain);
        o.opt("ttl", &self.ttl);
        o.end();
    }
}

impl ToJson for Traffic {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("flows", &self.flows);
        o.field("bytes_out", &self.bytes_out);
        o.field("bytes_in", &self.bytes_in);
        o.field("packets_out", &self.packets_out);
        o.field("packets_in", &self.packets_in);
        o.end();
    }
}

impl ToJson for RuleCount {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("severity", &self.severity);
        o.field("alerts", &self.alerts);
        o.field("suppressed", &self.suppressed);
        o.end();
    }
}

impl ToJson for EncryptionBytes {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("encrypted_bytes_out", &self.encrypted_bytes_out);
        o.field("plaintext_bytes_out", &self.plaintext_bytes_out);
        o.field("no_payload_bytes_out", &self.no_payload_bytes_out);
        o.end();
    }
}

impl ToJson for NameSummary {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("countries", &self.countries);
        o.field("flows", &self.flows);
        o.field("bytes_out", &self.bytes_out);
        o.field("source", &self.source);
        o.end();
    }
}

impl ToJson for ResolverSummary {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("ip", &self.ip);
        o.field("kind", self.kind);
        o.opt("country", &self.country);
        o.opt("asn", &self.asn);
        o.opt("hostname", &self.hostname);
        o.field("flows", &self.flows);
        o.field("queries", &self.queries);
        o.field("bytes_out", &self.bytes_out);
        o.field("first_seen", &self.first_seen);
        o.field("last_seen", &self.last_seen);
        o.end();
    }
}

impl ToJson for DeviceSummary {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("device", &self.device);
        o.field("egress", &self.egress);
        o.field("countries", &self.countries);
        o.field("asns", &self.asns);
        o.field("internal", &self.internal);
        o.field("encryption", &self.encryption);
        o.field("names", &self.names);
        o.nonzero("names_dropped", self.names_dropped);
        o.field("hardcoded", &self.hardcoded);
        o.field("alerts", &self.alerts);
        o.nonempty("resolvers", &self.resolvers);
        o.nonzero("resolvers_dropped", self.resolvers_dropped);
        o.end();
    }
}

/// The summary line. Its per-device part is written by hand (it grows with the capture: ~600 KB
/// on a 1 M-packet one); the fixed-size sections (inputs, databases, counters, limits) go
/// through serde_json.
pub fn write_summary(out: &mut Vec<u8>, s: &Summary) -> serde_json::Result<()> {
    let mut o = Object::new(out);
    o.opt("timestamp", &s.timestamp);
    o.field("event_type", s.event_type);
    o.field("schema", &s.schema);
    o.field("tool", &s.tool);
    o.field("policy", &s.policy);
    o.opt("first_packet", &s.first_packet);
    o.opt("last_packet", &s.last_packet);
    o.serde("inputs", &s.inputs)?;
    o.serde("databases", &s.databases)?;
    o.serde("counters", &s.counters)?;
    o.field("alerts", &s.alerts);
    o.field("devices", &s.devices);
    o.serde("limits", &s.limits)?;
    o.end();
    Ok(())
}

#[cfg(test)]
mod tests;
