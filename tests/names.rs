//! Hostname attribution, encryption verdicts and the policy conditions built on them (issue 3),
//! end to end through the real binary:
//!
//! - real captures (../shared/pcaps) against goldens of the fields that matter
//!   (tests/golden/names_*.jsonl; `EGRESSWATCH_BLESS=1 cargo test --test names` rewrites them);
//! - generated captures for exact scenarios: a ClientHello out of order, CNAME chains, name
//!   precedence, plaintext and completed or abandoned TLS, re-evaluation on a late name,
//!   hard-coded addresses and their grace period, byte thresholds, mDNS, hostile names;
//! - tshark as an independent reader of every ClientHello's SNI (tests/tshark_sni.sh).
//!
//! DNS responses, ClientHellos, ServerHellos and TCP segments with real sequence numbers are
//! built here as byte vectors (src/craft.rs has no TLS or DNS, and `craft::tcp` a fixed
//! sequence number).

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;

use common::lab::{MS, T0, eth, sa};
use common::{Run, golden, of_type, run};
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, tcp_flags::*};
use serde_json::{Value, json};

const SECOND: i64 = 1_000 * MS;
const CAMERA_IP: &str = "192.168.1.50";
const RESOLVER: &str = "192.168.1.1:53";

// ---------------------------------------------------------------------------------------------
// Packet building: TCP with sequence numbers, TLS records, DNS messages.

/// Internet checksum of `bytes` (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP segment with the given sequence and acknowledgement numbers, in an IP packet.
fn tcp_segment(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&src.port().to_be_bytes());
    s.extend_from_slice(&dst.port().to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.push(5 << 4);
    s.push(flags);
    s.extend_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            pseudo.extend_from_slice(&a.octets());
            pseudo.extend_from_slice(&b.octets());
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(s.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            pseudo.extend_from_slice(&a.octets());
            pseudo.extend_from_slice(&b.octets());
            pseudo.extend_from_slice(&(s.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
        }
        _ => panic!("mixed address families"),
    }
    pseudo.extend_from_slice(&s);
    let c = checksum(&pseudo);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    craft::ip(src.ip(), dst.ip(), 6, &s)
}

/// A capture being written: frames with their times; `add` gives the 1-based packet index.
#[derive(Default)]
struct Cap {
    frames: Vec<(i64, Vec<u8>)>,
}

impl Cap {
    fn add(&mut self, t: i64, frame: Vec<u8>) -> u64 {
        self.frames.push((t, frame));
        self.frames.len() as u64
    }
}

/// One TCP connection of the camera, keeping both sides' sequence numbers.
struct Conn {
    dev: SocketAddr,
    rem: SocketAddr,
    seq_out: u32,
    seq_in: u32,
    /// IP bytes the device sent so far (what `bytes_out` counts).
    bytes_out: u64,
}

impl Conn {
    fn new(dev: &str, rem: &str) -> Conn {
        Conn {
            dev: sa(dev),
            rem: sa(rem),
            seq_out: 1_000_000,
            seq_in: 7_000_000,
            bytes_out: 0,
        }
    }

    /// Device → remote; advances the sequence number.
    fn out(&mut self, flags: u8, payload: &[u8]) -> Vec<u8> {
        let ack = if flags & ACK != 0 { self.seq_in } else { 0 };
        let ip = tcp_segment(self.dev, self.rem, flags, self.seq_out, ack, payload);
        self.bytes_out += ip.len() as u64;
        self.seq_out = self
            .seq_out
            .wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
        eth(true, ip)
    }

    /// Remote → device; advances the sequence number.
    fn inn(&mut self, flags: u8, payload: &[u8]) -> Vec<u8> {
        let ip = tcp_segment(
            self.rem,
            self.dev,
            flags,
            self.seq_in,
            self.seq_out,
            payload,
        );
        self.seq_in = self
            .seq_in
            .wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
        eth(false, ip)
    }

    /// SYN, SYN-ACK, ACK from `t`, one millisecond apart. Returns the SYN's packet index.
    fn open(&mut self, cap: &mut Cap, t: i64) -> u64 {
        let syn = cap.add(t, self.out(SYN, b""));
        cap.add(t + MS, self.inn(SYN | ACK, b""));
        cap.add(t + 2 * MS, self.out(ACK, b""));
        syn
    }

    /// FIN exchange from `t`.
    fn close(&mut self, cap: &mut Cap, t: i64) {
        cap.add(t, self.out(FIN | ACK, b""));
        cap.add(t + MS, self.inn(FIN | ACK, b""));
        cap.add(t + 2 * MS, self.out(ACK, b""));
    }

    /// A full TLS 1.3 exchange from `t`: handshake, ClientHello naming `sni`, ServerHello,
    /// application data both ways, FIN. Returns the ClientHello's packet index.
    fn tls_session(&mut self, cap: &mut Cap, t: i64, sni: &[u8]) -> u64 {
        self.open(cap, t);
        let hello = cap.add(
            t + 3 * MS,
            self.out(PSH | ACK, &client_hello(Some(sni), &["h2"])),
        );
        cap.add(t + 20 * MS, self.inn(PSH | ACK, &server_hello()));
        cap.add(t + 21 * MS, self.out(PSH | ACK, &app_data(300)));
        cap.add(t + 40 * MS, self.inn(PSH | ACK, &app_data(1200)));
        self.close(cap, t + 50 * MS);
        hello
    }
}

/// A TLS record.
fn tls_record(content_type: u8, legacy_version: [u8; 2], payload: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, legacy_version[0], legacy_version[1]];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

/// A handshake message: type, 24-bit length, body.
fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn extension(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// A ClientHello record (RFC 8446 §4.1.2) offering TLS 1.3 and 1.2, with a server_name
/// extension holding `sni` as raw bytes (RFC 6066 §3) and ALPN.
fn client_hello(sni: Option<&[u8]>, alpn: &[&str]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x22; 32]); // legacy_session_id
    body.extend_from_slice(&[0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]); // cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8]; // host_name
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        extension(&mut exts, 0, &data);
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        extension(&mut exts, 16, &data);
    }
    extension(&mut exts, 43, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    tls_record(22, [3, 1], &handshake(1, &body))
}

/// A ServerHello record selecting TLS 1.3.
fn server_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x33; 32]);
    body.push(32);
    body.extend_from_slice(&[0x22; 32]);
    body.extend_from_slice(&[0x13, 0x01, 0x00]); // cipher suite, compression
    let mut exts = Vec::new();
    extension(&mut exts, 43, &[0x03, 0x04]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    tls_record(22, [3, 3], &handshake(2, &body))
}

