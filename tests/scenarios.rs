//! Generated captures for exact scenarios, run through the real binary and compared with golden
//! JSON (tests/golden/*.jsonl; `EGRESSWATCH_BLESS=1 cargo test` rewrites them for review).

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{golden, normalise, run, write_pcap};
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, tcp_flags::*};
use egresswatch::decode::Mac;

const CAMERA: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x50]);
const GATEWAY: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
/// 2026-01-15T10:00:00Z in nanoseconds.
const T0: i64 = 1_768_471_200_000_000_000;
const MS: i64 = 1_000_000;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn eth(ip: Vec<u8>) -> Vec<u8> {
    craft::ethernet(CAMERA, GATEWAY, &[], &ip)
}

fn eth_in(ip: Vec<u8>) -> Vec<u8> {
    craft::ethernet(GATEWAY, CAMERA, &[], &ip)
}

/// A TCP connection: handshake, a request, a response, and a FIN exchange.
fn tcp_session(dev: &str, remote: &str, t: i64) -> Vec<(i64, Vec<u8>)> {
    let (d, r) = (sa(dev), sa(remote));
    vec![
        (t, eth(craft::tcp(d, r, SYN, b""))),
        (t + MS, eth_in(craft::tcp(r, d, SYN | ACK, b""))),
        (t + 2 * MS, eth(craft::tcp(d, r, ACK, b""))),
        (t + 3 * MS, eth(craft::tcp(d, r, PSH | ACK, &[0x16; 300]))),
        (
            t + 40 * MS,
            eth_in(craft::tcp(r, d, PSH | ACK, &[0x17; 1200])),
        ),
        (t + 50 * MS, eth(craft::tcp(d, r, FIN | ACK, b""))),
        (t + 60 * MS, eth_in(craft::tcp(r, d, FIN | ACK, b""))),
        (t + 61 * MS, eth(craft::tcp(d, r, ACK, b""))),
    ]
}

fn replay(dir: &Path, name: &str, link: LinkType, frames: &[(i64, Vec<u8>)]) -> common::Run {
    let pcap = dir.join(format!("{name}.pcap"));
    write_pcap(&pcap, link, frames);
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        common::fixture("lab.toml").as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    r
}

fn check(name: &str, link: LinkType, frames: &[(i64, Vec<u8>)]) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(dir.path(), name, link, frames);
    // Inputs are named by temporary paths: keep only the file name.
    let mut events = normalise(r.json());
    common::file_names(&mut events);
    golden(name, &events);
    r
}

#[test]
fn device_to_cn_alerts_once_with_country_and_operator() {
    let r = check(
        "device_to_cn",
        LinkType::ETHERNET,
        &tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0),
    );
    assert_eq!(r.code, 1);
    let alerts = r.events("alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"]["id"], "no-cn");
    assert_eq!(alerts[0]["remote"]["country"], "CN");
    assert_eq!(alerts[0]["remote"]["asn"], 64501);
    assert_eq!(alerts[0]["device"]["name"], "camera-01");
    assert_eq!(alerts[0]["device"]["mac"], "02:42:ac:11:00:50");
    assert_eq!(alerts[0]["source"]["packet"], 1);
    let flows = r.events("flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["alerts"][0], "no-cn");
    assert_eq!(flows[0]["packets_out"], 5);
    assert_eq!(flows[0]["packets_in"], 3);
}

#[test]
fn device_to_eu_is_allowed() {
    let r = check(
        "device_to_eu",
        LinkType::ETHERNET,
        &tcp_session("192.168.1.50:50001", "198.18.2.20:443", T0),
    );
    assert_eq!(r.code, 0);
    assert!(r.events("alert").is_empty());
    assert_eq!(r.events("flow")[0]["remote"]["country"], "DE");
}

#[test]
fn private_and_multicast_destinations_never_alert() {
    let mut frames = tcp_session("192.168.1.50:50002", "192.168.1.1:80", T0);
    frames.push((
        T0 + 100 * MS,
        eth(craft::udp(
            sa("192.168.1.50:1900"),
            sa("239.255.255.250:1900"),
            b"M-SEARCH * HTTP/1.1\r\n\r\n",
        )),
    ));
    frames.push((
        T0 + 200 * MS,
        eth(craft::udp(
            sa("192.168.1.50:5353"),
            sa("224.0.0.251:5353"),
            b"mdns",
        )),
    ));
    let r = check("private_and_multicast", LinkType::ETHERNET, &frames);
    assert_eq!(r.code, 0);
    assert!(r.events("alert").is_empty());
    let flows = r.events("flow");
    assert_eq!(flows.len(), 3);
    assert_eq!(flows[0]["internal"], true);
    assert!(flows.iter().all(|f| f["remote"].get("country").is_none()));
}

