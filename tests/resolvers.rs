//! Resolvers as egress (issue 8): which DNS resolvers each device uses, through the real binary.
//!
//! - generated captures (src/craft.rs): plain DNS to the lab resolver (allowed) and to a foreign
//!   one (flagged under a policy that names the lab resolver), a query that gets no answer, DoT
//!   to 853, DoH by SNI and by a policy DoH name, plaintext DoH, DoQ to 853/UDP, the foreign
//!   check, `--resolver`, rule conditions, the summary's resolver list and the terminal view;
//! - the real captures of the re-routing set (../shared/pcaps: DoT, DoH) against goldens
//!   (tests/golden/resolvers_*.jsonl; `EGRESSWATCH_BLESS=1 cargo test --test resolvers`).

mod common;

use std::net::IpAddr;

use common::lab::{MS, T0, eth, sa};
use common::{golden, normalise, of_type, run};
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, tcp_flags::*};
use serde_json::Value;

const SECOND: i64 = 1_000 * MS;
const CAMERA: &str = "192.168.1.50";
/// The lab's own resolver (allowed by tests/fixtures/resolvers-lab.toml; no country).
const LAB: &str = "198.18.0.53";
/// A resolver in the US (by override).
const FOREIGN: &str = "198.18.3.53";
/// A resolver in BE, the home country (by override).
const HOME: &str = "198.18.4.53";

/// A standard query (RD set) for the A records of `name`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = craft::dns_response(id, name, &[], &[], 0);
    m[2] = 0x01;
    m[3] = 0x00;
    m
}

/// A DNS exchange over UDP from the camera's `port`: the query, and the answer when
/// `answered`.
fn dns_exchange(
    frames: &mut Vec<(i64, Vec<u8>)>,
    t: i64,
    resolver: &str,
    port: u16,
    name: &str,
    answered: bool,
) {
    let dev = sa(&format!("{CAMERA}:{port}"));
    let res = sa(&format!("{resolver}:53"));
    frames.push((t, eth(true, craft::udp(dev, res, &query(port, name)))));
    if answered {
        let addr: IpAddr = "198.18.2.80".parse().unwrap();
        let answer = craft::dns_response(port, name, &[], &[addr], 300);
        frames.push((t + 5 * MS, eth(false, craft::udp(res, dev, &answer))));
    }
}

/// A TCP connection from the camera to `remote` carrying `first` as its first client payload,
/// then one response and the FIN exchange.
fn tcp_exchange(frames: &mut Vec<(i64, Vec<u8>)>, t: i64, port: u16, remote: &str, first: &[u8]) {
    tcp_exchange_from(frames, t, &format!("{CAMERA}:{port}"), remote, first);
}

/// [`tcp_exchange`] from any device address (`ip:port` or `[ip6]:port`).
fn tcp_exchange_from(
    frames: &mut Vec<(i64, Vec<u8>)>,
    t: i64,
    device: &str,
    remote: &str,
    first: &[u8],
) {
    let d = sa(device);
    let r = sa(remote);
    let seg = |src, dst, seq, ack, flags, payload: &[u8]| {
        craft::tcp_segment(src, dst, seq, ack, flags, &[], payload)
    };
    let n = first.len() as u32;
    frames.push((t, eth(true, seg(d, r, 1000, 0, SYN, b""))));
    frames.push((t + MS, eth(false, seg(r, d, 5000, 1001, SYN | ACK, b""))));
    frames.push((t + 2 * MS, eth(true, seg(d, r, 1001, 5001, ACK, b""))));
    frames.push((
        t + 3 * MS,
        eth(true, seg(d, r, 1001, 5001, PSH | ACK, first)),
    ));
    let reply = craft::tls_server_hello();
    let m = reply.len() as u32;
    frames.push((
        t + 20 * MS,
        eth(false, seg(r, d, 5001, 1001 + n, PSH | ACK, &reply)),
    ));
    frames.push((
        t + 30 * MS,
        eth(true, seg(d, r, 1001 + n, 5001 + m, FIN | ACK, b"")),
    ));
    frames.push((
        t + 31 * MS,
        eth(false, seg(r, d, 5001 + m, 1002 + n, FIN | ACK, b"")),
    ));
}