/// An application data record of `n` bytes.
fn app_data(n: usize) -> Vec<u8> {
    tls_record(23, [3, 3], &vec![0xab; n])
}

/// A DNS name in wire format, uncompressed.
fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

enum Rdata<'a> {
    Cname(&'a str),
    A([u8; 4]),
}

/// A DNS response (RFC 1035 §4.1) to an A query for `query`, with these answers. An answer
/// owned by the query name points back at the question (compression, as resolvers do).
fn dns_response(query: &str, answers: &[(&str, Rdata<'_>)], ttl: u32) -> Vec<u8> {
    let mut m = vec![0x4a, 0x1d, 0x81, 0x80, 0, 1];
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(query));
    m.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    for (owner, data) in answers {
        if *owner == query {
            m.extend_from_slice(&[0xc0, 0x0c]);
        } else {
            m.extend_from_slice(&dns_name(owner));
        }
        let (ty, rdata) = match data {
            Rdata::Cname(target) => (5u16, dns_name(target)),
            Rdata::A(a) => (1u16, a.to_vec()),
        };
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// A standard query (RD set) for the A records of `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut m = dns_response(name, &[], 0);
    m[2] = 0x01; // QR = 0, RD = 1
    m[3] = 0x00;
    m
}

/// The resolver's answer to the camera, over UDP from port 53.
fn dns_answer_frame(query: &str, answers: &[(&str, Rdata<'_>)], ttl: u32) -> Vec<u8> {
    eth(
        false,
        craft::udp(
            sa(RESOLVER),
            sa("192.168.1.50:53000"),
            &dns_response(query, answers, ttl),
        ),
    )
}

fn http_post(host: &[u8], body_len: usize) -> Vec<u8> {
    let mut r = b"POST /upload HTTP/1.1\r\nHost: ".to_vec();
    r.extend_from_slice(host);
    r.extend_from_slice(
        format!("\r\nContent-Type: application/octet-stream\r\nContent-Length: {body_len}\r\n\r\n")
            .as_bytes(),
    );
    r.extend(std::iter::repeat_n(b'x', body_len));
    r
}

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// Writes `cap` and replays it with the fixture policy `policy` and `extra` arguments.
fn replay_with(name: &str, policy: &str, cap: &Cap, extra: &[&str]) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join(format!("{name}.pcap"));
    common::write_pcap(&pcap, LinkType::ETHERNET, &cap.frames);
    let policy = common::fixture(policy);
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let r = run(&args);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    (dir, r)
}

/// JSON events of a replay with the lab policy.
fn replay(name: &str, cap: &Cap) -> Vec<Value> {
    let (_dir, r) = replay_with(
        name,
        "names-lab.toml",
        cap,
        &["--json", "-", "--no-terminal"],
    );
    r.json()
}

/// The flow records whose remote is `remote` (`ip:port`).
fn flows_to<'a>(events: &'a [Value], remote: &str) -> Vec<&'a Value> {
    let r = sa(remote);
    events
        .iter()
        .filter(|e| {
            e["event_type"] == "flow"
                && e["remote"]["ip"] == r.ip().to_string()
                && e["remote"]["port"] == r.port()
        })
        .collect()
}

/// The one flow record whose remote is `remote`.
fn flow_to<'a>(events: &'a [Value], remote: &str) -> &'a Value {
    let f = flows_to(events, remote);
    assert_eq!(f.len(), 1, "one flow to {remote}: {f:#?}");
    f[0]
}

/// Alerts of `rule` (every rule when `None`) whose remote is `ip`.
fn alerts_to<'a>(events: &'a [Value], ip: &str, rule: Option<&str>) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["event_type"] == "alert"
                && e["remote"]["ip"] == ip
                && rule.is_none_or(|r| e["rule"]["id"] == r)
        })
        .collect()
}

/// (hostname, hostname_source, dns_query) of a flow record, `""` where absent.
fn naming(f: &Value) -> (&str, &str, &str) {
    let s = |k: &str| f["remote"][k].as_str().unwrap_or("");
    (s("hostname"), s("hostname_source"), s("dns_query"))
}

// ---------------------------------------------------------------------------------------------
// 1. Real captures.