#[test]
fn ipv6_to_cn() {
    let r = check(
        "ipv6_to_cn",
        LinkType::ETHERNET,
        &tcp_session("[2001:db8:1::50]:40000", "[2001:db8:86::7]:443", T0),
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.events("alert")[0]["remote"]["ip"], "2001:db8:86::7");
}

#[test]
fn qinq_tagged_traffic_to_cn() {
    let frames: Vec<_> = tcp_session("192.168.1.50:50003", "198.18.1.11:8883", T0)
        .into_iter()
        .map(|(t, f)| {
            // Re-wrap the IP packet with two VLAN tags.
            let ip = f[14..].to_vec();
            let (src, dst) = if f[6..12] == CAMERA.0 {
                (CAMERA, GATEWAY)
            } else {
                (GATEWAY, CAMERA)
            };
            (t, craft::ethernet(src, dst, &[100, 20], &ip))
        })
        .collect();
    let r = check("qinq_to_cn", LinkType::ETHERNET, &frames);
    assert_eq!(r.code, 1);
    assert_eq!(r.events("flow")[0]["vlan"], 100);
}

#[test]
fn linux_sll_camera_to_us_is_outside_eu() {
    let frames = vec![
        (
            T0,
            craft::linux_sll(
                CAMERA,
                &craft::udp(sa("192.168.1.50:123"), sa("198.18.3.5:123"), &[0x23; 48]),
            ),
        ),
        (
            T0 + 20 * MS,
            craft::linux_sll(
                GATEWAY,
                &craft::udp(sa("198.18.3.5:123"), sa("192.168.1.50:123"), &[0x24; 48]),
            ),
        ),
    ];
    let r = check("sll_to_us", LinkType::LINUX_SLL, &frames);
    let alerts = r.events("alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"]["id"], "camera-outside-eu");
    assert_eq!(alerts[0]["rule"]["severity"], "medium");
}

#[test]
fn fragments_join_one_flow_and_alert_once() {
    let big = craft::udp(
        sa("192.168.1.50:4000"),
        sa("198.18.1.12:9000"),
        &[0x55; 4000],
    );
    let frames: Vec<_> = craft::fragment_ipv4(&big, 1480)
        .into_iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as i64 * MS, eth(f)))
        .collect();
    let r = check("fragments_to_cn", LinkType::ETHERNET, &frames);
    assert_eq!(r.events("alert").len(), 1);
    let flows = r.events("flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["packets_out"], 3);
    // Three IP packets: 8 + 4000 UDP bytes plus three 20-byte IPv4 headers.
    assert_eq!(flows[0]["bytes_out"], 4068);
}

#[test]
fn inbound_only_scan_is_a_flow_not_an_alert() {
    let frames = vec![
        (
            T0,
            eth_in(craft::tcp(
                sa("198.18.1.66:61000"),
                sa("192.168.1.50:23"),
                SYN,
                b"",
            )),
        ),
        (
            T0 + MS,
            eth_in(craft::tcp(
                sa("198.18.1.66:61000"),
                sa("192.168.1.50:2323"),
                SYN,
                b"",
            )),
        ),
    ];
    let r = check("inbound_scan", LinkType::ETHERNET, &frames);
    assert_eq!(r.code, 0);
    assert!(r.events("alert").is_empty());
    let flows = r.events("flow");
    assert_eq!(flows.len(), 2);
    assert!(
        flows
            .iter()
            .all(|f| f["packets_out"] == 0 && f["remote"]["country"] == "CN")
    );
}