/// A QUIC long-header Initial-looking datagram (version 1), padded to 1200 bytes: enough to
/// be called QUIC; its ClientHello does not decrypt.
fn quic_initial() -> Vec<u8> {
    let mut p = vec![0xc3, 0, 0, 0, 1, 8];
    p.extend_from_slice(&[0x42; 8]);
    p.push(0);
    p.resize(1200, 0x5a);
    p
}

/// Writes the frames and replays them with `args` after the capture.
fn replay(frames: &[(i64, Vec<u8>)], args: &[&str]) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("resolvers.pcap");
    common::write_pcap(&pcap, LinkType::ETHERNET, frames);
    let mut all: Vec<&std::ffi::OsStr> = vec!["replay".as_ref(), pcap.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    run(&all)
}

fn replay_json(frames: &[(i64, Vec<u8>)], policy: &str, extra: &[&str]) -> Vec<Value> {
    let policy = common::fixture(policy);
    let mut args = vec![
        "--policy",
        policy.to_str().unwrap(),
        "--json",
        "-",
        "--no-terminal",
    ];
    args.extend_from_slice(extra);
    let r = replay(frames, &args);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    r.json()
}

/// Alert ids with their remote address, in order.
fn alerts(events: &[Value]) -> Vec<(String, String)> {
    of_type(events, "alert")
        .iter()
        .map(|a| {
            (
                a["rule"]["id"].as_str().unwrap().to_owned(),
                a["remote"]["ip"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The resolver kind of each flow record, by remote `ip:port`.
fn flow_kinds(events: &[Value]) -> Vec<(String, Option<String>, u64)> {
    let mut out: Vec<_> = of_type(events, "flow")
        .iter()
        .map(|f| {
            (
                format!(
                    "{}:{}",
                    f["remote"]["ip"].as_str().unwrap(),
                    f["remote"]["port"]
                ),
                f["resolver"]["kind"].as_str().map(str::to_owned),
                f["resolver"]["queries"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// The camera's summary entry.
fn camera(events: &[Value]) -> Value {
    let summary = of_type(events, "summary");
    summary[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["ip"] == CAMERA)
        .cloned()
        .expect("the camera is in the summary")
}

/// The lab resolver answered twice; the foreign one got three queries, one unanswered.
fn plain_dns_capture() -> Vec<(i64, Vec<u8>)> {
    let mut frames = Vec::new();
    dns_exchange(&mut frames, T0, LAB, 40001, "cloud.vendor.example", true);
    dns_exchange(
        &mut frames,
        T0 + SECOND,
        FOREIGN,
        40002,
        "cloud.vendor.example",
        true,
    );
    dns_exchange(
        &mut frames,
        T0 + 2 * SECOND,
        LAB,
        40003,
        "ntp.vendor.example",
        true,
    );
    dns_exchange(
        &mut frames,
        T0 + 3 * SECOND,
        FOREIGN,
        40004,
        "ntp.vendor.example",
        false,
    );
    dns_exchange(
        &mut frames,
        T0 + 4 * SECOND,
        FOREIGN,
        40005,
        "log.vendor.example",
        true,
    );
    frames
}

#[test]
fn a_foreign_resolver_is_flagged_and_the_lab_resolver_is_not() {
    let events = replay_json(&plain_dns_capture(), "resolvers-lab.toml", &[]);
    // One alert per (device, resolver): the later flows to the same resolver are suppressed.
    assert_eq!(
        alerts(&events),
        vec![("resolver-not-allowed".to_owned(), FOREIGN.to_owned())]
    );
    let alert = of_type(&events, "alert")[0];
    assert_eq!(alert["rule"]["severity"], "high");
    assert_eq!(alert["resolver"]["kind"], "dns");
    assert_eq!(alert["device"]["name"], "camera-01");
    assert_eq!(
        alert["rule"]["reason"],
        "camera-01 sent DNS queries (dns) to resolver 198.18.3.53, which the allowed resolvers do not include"
    );
    // Every query flow is a resolver flow, the unanswered one too.
    assert_eq!(
        flow_kinds(&events),
        vec![
            ("198.18.0.53:53".to_owned(), Some("dns".to_owned()), 1),
            ("198.18.0.53:53".to_owned(), Some("dns".to_owned()), 1),
            ("198.18.3.53:53".to_owned(), Some("dns".to_owned()), 1),
            ("198.18.3.53:53".to_owned(), Some("dns".to_owned()), 1),
            ("198.18.3.53:53".to_owned(), Some("dns".to_owned()), 1),
        ]
    );
    let cam = camera(&events);
    assert_eq!(cam["alerts"]["resolver-not-allowed"]["alerts"], 1);
    assert_eq!(cam["alerts"]["resolver-not-allowed"]["suppressed"], 2);
    let resolvers = cam["resolvers"].as_array().unwrap();
    assert_eq!(resolvers.len(), 2, "{resolvers:#?}");
    // Sorted by address: the lab resolver (no country) first.
    assert_eq!(resolvers[0]["ip"], LAB);
    assert_eq!(resolvers[0]["kind"], "dns");
    assert!(resolvers[0].get("country").is_none());
    assert_eq!(
        (
            resolvers[0]["flows"].as_u64(),
            resolvers[0]["queries"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(resolvers[1]["ip"], FOREIGN);
    assert_eq!(resolvers[1]["country"], "US");
    assert_eq!(resolvers[1]["asn"], 64503);
    assert_eq!(
        (
            resolvers[1]["flows"].as_u64(),
            resolvers[1]["queries"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(resolvers[1]["first_seen"], "2026-01-15T10:00:01.000000Z");
    assert_eq!(resolvers[1]["last_seen"], "2026-01-15T10:00:04.005000Z");
    // Each query datagram is 20 + 8 + the message.
    let sent: u64 = of_type(&events, "flow")
        .iter()
        .filter(|f| f["remote"]["ip"] == FOREIGN)
        .map(|f| f["bytes_out"].as_u64().unwrap())
        .sum();
    assert_eq!(resolvers[1]["bytes_out"].as_u64(), Some(sent));
}

#[test]
fn the_resolver_option_allows_like_the_policy_key() {
    // The same capture, with the allow list from the command line only.
    let policy = common::fixture("resolvers-foreign.toml");
    let r = replay(
        &plain_dns_capture(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--resolver",
            "198.18.0.53,198.18.4.0/24",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(
        alerts(&r.json()),
        vec![("resolver-not-allowed".to_owned(), FOREIGN.to_owned())]
    );
    assert_eq!(r.code, 1, "an alert was raised");
    let bad = replay(
        &plain_dns_capture(),
        &["--resolver", "198.18.0.1/15", "--no-terminal"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--resolver:1:1:") && bad.stderr.contains("host bits"),
        "{}",
        bad.stderr
    );
}

#[test]
fn without_an_allow_list_foreign_resolvers_are_flagged() {
    let mut frames = Vec::new();
    dns_exchange(&mut frames, T0, HOME, 40001, "cloud.vendor.example", true);
    dns_exchange(
        &mut frames,
        T0 + SECOND,
        FOREIGN,
        40002,
        "cloud.vendor.example",
        true,
    );
    dns_exchange(
        &mut frames,
        T0 + 2 * SECOND,
        LAB,
        40003,
        "cloud.vendor.example",
        true,
    );
    let events = replay_json(&frames, "resolvers-foreign.toml", &[]);
    assert_eq!(
        alerts(&events),
        vec![("resolver-foreign".to_owned(), FOREIGN.to_owned())]
    );
    let a = of_type(&events, "alert")[0];
    assert_eq!(a["rule"]["severity"], "medium");
    assert_eq!(
        a["rule"]["reason"],
        "192.168.1.50 sent DNS queries (dns) to resolver 198.18.3.53 in US, outside the home countries"
    );
    let cam = camera(&events);
    let ips: Vec<&str> = cam["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, vec![LAB, FOREIGN, HOME]);
}

#[test]
fn encrypted_resolvers_dot_doh_doq() {
    let mut frames = Vec::new();
    // DoT to the foreign resolver.
    tcp_exchange(
        &mut frames,
        T0,
        41001,
        "198.18.3.53:853",
        &craft::tls_client_hello("dns.lab-us.example", 0),
    );
    // DoH by a well-known name, by a policy DoH name, and an ordinary HTTPS site.
    tcp_exchange(
        &mut frames,
        T0 + SECOND,
        41002,
        "198.18.2.10:443",
        &craft::tls_client_hello("dns.google", 0),
    );
    tcp_exchange(
        &mut frames,
        T0 + 2 * SECOND,
        41003,
        "198.18.2.11:443",
        &craft::tls_client_hello("doh.lab.example", 0),
    );
    tcp_exchange(
        &mut frames,
        T0 + 3 * SECOND,
        41004,
        "198.18.2.12:443",
        &craft::tls_client_hello("www.vendor.example", 0),
    );
    // Plaintext DoH (RFC 8484 POST).
    tcp_exchange(
        &mut frames,
        T0 + 4 * SECOND,
        41005,
        "198.18.2.13:80",
        b"POST /dns-query HTTP/1.1\r\nHost: resolver.vendor.example\r\nContent-Type: application/dns-message\r\nContent-Length: 33\r\n\r\n",
    );
    // DoQ to 853/UDP.
    let d = sa("192.168.1.50:41006");
    let r = sa("198.18.3.54:853");
    frames.push((
        T0 + 5 * SECOND,
        eth(true, craft::udp(d, r, &quic_initial())),
    ));
    let events = replay_json(&frames, "resolvers-lab.toml", &[]);
    assert_eq!(
        flow_kinds(&events),
        vec![
            ("198.18.2.10:443".to_owned(), Some("doh".to_owned()), 0),
            ("198.18.2.11:443".to_owned(), Some("doh".to_owned()), 0),
            ("198.18.2.12:443".to_owned(), None, 0),
            ("198.18.2.13:80".to_owned(), Some("doh".to_owned()), 0),
            ("198.18.3.53:853".to_owned(), Some("dot".to_owned()), 0),
            ("198.18.3.54:853".to_owned(), Some("doq".to_owned()), 0),
        ]
    );
    // Each resolver flow raises the built-in alert (none is the lab resolver) and the rule on
    // encrypted kinds (plaintext DoH is `doh` too); the ordinary site raises nothing.
    let mut got = alerts(&events);
    got.sort();
    let mut want = Vec::new();
    for ip in [
        "198.18.2.10",
        "198.18.2.11",
        "198.18.2.13",
        "198.18.3.53",
        "198.18.3.54",
    ] {
        want.push(("encrypted-dns".to_owned(), ip.to_owned()));
        want.push(("resolver-not-allowed".to_owned(), ip.to_owned()));
    }
    want.sort();
    assert_eq!(got, want);
    let cam = camera(&events);
    let listed: Vec<(String, String, String)> = cam["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ip"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
                r["hostname"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let own = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        listed,
        vec![
            own("198.18.2.10", "doh", "dns.google"),
            own("198.18.2.11", "doh", "doh.lab.example"),
            own("198.18.2.13", "doh", "resolver.vendor.example"),
            own("198.18.3.53", "dot", "dns.lab-us.example"),
            own("198.18.3.54", "doq", ""),
        ]
    );
}

#[test]
fn dns_over_tcp_and_ipv6_resolvers() {
    let mut frames = Vec::new();
    // A query over TCP: a 2-byte length, then the message (RFC 1035 §4.2.2).
    let q = query(7, "cloud.vendor.example");
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&q);
    tcp_exchange_from(
        &mut frames,
        T0,
        "[fd00::50]:42001",
        "[2001:db8::53]:53",
        &msg,
    );
    // And over UDP to the lab resolver, which is allowed.
    let d = sa("[fd00::50]:42002");
    let lab6 = sa("[2001:db8::5353]:53");
    frames.push((
        T0 + SECOND,
        eth(true, craft::udp(d, lab6, &query(8, "x.example"))),
    ));
    let events = replay_json(
        &frames,
        "resolvers-lab.toml",
        &["--resolver", "2001:db8::5353"],
    );
    assert_eq!(
        alerts(&events),
        vec![("resolver-not-allowed".to_owned(), "2001:db8::53".to_owned())]
    );
    assert_eq!(
        flow_kinds(&events),
        vec![
            // Sorted as strings.
            ("2001:db8::5353:53".to_owned(), Some("dns".to_owned()), 1),
            ("2001:db8::53:53".to_owned(), Some("dns".to_owned()), 1),
        ]
    );
    let summary = of_type(&events, "summary");
    let dev = summary[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["ip"] == "fd00::50")
        .unwrap();
    let listed: Vec<&str> = dev["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ip"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["2001:db8::53", "2001:db8::5353"]);
}

#[test]
fn an_allowed_name_covers_an_encrypted_resolver() {
    let mut frames = Vec::new();
    tcp_exchange(
        &mut frames,
        T0,
        41001,
        "198.18.2.10:443",
        &craft::tls_client_hello("dns.google", 0),
    );
    tcp_exchange(
        &mut frames,
        T0 + SECOND,
        41002,
        "198.18.2.11:853",
        &craft::tls_client_hello("dot.other.example", 0),
    );
    let policy = common::fixture("resolvers-foreign.toml");
    let r = replay(
        &frames,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--resolver",
            "dns.google",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(
        alerts(&r.json()),
        vec![("resolver-not-allowed".to_owned(), "198.18.2.11".to_owned())]
    );
}

#[test]
fn the_terminal_lists_resolvers_per_device() {
    let policy = common::fixture("resolvers-lab.toml");
    let r = replay(
        &plain_dns_capture(),
        &["--policy", policy.to_str().unwrap(), "--color", "never"],
    );
    let text = &r.stdout;
    assert!(
        text.contains("resolver dns 198.18.0.53 (-): 2 flows, 2 queries"),
        "{text}"
    );
    assert!(
        text.contains("resolver dns 198.18.3.53 (US): 3 flows, 3 queries"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Real captures of the re-routing set.

fn real(golden_name: &str, file: &str) {
    let Some(shared) = common::shared() else {
        return;
    };
    let policy = common::fixture("resolvers-real.toml");
    // Run in the captures' folder so that the input's name in the output is the file name.
    let r = common::run_with(
        &[
            "replay".as_ref(),
            std::ffi::OsStr::new(file),
            "--policy".as_ref(),
            policy.as_os_str(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ],
        Some(&shared.join("pcaps")),
        None,
        &[],
    );
    assert!(
        r.code == 0 || r.code == 1,
        "{file}: exit {}: {}",
        r.code,
        r.stderr
    );
    golden(golden_name, &normalise(r.json()));
}

#[test]
fn real_dns_over_tls() {
    real("resolvers_ndpi_dns_dot", "ndpi_dns_dot.pcap");
}

#[test]
fn real_dns_over_https() {
    real("resolvers_ndpi_doh", "ndpi_doh.pcapng");
}

#[test]
fn the_summary_list_is_capped_per_device_and_the_rest_counted() {
    // One query to each of 256 + 3 resolvers (the cap is SUMMARY_RESOLVERS_MAX).
    let cap = egresswatch::resolvers::SUMMARY_RESOLVERS_MAX;
    let mut frames = Vec::new();
    for i in 0..cap + 3 {
        let resolver = format!("198.19.{}.{}", i / 250, i % 250 + 1);
        dns_exchange(
            &mut frames,
            T0 + i as i64 * MS,
            &resolver,
            30000 + i as u16,
            "x.example",
            false,
        );
    }
    let events = replay_json(&frames, "resolvers-foreign.toml", &["--events", "summary"]);
    let cam = camera(&events);
    assert_eq!(cam["resolvers"].as_array().unwrap().len(), cap);
    assert_eq!(cam["resolvers_dropped"], 3);
}