/// Runs a shared capture with the real-capture policy; `None` when ../shared is missing.
fn real(file: &str) -> Option<Vec<Value>> {
    let path = common::shared_capture(file)?;
    let policy = common::fixture("names-real.toml");
    let r = run(&[
        "replay".as_ref(),
        path.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert!(
        r.code == 0 || r.code == 1,
        "{file}: exit {}: {}",
        r.code,
        r.stderr
    );
    let events = r.json();
    check_encryption_verdicts(file, &events);
    Some(events)
}

/// Every flow with payload is called encrypted or plaintext at its end; a flow without payload
/// is neither.
fn check_encryption_verdicts(file: &str, events: &[Value]) {
    for f in of_type(events, "flow") {
        let payload =
            f["payload_bytes_out"].as_u64().unwrap() + f["payload_bytes_in"].as_u64().unwrap();
        if payload > 0 {
            assert!(
                f["encrypted"].is_boolean(),
                "{file}: flow with payload and no verdict: {f}"
            );
        } else {
            assert!(
                f.get("encrypted").is_none(),
                "{file}: verdict without payload: {f}"
            );
        }
    }
}

/// The golden view of a real capture: per distinct (remote, naming, protocol, verdict) row, how
/// many flows; then the alerts in order, with the fields that say why.
fn golden_view(events: &[Value]) -> Vec<Value> {
    let mut rows: BTreeMap<(IpAddr, u64, String), (Value, u64)> = BTreeMap::new();
    for f in of_type(events, "flow") {
        let mut row = serde_json::Map::new();
        let remote = &f["remote"];
        row.insert("ip".into(), remote["ip"].clone());
        for (k, v) in [
            ("port", &remote["port"]),
            ("transport", &f["transport"]),
            ("hostname", &remote["hostname"]),
            ("hostname_source", &remote["hostname_source"]),
            ("dns_query", &remote["dns_query"]),
            ("app_proto", &f["app_proto"]),
            ("encrypted", &f["encrypted"]),
            ("tls_version", &f["tls_version"]),
        ] {
            if !v.is_null() {
                row.insert(k.into(), v.clone());
            }
        }
        let row = Value::Object(row);
        let key = (
            remote["ip"].as_str().unwrap().parse().unwrap(),
            remote["port"].as_u64().unwrap_or(0),
            row.to_string(),
        );
        rows.entry(key).or_insert((row, 0)).1 += 1;
    }
    let mut out: Vec<Value> = rows
        .into_values()
        .map(|(mut row, n)| {
            row["flows"] = json!(n);
            row
        })
        .collect();
    for a in of_type(events, "alert") {
        let mut row = json!({
            "alert": a["rule"]["id"],
            "ip": a["remote"]["ip"],
            "packet": a["source"]["packet"],
        });
        for (k, v) in [
            ("port", &a["remote"]["port"]),
            ("hostname", &a["remote"]["hostname"]),
            ("encrypted", &a["encrypted"]),
        ] {
            if !v.is_null() {
                row[k] = v.clone();
            }
        }
        out.push(row);
    }
    out
}

#[test]
fn android_every_client_hello_names_its_flow_and_every_flow_has_a_verdict() {
    let Some(events) = real("ndpi_android.pcap") else {
        return;
    };
    let flows = of_type(&events, "flow");
    let mut named = 0;
    for f in &flows {
        if f["app_proto"] == "tls" && f["remote"]["port"] == 443 {
            // A flow whose device sent nothing began before the capture: its ClientHello is
            // not in it (17.248.176.75, 95.101.24.53).
            if f["payload_bytes_out"].as_u64().unwrap() > 0 {
                assert_eq!(naming(f).1, "sni", "TLS flow without its SNI: {f}");
                assert!(f["tls_version"].is_string(), "{f}");
                named += 1;
            }
        }
    }
    // tshark finds 18 ClientHellos with SNI in this capture.
    assert_eq!(named, 18);
    golden("names_ndpi_android", &golden_view(&events));
}

#[test]
fn quic_initial_names_the_flow() {
    let Some(events) = real("zeek_quic_curl-http3-www-google-de.pcap") else {
        return;
    };
    let f = flow_to(&events, "64.233.166.94:443");
    assert_eq!(f["transport"], "udp");
    assert_eq!(naming(f), ("www.google.de", "quic", ""));
    assert_eq!(f["app_proto"], "quic");
    assert_eq!(f["encrypted"], true);
    assert_eq!(f["tls_version"], "TLS 1.3");
    assert_eq!(f["alpn"], "h3");
    golden("names_zeek_quic_google_de", &golden_view(&events));
}

#[test]
fn wikipedia_http_hosts_and_dns_cname_chains() {
    let Some(events) = real("zeek_wikipedia.pcap") else {
        return;
    };
    // The first request precedes every DNS answer in the capture: Host only.
    let www: Vec<_> = flows_to(&events, "208.80.152.2:80")
        .into_iter()
        .map(naming)
        .collect();
    assert!(www.contains(&("www.wikipedia.org", "http", "")), "{www:?}");
    // upload.wikimedia.org → CNAME upload.pmtpa.wikimedia.org → 208.80.152.3: the query is
    // kept, the Host header names the flows.
    let upload = flows_to(&events, "208.80.152.3:80");
    assert_eq!(upload.len(), 6);
    for f in upload {
        assert_eq!(
            naming(f),
            ("upload.wikimedia.org", "http", "upload.wikimedia.org")
        );
        assert_eq!(f["dns_named"], true);
        assert_eq!(f["encrypted"], false);
    }
    // meta.wikimedia.org → CNAME text.wikimedia.org → CNAME text.pmtpa.wikimedia.org → A.
    assert!(
        flows_to(&events, "208.80.152.2:80")
            .into_iter()
            .map(naming)
            .any(|n| n == ("meta.wikimedia.org", "http", "meta.wikimedia.org"))
    );
    golden("names_zeek_wikipedia", &golden_view(&events));
}

#[test]
fn wechat_sni_and_dns_names() {
    let Some(events) = real("ndpi_wechat.pcap") else {
        return;
    };
    // Every connection to this address that opens in the capture and sends something carries
    // the SNI of its ClientHello (21, as tshark counts); DNS never named the address. The others
    // sent nothing, began before the capture, or resumed after idling past --idle-timeout.
    let wechat: Vec<_> = flows_to(&events, "203.205.151.162:443")
        .into_iter()
        .filter(|f| {
            f["tcp_flags_out"].as_str().unwrap().contains('S')
                && f["payload_bytes_out"].as_u64().unwrap() > 0
        })
        .collect();
    assert_eq!(wechat.len(), 21);
    for f in &wechat {
        assert_eq!(naming(f), ("web.wechat.com", "sni", ""), "{f}");
        assert_ne!(f["dns_named"], true, "{f}");
    }
    let qq = flows_to(&events, "203.205.158.34:443");
    assert!(
        qq.iter()
            .any(|f| naming(f) == ("res.wx.qq.com", "sni", "res.wx.qq.com"))
    );
    assert!(
        of_type(&events, "alert")
            .iter()
            .any(|a| a["rule"]["id"] == "wechat" && a["remote"]["hostname"] == "web.wechat.com")
    );
    golden("names_ndpi_wechat", &golden_view(&events));
}

#[test]
fn xiaomi_http_host_is_an_address_literal() {
    let Some(events) = real("ndpi_xiaomi.pcap") else {
        return;
    };
    let f = flow_to(&events, "203.107.1.65:80");
    assert_eq!(naming(f), ("203.107.1.65", "http", ""));
    assert_eq!(f["app_proto"], "http");
    assert_eq!(f["encrypted"], false);
    golden("names_ndpi_xiaomi", &golden_view(&events));
}

#[test]
fn nest_log_sink_is_named_by_dns() {
    let Some(events) = real("ndpi_nest_log_sink.pcap") else {
        return;
    };
    let sink = flows_to(&events, "35.188.154.186:11095");
    assert_eq!(sink.len(), 7);
    for f in sink {
        assert_eq!(
            naming(f),
            ("weave-logsink.nest.com", "dns", "weave-logsink.nest.com")
        );
        assert_eq!(f["dns_named"], true);
        // Nest's Weave protocol, not TLS: nothing proves the payload encrypted.
        assert_eq!(f["app_proto"], "unknown");
        assert_eq!(f["encrypted"], false);
    }
    golden("names_ndpi_nest_log_sink", &golden_view(&events));
}

// ---------------------------------------------------------------------------------------------
// 2. Generated captures.

/// A ClientHello in three TCP segments, pushed in `order` (indices 0, 1, 2 of the pieces).
fn split_hello_capture(order: [usize; 3]) -> Cap {
    let mut cap = Cap::default();
    let mut c = Conn::new("192.168.1.50:50100", "198.18.2.10:443");
    c.open(&mut cap, T0);
    let hello = client_hello(Some(b"split.example.org"), &["h2"]);
    let cuts = [0, 40, 100, hello.len()];
    assert!(hello.len() > 100);
    let base = c.seq_out;
    for (i, &k) in order.iter().enumerate() {
        let piece = &hello[cuts[k]..cuts[k + 1]];
        let ip = tcp_segment(
            c.dev,
            c.rem,
            PSH | ACK,
            base.wrapping_add(cuts[k] as u32),
            c.seq_in,
            piece,
        );
        cap.add(T0 + (3 + i as i64) * MS, eth(true, ip));
    }
    c.seq_out = base.wrapping_add(hello.len() as u32);
    cap.add(T0 + 20 * MS, c.inn(PSH | ACK, &server_hello()));
    cap.add(T0 + 21 * MS, c.out(PSH | ACK, &app_data(200)));
    cap.add(T0 + 30 * MS, c.inn(PSH | ACK, &app_data(900)));
    c.close(&mut cap, T0 + 40 * MS);
    cap
}

fn check_split_hello(order: [usize; 3]) {
    let events = replay("split_hello", &split_hello_capture(order));
    let f = flow_to(&events, "198.18.2.10:443");
    assert_eq!(
        naming(f),
        ("split.example.org", "sni", ""),
        "order {order:?}: {f}"
    );
    assert_eq!(f["app_proto"], "tls");
    assert_eq!(f["tls_version"], "TLS 1.3");
    assert_eq!(f["alpn"], "h2");
    assert_eq!(f["encrypted"], true);
    // Encrypted, to a foreign country: nothing to report.
    assert!(f.get("alerts").is_none(), "order {order:?}: {f}");
}

#[test]
fn client_hello_over_three_segments_out_of_order_after_its_first() {
    // The first segment first, then the third before the second.
    check_split_hello([0, 2, 1]);
}

#[test]
fn client_hello_over_three_segments_first_segment_last() {
    check_split_hello([2, 1, 0]);
}

#[test]
fn client_hello_over_three_segments_middle_segment_first() {
    check_split_hello([1, 0, 2]);
}

#[test]
fn dns_cname_chain_names_the_address_with_the_query() {
    let mut cap = Cap::default();
    cap.add(
        T0,
        eth(
            true,
            craft::udp(
                sa("192.168.1.50:53000"),
                sa(RESOLVER),
                &dns_query("api.vendor.example"),
            ),
        ),
    );
    cap.add(
        T0 + 5 * MS,
        dns_answer_frame(
            "api.vendor.example",
            &[
                ("api.vendor.example", Rdata::Cname("edge.cdn.example")),
                ("edge.cdn.example", Rdata::A([198, 18, 1, 10])),
            ],
            300,
        ),
    );
    let mut c = Conn::new("192.168.1.50:50200", "198.18.1.10:443");
    let syn = c.open(&mut cap, T0 + 100 * MS);
    cap.add(T0 + 110 * MS, c.out(PSH | ACK, &[0x42; 200]));
    cap.add(T0 + 120 * MS, c.inn(PSH | ACK, &[0x43; 300]));
    c.close(&mut cap, T0 + 200 * MS);
    let events = replay("dns_cname_chain", &cap);
    let f = flow_to(&events, "198.18.1.10:443");
    assert_eq!(
        naming(f),
        ("api.vendor.example", "dns", "api.vendor.example")
    );
    assert_eq!(f["dns_named"], true);
    // The DNS name is known at the SYN: the domain rule decides at once.
    let alerts = alerts_to(&events, "198.18.1.10", None);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["rule"]["id"], "vendor-denied");
    assert_eq!(alerts[0]["source"]["packet"], syn);
    assert_eq!(alerts[0]["remote"]["hostname"], "api.vendor.example");
    assert_eq!(
        alerts[0]["rule"]["reason"],
        "camera-01 sent data to api.vendor.example (198.18.1.10), a name denied by rule vendor-denied"
    );
    let summary = of_type(&events, "summary")[0];
    assert_eq!(summary["counters"]["dns_responses"], 1);
    let names = &summary["devices"][0]["names"];
    assert_eq!(names["api.vendor.example"]["source"], "dns");
    assert_eq!(names["api.vendor.example"]["countries"], json!(["CN"]));
}

#[test]
fn dns_over_tcp_from_a_public_resolver_names_the_address() {
    let mut cap = Cap::default();
    let mut dns = Conn::new("192.168.1.50:50250", "198.18.4.53:53");
    dns.open(&mut cap, T0);
    let query = dns_query("tcp.vendor.example");
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    cap.add(T0 + 3 * MS, dns.out(PSH | ACK, &framed));
    // The answer, length-prefixed (RFC 1035 §4.2.2), in two segments.
    let answer = dns_response(
        "tcp.vendor.example",
        &[
            ("tcp.vendor.example", Rdata::Cname("edge2.cdn.example")),
            ("edge2.cdn.example", Rdata::A([198, 18, 2, 70])),
        ],
        300,
    );
    let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&answer);
    let (a, b) = framed.split_at(20);
    cap.add(T0 + 10 * MS, dns.inn(PSH | ACK, a));
    cap.add(T0 + 11 * MS, dns.inn(PSH | ACK, b));
    dns.close(&mut cap, T0 + 20 * MS);
    let mut c = Conn::new("192.168.1.50:50251", "198.18.2.70:443");
    let syn = c.open(&mut cap, T0 + 100 * MS);

    let events = replay("dns_over_tcp", &cap);

    assert_eq!(flow_to(&events, "198.18.4.53:53")["app_proto"], "dns");
    let f = flow_to(&events, "198.18.2.70:443");
    assert_eq!(
        naming(f),
        ("tcp.vendor.example", "dns", "tcp.vendor.example")
    );
    let a = alerts_to(&events, "198.18.2.70", None);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["rule"]["id"], "vendor-denied");
    assert_eq!(a[0]["source"]["packet"], syn);
    assert_eq!(
        of_type(&events, "summary")[0]["counters"]["dns_responses"],
        1
    );
}