#[test]
fn repeated_alerts_are_deduplicated_within_the_window() {
    let mut frames = tcp_session("192.168.1.50:50010", "198.18.1.10:443", T0);
    frames.extend(tcp_session(
        "192.168.1.50:50011",
        "198.18.1.10:443",
        T0 + 1_000 * MS,
    ));
    // Outside the 60 s window: written again.
    frames.extend(tcp_session(
        "192.168.1.50:50012",
        "198.18.1.10:443",
        T0 + 70_000 * MS,
    ));
    let r = check("dedup", LinkType::ETHERNET, &frames);
    assert_eq!(r.events("alert").len(), 2);
    let summary = &r.events("summary")[0];
    assert_eq!(summary["alerts"]["no-cn"]["alerts"], 2);
    assert_eq!(summary["alerts"]["no-cn"]["suppressed"], 1);
    let suppressed: Vec<_> = r
        .events("flow")
        .iter()
        .map(|f| f["alerts_suppressed"].clone())
        .collect();
    assert_eq!(suppressed.iter().filter(|v| **v == 1).count(), 1);
}

#[test]
fn output_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let frames = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    let a = replay(dir.path(), "same", LinkType::ETHERNET, &frames);
    let b = replay(dir.path(), "same", LinkType::ETHERNET, &frames);
    assert_eq!(a.stdout, b.stdout);
}

/// A TCP session whose first request is a plaintext HTTP GET naming `host`.
fn http_session(dev: &str, remote: &str, host: &str, t: i64) -> Vec<(i64, Vec<u8>)> {
    let (d, r) = (sa(dev), sa(remote));
    let request =
        format!("GET /api/v1/upload HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cam/1.0\r\n\r\n");
    vec![
        (t, eth(craft::tcp(d, r, SYN, b""))),
        (t + MS, eth_in(craft::tcp(r, d, SYN | ACK, b""))),
        (t + 2 * MS, eth(craft::tcp(d, r, ACK, b""))),
        (
            t + 3 * MS,
            eth(craft::tcp(d, r, PSH | ACK, request.as_bytes())),
        ),
        (
            t + 30 * MS,
            eth_in(craft::tcp(
                r,
                d,
                PSH | ACK,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            )),
        ),
    ]
}

#[test]
fn a_name_served_from_another_country_later_in_the_run_is_rerouting() {
    let mut frames = http_session(
        "192.168.1.50:51000",
        "198.18.2.10:80",
        "api.vendor.example",
        T0,
    );
    frames.extend(http_session(
        "192.168.1.50:51001",
        "198.18.1.10:80",
        "api.vendor.example",
        T0 + 5_000 * MS,
    ));
    let r = check("rerouted_in_run", LinkType::ETHERNET, &frames);
    let alerts = r.events("alert");
    let rerouted: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"]["id"] == "name-rerouted")
        .collect();
    assert_eq!(rerouted.len(), 1, "{alerts:?}");
    assert_eq!(rerouted[0]["remote"]["hostname"], "api.vendor.example");
    assert_eq!(rerouted[0]["remote"]["hostname_source"], "http");
    assert_eq!(rerouted[0]["remote"]["country"], "CN");
    assert!(
        rerouted[0]["rule"]["reason"]
            .as_str()
            .unwrap()
            .contains("served from DE")
    );
    let summary = &r.events("summary")[0];
    let names = &summary["devices"][0]["names"]["api.vendor.example"];
    assert_eq!(names["countries"], serde_json::json!(["CN", "DE"]));
}