#[test]
fn sni_and_http_host_beat_a_dns_name_on_the_same_address() {
    let mut cap = Cap::default();
    cap.add(
        T0,
        dns_answer_frame(
            "cdn-shared.example",
            &[("cdn-shared.example", Rdata::A([198, 18, 4, 30]))],
            300,
        ),
    );
    // TLS: the SNI replaces the DNS name; the query stays.
    let mut tls = Conn::new("192.168.1.50:50300", "198.18.4.30:443");
    tls.tls_session(&mut cap, T0 + 100 * MS, b"www.real.example");
    // HTTP: the Host header replaces it.
    let mut http = Conn::new("192.168.1.50:50301", "198.18.4.30:80");
    http.open(&mut cap, T0 + 200 * MS);
    cap.add(
        T0 + 203 * MS,
        http.out(PSH | ACK, &http_post(b"www.other.example", 10)),
    );
    http.close(&mut cap, T0 + 250 * MS);
    // No payload: the DNS name stays.
    let mut bare = Conn::new("192.168.1.50:50302", "198.18.4.30:8443");
    bare.open(&mut cap, T0 + 300 * MS);
    let events = replay("sni_beats_dns", &cap);
    assert_eq!(
        naming(flow_to(&events, "198.18.4.30:443")),
        ("www.real.example", "sni", "cdn-shared.example")
    );
    assert_eq!(
        naming(flow_to(&events, "198.18.4.30:80")),
        ("www.other.example", "http", "cdn-shared.example")
    );
    assert_eq!(
        naming(flow_to(&events, "198.18.4.30:8443")),
        ("cdn-shared.example", "dns", "cdn-shared.example")
    );
    // BE is home: no plaintext-foreign for the HTTP flow.
    assert!(of_type(&events, "alert").is_empty());
}

#[test]
fn plaintext_to_a_foreign_host_alerts_and_completed_tls_does_not() {
    let mut cap = Cap::default();
    // Plaintext HTTP POST to the US.
    let mut http = Conn::new("192.168.1.50:50400", "198.18.3.10:80");
    let http_syn = http.open(&mut cap, T0);
    let post = cap.add(
        T0 + 3 * MS,
        http.out(PSH | ACK, &http_post(b"upload.lab.example", 400)),
    );
    cap.add(
        T0 + 30 * MS,
        http.inn(PSH | ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    );
    http.close(&mut cap, T0 + 40 * MS);
    // The same upload over a completed TLS handshake.
    let mut tls = Conn::new("192.168.1.50:50401", "198.18.3.11:443");
    tls.tls_session(&mut cap, T0 + 100 * MS, b"upload.lab.example");
    // A handshake that never completes: ClientHello, ServerHello, then the client gives up.
    let mut abandoned = Conn::new("192.168.1.50:50402", "198.18.3.12:443");
    abandoned.open(&mut cap, T0 + 200 * MS);
    cap.add(
        T0 + 203 * MS,
        abandoned.out(PSH | ACK, &client_hello(Some(b"upload.lab.example"), &[])),
    );
    cap.add(T0 + 220 * MS, abandoned.inn(PSH | ACK, &server_hello()));
    abandoned.close(&mut cap, T0 + 230 * MS);
    let abandoned_end = cap.frames.last().unwrap().0;
    // Plaintext at home: no alert.
    let mut home = Conn::new("192.168.1.50:50403", "198.18.4.10:80");
    home.open(&mut cap, T0 + 300 * MS);
    cap.add(
        T0 + 303 * MS,
        home.out(PSH | ACK, &http_post(b"upload.lab.example", 400)),
    );
    home.close(&mut cap, T0 + 340 * MS);

    let events = replay("plaintext_foreign", &cap);

    let f = flow_to(&events, "198.18.3.10:80");
    assert_eq!(naming(f), ("upload.lab.example", "http", ""));
    assert_eq!(
        (&f["app_proto"], &f["encrypted"]),
        (&json!("http"), &json!(false))
    );
    let a = alerts_to(&events, "198.18.3.10", None);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["rule"]["id"], "plaintext-foreign");
    assert_eq!(a[0]["rule"]["severity"], "medium");
    assert_eq!(a[0]["encrypted"], false);
    // Not at the SYN (nothing known yet): at the first payload.
    assert_ne!(a[0]["source"]["packet"], http_syn);
    assert_eq!(a[0]["source"]["packet"], post);
    assert_eq!(
        a[0]["rule"]["reason"],
        "camera-01 sent unencrypted data to 198.18.3.10 in US, outside the home countries"
    );

    let f = flow_to(&events, "198.18.3.11:443");
    assert_eq!(naming(f), ("upload.lab.example", "sni", ""));
    assert_eq!(f["encrypted"], true);
    assert_eq!(f["tls_version"], "TLS 1.3");
    assert!(alerts_to(&events, "198.18.3.11", None).is_empty());

    let f = flow_to(&events, "198.18.3.12:443");
    assert_eq!(f["app_proto"], "tls");
    assert_eq!(f["encrypted"], false, "handshake never completed: {f}");
    // Known not to be encrypted only once the flow ends: the last evaluation alerts then.
    let a = alerts_to(&events, "198.18.3.12", None);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["rule"]["id"], "plaintext-foreign");
    assert_eq!(a[0]["encrypted"], false);
    assert_eq!(a[0]["timestamp"], f["end"]);
    assert_eq!(
        a[0]["timestamp"],
        egresswatch::event::Rfc3339(abandoned_end).to_string()
    );

    let f = flow_to(&events, "198.18.4.10:80");
    assert_eq!(f["encrypted"], false);
    // Plaintext at home raises no plaintext alert. (The same name served from the US earlier
    // in the run and from home now is re-routing, a different finding.)
    let home_alerts = alerts_to(&events, "198.18.4.10", None);
    assert!(
        home_alerts
            .iter()
            .all(|a| a["rule"]["id"] == "name-rerouted"),
        "{home_alerts:#?}"
    );

    // The summary's encryption split adds up the flows.
    let enc = &of_type(&events, "summary")[0]["devices"][0]["encryption"];
    let out = |r: &str| flow_to(&events, r)["bytes_out"].as_u64().unwrap();
    assert_eq!(enc["encrypted_bytes_out"], out("198.18.3.11:443"));
    assert_eq!(
        enc["plaintext_bytes_out"],
        out("198.18.3.10:80") + out("198.18.3.12:443") + out("198.18.4.10:80")
    );
}

/// HTTP requests whose Host header is only in the second TCP segment: a long URL (a tracking
/// beacon) whose request line does not fit the first segment, and long headers before Host.
fn http_host_in_second_segment_capture() -> (Cap, [u64; 2]) {
    let mut cap = Cap::default();
    let mut long_url = b"GET /pixel.gif?data=".to_vec();
    long_url.extend(std::iter::repeat_n(b'a', 1_900));
    long_url.extend_from_slice(b" HTTP/1.1\r\nHost: beacon.vendor.example\r\nAccept: */*\r\n\r\n");
    let mut long_headers = b"GET / HTTP/1.1\r\nUser-Agent: ".to_vec();
    long_headers.extend(std::iter::repeat_n(b'b', 1_900));
    long_headers.extend_from_slice(b"\r\nHost: beacon.vendor.example\r\n\r\n");
    let mut second = [0; 2];
    for (i, request) in [long_url, long_headers].iter().enumerate() {
        let t = T0 + i as i64 * 100 * MS;
        let mut c = Conn::new(
            &format!("192.168.1.50:{}", 50450 + i),
            &format!("198.18.4.{}:80", 50 + i),
        );
        c.open(&mut cap, t);
        let (a, b) = request.split_at(1_400);
        cap.add(t + 3 * MS, c.out(ACK, a));
        second[i] = cap.add(t + 4 * MS, c.out(PSH | ACK, b));
        c.close(&mut cap, t + 50 * MS);
    }
    (cap, second)
}