#[test]
fn a_baseline_run_flags_new_countries_and_moved_names() {
    let dir = tempfile::tempdir().unwrap();
    let old = http_session(
        "192.168.1.50:51000",
        "198.18.2.10:80",
        "api.vendor.example",
        T0,
    );
    let base = replay(dir.path(), "firmware-1.2", LinkType::ETHERNET, &old);
    let base_path = dir.path().join("firmware-1.2.jsonl");
    std::fs::write(&base_path, &base.stdout).unwrap();
    // Firmware 1.3: the same name now served from CN, plus a new destination in the US.
    let mut new = http_session(
        "192.168.1.50:52000",
        "198.18.1.10:80",
        "api.vendor.example",
        T0,
    );
    new.extend(http_session(
        "192.168.1.50:52001",
        "198.18.2.11:80",
        "api.vendor.example",
        T0 + MS * 100,
    ));
    let pcap = dir.path().join("firmware-1.3.pcap");
    write_pcap(&pcap, LinkType::ETHERNET, &new);
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        common::fixture("lab.toml").as_os_str(),
        "--baseline".as_ref(),
        base_path.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ids: Vec<String> = r
        .events("alert")
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["rule"]["id"].as_str().unwrap(),
                a["remote"]["ip"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ids.contains(&"baseline-new-country 198.18.1.10".to_owned()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"baseline-name-moved 198.18.1.10".to_owned()),
        "{ids:?}"
    );
    assert!(
        !ids.iter()
            .any(|i| i.starts_with("baseline") && i.ends_with("198.18.2.11")),
        "DE was in the baseline for this device and name: {ids:?}"
    );
    // Within this run the name moved from CN to DE: that is re-routing too.
    assert!(
        ids.contains(&"name-rerouted 198.18.2.11".to_owned()),
        "{ids:?}"
    );
    // A file that holds no summary is refused with exit code 2.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"event_type\":\"flow\"}\n").unwrap();
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--baseline".as_ref(),
        bad.as_os_str(),
        "--no-terminal".as_ref(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no summary found"), "{}", r.stderr);
}

#[test]
fn a_run_total_per_country_fires_when_crossed_across_flows() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("volume.toml");
    std::fs::write(
        &policy,
        r#"
version = 1
[[geoip_overrides]]
cidr = "198.18.2.0/24"
country = "DE"

[[rules]]
id = "de-volume"
severity = "low"
countries = ["DE"]
country_bytes_out_over = "1kB"
"#,
    )
    .unwrap();
    // Each session sends 500 bytes: the total to DE passes 1,000 bytes in the third session.
    let mut frames = tcp_session("192.168.1.50:50000", "198.18.2.10:443", T0);
    frames.extend(tcp_session(
        "192.168.1.50:50001",
        "198.18.2.11:443",
        T0 + 1_000 * MS,
    ));
    frames.extend(tcp_session(
        "192.168.1.50:50002",
        "198.18.2.12:443",
        T0 + 2_000 * MS,
    ));
    let pcap = dir.path().join("volume.pcap");
    write_pcap(&pcap, LinkType::ETHERNET, &frames);
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    let alerts = r.events("alert");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["rule"]["id"], "de-volume");
    assert_eq!(alerts[0]["remote"]["ip"], "198.18.2.12");
    assert_eq!(
        alerts[0]["rule"]["reason"],
        "192.168.1.50 has sent more than 1000 bytes to DE in this run (latest: 198.18.2.12), rule de-volume"
    );
    // Per-flow counters are unaffected: the flow that crossed had sent only part of the total.
    assert!(alerts[0]["bytes_out"].as_u64().unwrap() < 1000);
}

/// Live mode reloads the databases on SIGHUP or when a file changes: the engine switches
/// resolvers, keeps the policy's overrides on the new one, and counts the reload.
#[test]
fn replacing_the_resolver_keeps_overrides_and_is_counted() {
    use egresswatch::capture::Frame;
    use egresswatch::engine::{Engine, Settings};
    use egresswatch::geoip::Resolver;
    use egresswatch::policy::Policy;
    use egresswatch::sink::Sink;

    let policy = Policy::from_file(&common::fixture("lab.toml")).unwrap();
    let sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut engine = Engine::new(
        policy,
        Resolver::embedded().unwrap(),
        &Settings::default(),
        vec!["test".to_owned()],
        sinks,
    );
    let frames = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    let feed = |engine: &mut Engine<'_>, frames: &[(i64, Vec<u8>)]| {
        for (i, (ts, data)) in frames.iter().enumerate() {
            let frame = Frame {
                ts_ns: *ts,
                link_type: LinkType::ETHERNET,
                data,
                wire_len: data.len() as u32,
                source: 0,
                index: i as u64 + 1,
            };
            engine.process(&frame).unwrap();
        }
    };
    feed(&mut engine, &frames[..1]);
    engine.replace_resolver(Resolver::embedded().unwrap());
    // A new flow after the reload still gets the override's country (CN) and alerts.
    let later = tcp_session("192.168.1.50:50001", "198.18.1.11:443", T0 + 1_000 * MS);
    feed(&mut engine, &later);
    let report = engine.finish().unwrap();
    assert_eq!(report.summary.counters.geoip_reloads, 1);
    assert_eq!(report.summary.counters.alerts, 2);
    assert_eq!(
        report.summary.devices[0]
            .countries
            .keys()
            .collect::<Vec<_>>(),
        ["CN"]
    );
}