#[test]
fn http_host_in_the_first_segment_names_the_flow() {
    // The control for the test below: the same kind of request, Host within the first segment.
    let mut cap = Cap::default();
    let mut c = Conn::new("192.168.1.50:50460", "198.18.4.60:80");
    c.open(&mut cap, T0);
    let mut request =
        b"GET /pixel.gif HTTP/1.1\r\nHost: beacon.vendor.example\r\nCookie: ".to_vec();
    request.extend(std::iter::repeat_n(b'c', 1_900));
    request.extend_from_slice(b"\r\n\r\n");
    let (a, b) = request.split_at(1_400);
    let first = cap.add(T0 + 3 * MS, c.out(ACK, a));
    cap.add(T0 + 4 * MS, c.out(PSH | ACK, b));
    c.close(&mut cap, T0 + 50 * MS);
    let events = replay("http_host_first_segment", &cap);
    let f = flow_to(&events, "198.18.4.60:80");
    assert_eq!(naming(f), ("beacon.vendor.example", "http", ""));
    let a = alerts_to(&events, "198.18.4.60", Some("vendor-denied"));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["source"]["packet"], first);
}

#[test]
fn http_host_in_a_later_segment_names_the_flow() {
    let (cap, second) = http_host_in_second_segment_capture();
    let events = replay("http_host_second_segment", &cap);
    for (i, remote) in ["198.18.4.50:80", "198.18.4.51:80"].into_iter().enumerate() {
        let f = flow_to(&events, remote);
        assert_eq!(naming(f), ("beacon.vendor.example", "http", ""), "{f}");
        let ip = remote.split(':').next().unwrap();
        let a = alerts_to(&events, ip, Some("vendor-denied"));
        assert_eq!(a.len(), 1, "{a:#?}");
        assert_eq!(a[0]["source"]["packet"], second[i]);
    }
}

#[test]
fn domain_rules_are_evaluated_again_when_the_sni_arrives() {
    let mut cap = Cap::default();
    // Denied: the name arrives in the ClientHello, after the SYN was judged (no rule then).
    let mut denied = Conn::new("192.168.1.50:50500", "198.18.2.20:443");
    let hello = denied.tls_session(&mut cap, T0, b"telemetry.vendor.example");
    // Allowed by name, and still allowed when it later uploads past the byte threshold.
    let mut allowed = Conn::new("192.168.1.50:50501", "198.18.2.21:443");
    allowed.open(&mut cap, T0 + 100 * MS);
    cap.add(
        T0 + 103 * MS,
        allowed.out(
            PSH | ACK,
            &client_hello(Some(b"updates.vendor.example"), &[]),
        ),
    );
    cap.add(T0 + 120 * MS, allowed.inn(PSH | ACK, &server_hello()));
    cap.add(T0 + 121 * MS, allowed.inn(PSH | ACK, &app_data(100)));
    for i in 0..12 {
        cap.add(T0 + (130 + i) * MS, allowed.out(ACK, &app_data(1200)));
    }
    allowed.close(&mut cap, T0 + 200 * MS);
    assert!(allowed.bytes_out > 10_000);
    // The bare domain is not under "*.vendor.example".
    let mut bare = Conn::new("192.168.1.50:50502", "198.18.2.22:443");
    bare.tls_session(&mut cap, T0 + 300 * MS, b"vendor.example");

    let events = replay("domains_reevaluated", &cap);

    let a = alerts_to(&events, "198.18.2.20", None);
    assert_eq!(a.len(), 1, "one alert, not one per evaluation: {a:#?}");
    assert_eq!(a[0]["rule"]["id"], "vendor-denied");
    assert_eq!(a[0]["source"]["packet"], hello);
    assert_eq!(a[0]["remote"]["hostname"], "telemetry.vendor.example");
    assert_eq!(a[0]["remote"]["hostname_source"], "sni");
    assert_eq!(
        flow_to(&events, "198.18.2.20:443")["alerts"],
        json!(["vendor-denied"])
    );

    let f = flow_to(&events, "198.18.2.21:443");
    assert_eq!(naming(f), ("updates.vendor.example", "sni", ""));
    assert!(f["bytes_out"].as_u64().unwrap() > 10_000);
    assert!(alerts_to(&events, "198.18.2.21", None).is_empty());

    assert_eq!(
        naming(flow_to(&events, "198.18.2.22:443")).0,
        "vendor.example"
    );
    assert!(alerts_to(&events, "198.18.2.22", None).is_empty());
}

#[test]
fn hardcoded_addresses_alert_after_the_grace_period_only() {
    let mut cap = Cap::default();
    // The capture's first packet: a DNS answer naming one address.
    cap.add(
        T0,
        dns_answer_frame(
            "named.example",
            &[("named.example", Rdata::A([198, 18, 2, 42]))],
            300,
        ),
    );
    // Another device asks for a name: the answer names the address for that device only.
    cap.add(
        T0 + MS,
        eth(
            true,
            craft::udp(
                sa("192.168.1.60:41000"),
                sa(RESOLVER),
                &dns_query("other.example"),
            ),
        ),
    );
    cap.add(
        T0 + 2 * MS,
        eth(
            false,
            craft::udp(
                sa(RESOLVER),
                sa("192.168.1.60:41000"),
                &dns_response(
                    "other.example",
                    &[("other.example", Rdata::A([198, 18, 2, 43]))],
                    300,
                ),
            ),
        ),
    );
    // Within the first 60 s: its DNS answer may predate the capture.
    let mut early = Conn::new("192.168.1.50:50600", "198.18.2.40:443");
    early.open(&mut cap, T0 + 59_990 * MS);
    // After: no DNS answer named this address.
    let mut late = Conn::new("192.168.1.50:50601", "198.18.2.41:443");
    let late_syn = late.open(&mut cap, T0 + 61 * SECOND);
    // After, but named.
    let mut named = Conn::new("192.168.1.50:50602", "198.18.2.42:443");
    named.open(&mut cap, T0 + 62 * SECOND);
    // After, named for the other device only.
    let mut others = Conn::new("192.168.1.50:50603", "198.18.2.43:443");
    others.open(&mut cap, T0 + 63 * SECOND);
    let mut own = Conn::new("192.168.1.60:50604", "198.18.2.43:443");
    own.open(&mut cap, T0 + 64 * SECOND);

    let events = replay("hardcoded", &cap);

    let f = flow_to(&events, "198.18.2.40:443");
    assert!(f.get("dns_named").is_none(), "in the grace period: {f}");
    assert!(alerts_to(&events, "198.18.2.40", None).is_empty());

    let f = flow_to(&events, "198.18.2.41:443");
    assert_eq!(f["dns_named"], false);
    let a = alerts_to(&events, "198.18.2.41", None);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["rule"]["id"], "hardcoded-address");
    assert_eq!(a[0]["source"]["packet"], late_syn);
    assert_eq!(
        a[0]["rule"]["reason"],
        "camera-01 sent data to 198.18.2.41, an address no DNS answer named (rule hardcoded-address)"
    );

    let f = flow_to(&events, "198.18.2.42:443");
    assert_eq!(f["dns_named"], true);
    assert_eq!(naming(f), ("named.example", "dns", "named.example"));
    assert!(alerts_to(&events, "198.18.2.42", None).is_empty());

    let from = |dev: &str| {
        flows_to(&events, "198.18.2.43:443")
            .into_iter()
            .find(|f| f["device"]["ip"] == dev)
            .unwrap()
    };
    let f = from(CAMERA_IP);
    assert_eq!(naming(f), ("", "", ""), "answers are per device: {f}");
    assert_eq!(f["dns_named"], false);
    assert_eq!(alerts_to(&events, "198.18.2.43", None).len(), 1);
    let f = from("192.168.1.60");
    assert_eq!(naming(f), ("other.example", "dns", "other.example"));
    assert_eq!(f["dns_named"], true);

    let summary = of_type(&events, "summary")[0];
    let camera = summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["ip"] == CAMERA_IP)
        .unwrap();
    assert_eq!(camera["hardcoded"], json!(["198.18.2.41", "198.18.2.43"]));
}

#[test]
fn bytes_out_over_fires_once_when_the_threshold_is_crossed() {
    let mut cap = Cap::default();
    // Encrypted (so plaintext-foreign stays out of it), then uploads in 1045-byte packets.
    let mut big = Conn::new("192.168.1.50:50700", "198.18.2.50:443");
    big.tls_session(&mut cap, T0, b"upload.lab.example");
    let mut crossing = None;
    for i in 0..30 {
        let before = big.bytes_out;
        let p = cap.add(T0 + (100 + i) * MS, big.out(ACK, &app_data(1000)));
        if before <= 10_000 && big.bytes_out > 10_000 {
            crossing = Some((p, big.bytes_out));
        }
    }
    assert!(big.bytes_out > 30_000);
    let (crossing_packet, crossing_bytes) = crossing.unwrap();
    // Exactly 10,000 bytes: not more than the threshold.
    let mut exact = Conn::new("192.168.1.50:50701", "198.18.2.51:443");
    exact.tls_session(&mut cap, T0 + 200 * MS, b"upload.lab.example");
    while 10_000 - exact.bytes_out > 1_045 + 45 {
        cap.add(T0 + 300 * MS, exact.out(ACK, &app_data(1000)));
    }
    let last = (10_000 - exact.bytes_out) as usize - 45;
    cap.add(T0 + 301 * MS, exact.out(ACK, &app_data(last)));
    assert_eq!(exact.bytes_out, 10_000);

    let events = replay("bytes_out_over", &cap);

    let a = alerts_to(&events, "198.18.2.50", None);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["rule"]["id"], "upload-over-10kB");
    assert_eq!(a[0]["source"]["packet"], crossing_packet);
    assert_eq!(a[0]["bytes_out"], crossing_bytes);
    assert_eq!(
        a[0]["rule"]["reason"],
        format!(
            "camera-01 sent {crossing_bytes} bytes to upload.lab.example (198.18.2.50), more \
             than rule upload-over-10kB allows (10000 bytes)"
        )
    );
    assert_eq!(
        flow_to(&events, "198.18.2.50:443")["bytes_out"],
        big.bytes_out
    );

    assert_eq!(flow_to(&events, "198.18.2.51:443")["bytes_out"], 10_000);
    assert!(alerts_to(&events, "198.18.2.51", None).is_empty());
}

#[test]
fn mdns_and_llmnr_answers_do_not_name_public_addresses() {
    let mut cap = Cap::default();
    let answer = |name: &str, a: [u8; 4]| dns_response(name, &[(name, Rdata::A(a))], 120);
    // mDNS to the group, from another local host.
    cap.add(
        T0,
        eth(
            false,
            craft::udp(
                sa("192.168.1.60:5353"),
                sa("224.0.0.251:5353"),
                &answer("cloud.mdns.example", [198, 18, 2, 60]),
            ),
        ),
    );
    // mDNS unicast answer to the camera (RFC 6762 §5.4), and LLMNR (RFC 4795).
    cap.add(
        T0 + MS,
        eth(
            false,
            craft::udp(
                sa("192.168.1.60:5353"),
                sa("192.168.1.50:5353"),
                &answer("cloud.mdns.example", [198, 18, 2, 61]),
            ),
        ),
    );
    cap.add(
        T0 + 2 * MS,
        eth(
            false,
            craft::udp(
                sa("192.168.1.60:5355"),
                sa("192.168.1.50:53311"),
                &answer("cloud.llmnr.example", [198, 18, 2, 62]),
            ),
        ),
    );
    // The control: a DNS answer from port 53 in the same capture does name its address.
    cap.add(
        T0 + 3 * MS,
        dns_answer_frame(
            "cloud.dns.example",
            &[("cloud.dns.example", Rdata::A([198, 18, 2, 63]))],
            300,
        ),
    );
    let mut t = T0 + 61 * SECOND;
    for (dev, remote) in [
        ("192.168.1.60:40000", "198.18.2.60:443"),
        ("192.168.1.50:40001", "198.18.2.61:443"),
        ("192.168.1.50:40002", "198.18.2.62:443"),
        ("192.168.1.50:40003", "198.18.2.63:443"),
    ] {
        Conn::new(dev, remote).open(&mut cap, t);
        t += SECOND;
    }

    let events = replay("mdns", &cap);

    for remote in ["198.18.2.60:443", "198.18.2.61:443", "198.18.2.62:443"] {
        let f = flow_to(&events, remote);
        assert_eq!(naming(f), ("", "", ""), "{f}");
        assert_eq!(f["dns_named"], false, "{f}");
    }
    let f = flow_to(&events, "198.18.2.63:443");
    assert_eq!(naming(f), ("cloud.dns.example", "dns", "cloud.dns.example"));
    let summary = of_type(&events, "summary")[0];
    assert_eq!(summary["counters"]["dns_responses"], 1);
}

/// Flows whose names try to break the output: an escape sequence, a newline, 2000 characters,
/// and bytes that are not UTF-8, by SNI and by HTTP Host; and a DNS name with ESC and a newline.
fn hostile_capture() -> Cap {
    let long: Vec<u8> = std::iter::repeat_n(b'a', 1_992)
        .chain(*b".example")
        .collect();
    assert_eq!(long.len(), 2_000);
    let snis: [&[u8]; 4] = [
        b"evil\x1b[31m.example",
        b"line1\nline2.example",
        &long,
        b"caf\xc3(\xff\xfe.example",
    ];
    let hosts: [&[u8]; 4] = [
        b"evil\x1b[31m.example",
        b"first.example\r\nX-Injected: \x1b[2J",
        &long,
        b"bad\xff\xfe.example",
    ];
    let mut cap = Cap::default();
    let mut t = T0;
    for (i, sni) in snis.iter().enumerate() {
        let mut c = Conn::new(
            &format!("192.168.1.50:{}", 51000 + i),
            &format!("198.18.3.{}:443", 100 + i),
        );
        c.tls_session(&mut cap, t, sni);
        t += 100 * MS;
    }
    for (i, host) in hosts.iter().enumerate() {
        let mut c = Conn::new(
            &format!("192.168.1.50:{}", 52000 + i),
            &format!("198.18.3.{}:80", 200 + i),
        );
        c.open(&mut cap, t);
        cap.add(t + 3 * MS, c.out(PSH | ACK, &http_post(host, 20)));
        c.close(&mut cap, t + 10 * MS);
        t += 100 * MS;
    }
    // And by DNS: a query name whose label holds ESC and a line feed.
    let evil = "evil\x1b[31m\n.example";
    cap.add(
        t,
        dns_answer_frame(evil, &[(evil, Rdata::A([198, 18, 3, 150]))], 300),
    );
    Conn::new("192.168.1.50:53000", "198.18.3.150:443").open(&mut cap, t + 10 * MS);
    cap
}

#[test]
fn hostile_names_are_escaped_capped_and_never_reach_the_terminal_raw() {
    let cap = hostile_capture();
    // JSON on standard output, the terminal view on standard error (not a terminal).
    let (_dir, r) = replay_with("hostile", "names-hostile.toml", &cap, &["--json", "-"]);
    for line in r.stdout.lines() {
        assert!(
            line.bytes().all(|b| b >= 0x20),
            "raw control byte in a JSON line: {line:?}"
        );
    }
    let events = r.json(); // every line one JSON object
    assert_eq!(of_type(&events, "flow").len(), 10);
    assert_eq!(of_type(&events, "summary").len(), 1);

    let name = |remote: &str| naming(flow_to(&events, remote)).0.to_owned();
    assert_eq!(name("198.18.3.100:443"), "evil\\x1b[31m.example");
    assert_eq!(name("198.18.3.101:443"), "line1\\x0aline2.example");
    assert_eq!(name("198.18.3.103:443"), "caf\\xc3(\\xff\\xfe.example");
    // A Host with a control character is refused, not guessed at.
    assert_eq!(name("198.18.3.200:80"), "");
    // The header line ends at the line break: what follows is another header.
    assert_eq!(name("198.18.3.201:80"), "first.example");
    assert_eq!(name("198.18.3.203:80"), "bad\\xff\\xfe.example");
    // DNS names use the presentation format's decimal escapes (RFC 1035 §5.1).
    assert_eq!(name("198.18.3.150:443"), "evil\\027[31m\\010.example");
    for remote in ["198.18.3.102:443", "198.18.3.202:80"] {
        let n = name(remote);
        assert_eq!(n.chars().count(), 253, "{n}");
        assert!(n.ends_with('…') && n.starts_with("aaaa"), "{n}");
    }
    for f in of_type(&events, "flow") {
        let n = naming(f).0;
        assert!(n.chars().count() <= 253, "{n}");
        assert!(!n.chars().any(char::is_control), "{n:?}");
    }
    let alerts = of_type(&events, "alert");
    assert_eq!(alerts.len(), 8, "every named flow alerts");
    for a in &alerts {
        let reason = a["rule"]["reason"].as_str().unwrap();
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
    }

    check_terminal_view(&r.stderr, alerts.len());
    // And with the terminal view on standard output.
    let (_dir, r) = replay_with("hostile", "names-hostile.toml", &cap, &[]);
    assert_eq!(r.code, 1);
    check_terminal_view(&r.stdout, alerts.len());
}

/// The terminal view holds no ESC byte, and its alert section is exactly one line per alert.
fn check_terminal_view(text: &str, alerts: usize) {
    assert!(!text.contains('\x1b'), "ESC in the terminal view:\n{text}");
    let section = text
        .split("\negresswatch summary")
        .next()
        .unwrap()
        .trim_end_matches('\n');
    let lines: Vec<&str> = section.lines().collect();
    assert_eq!(lines.len(), alerts, "one line per alert:\n{section}");
    for l in &lines {
        assert!(
            l.starts_with("2026-01-15T10:00:0") && l.contains(" named "),
            "a line that is not an alert line: {l:?}"
        );
    }
    assert!(text.contains("\negresswatch summary"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 3. tshark as an independent SNI reader.

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tshark_and_egresswatch_agree_on_every_client_hello_sni() {
    let Some(shared) = common::shared() else {
        return;
    };
    if !tshark_available() {
        eprintln!(
            "note: tshark is not on PATH; skipping the SNI cross-check (tests/tshark_sni.sh)"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/tshark_sni.sh"))
        .arg(shared.join("pcaps"))
        .env("EGRESSWATCH", env!("CARGO_BIN_EXE_egresswatch"))
        .output()
        .expect("run tests/tshark_sni.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "tests/tshark_sni.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // A tshark whose output the script no longer understands would compare nothing.
    let total = stdout
        .lines()
        .find(|l| l.starts_with("total: "))
        .unwrap_or_else(|| panic!("no total line: {stdout}"));
    let count = |what: &str| -> u64 {
        let before = total.split(what).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(count(" with SNI compared") >= 50, "{total}");
    assert_eq!(count(" with SNI compared"), count(" matched"), "{total}");
    assert!(total.ends_with("mismatches: 0"), "{total}");
}
