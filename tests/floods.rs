//! Floods (issue 6): hostile captures built by `egresswatch::flood`, a little over caps lowered
//! by flags, run through the real binary. Each asserts that the cap's `dropped` count in the
//! summary's `limits` is exactly what the cap's documented policy drops, that the output stays
//! bounded (no alert storm, no line per dropped item), and the exit code.

mod common;

use std::path::{Path, PathBuf};

use egresswatch::capture::LinkType;
use egresswatch::flood::{self, Flood};
use serde_json::Value;

/// Writes flood `kind` of size `n` under the test's temporary directory.
fn capture(dir: &Path, kind: Flood, n: u64) -> PathBuf {
    let mut frames = Vec::new();
    kind.build(n, |ts, f| frames.push((ts, f.to_vec())));
    let path = dir.join(format!("{}.pcap", kind.name()));
    common::write_pcap(&path, LinkType::ETHERNET, &frames);
    path
}

/// Runs a replay with the extra flags; returns the run's JSON lines and the summary.
fn replay(pcap: &Path, flags: &[&str]) -> (i32, Vec<Value>, Value) {
    let mut args = vec!["replay", "--json", "-", "--no-terminal"];
    if !flags.contains(&"--events") {
        args.extend_from_slice(&["--events", "alert,summary"]);
    }
    args.extend_from_slice(flags);
    let pcap = pcap.to_str().unwrap();
    args.push(pcap);
    let run = common::run(&args);
    let lines = run.json();
    let summary = lines
        .iter()
        .find(|v| v["event_type"] == "summary")
        .cloned()
        .unwrap_or_else(|| panic!("no summary: {}", run.stderr));
    (run.code, lines, summary)
}

fn dropped(summary: &Value, cap: &str) -> u64 {
    summary["limits"][cap]["dropped"].as_u64().unwrap()
}

/// What a two-generation cache of `cap` entries drops after `inserts` distinct keys: each time
/// the young half (cap / 2) is full, a new key drops the old half and the young half becomes
/// old. (docs/robustness.md, "Caps".)
fn generational_dropped(inserts: u64, cap: u64) -> u64 {
    let half = (cap / 2).max(1);
    let rotations = inserts.saturating_sub(1) / half;
    rotations.saturating_sub(1) * half
}

/// Every line is the summary or an alert, and there are no alerts: nothing per dropped item.
fn assert_quiet(lines: &[Value]) {
    assert_eq!(lines.len(), 1, "only the summary: {lines:?}");
}

#[test]
fn generational_model_holds_between_half_and_the_whole_cap() {
    for (n, cap) in [(1000, 100), (2000, 100), (51, 100), (1000, 7), (3, 2)] {
        let held = n - generational_dropped(n, cap);
        assert!(
            held <= cap.max(2) && held > cap / 2 - 1,
            "n {n} cap {cap} held {held}"
        );
    }
}

#[test]
fn a_scan_of_distinct_remotes_is_bounded_by_the_flow_and_hardcoded_caps() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pcap = capture(dir.path(), Flood::Scan, n);
    let (code, lines, s) = replay(
        &pcap,
        &["--max-flows", "100", "--max-hardcoded-per-device", "10"],
    );
    assert_eq!(code, 0);
    assert_quiet(&lines);
    assert_eq!(s["counters"]["flows"], n);
    assert_eq!(
        dropped(&s, "flows"),
        n - 100,
        "least recently active evicted"
    );
    assert_eq!(s["counters"]["flows_evicted"], n - 100);
    assert_eq!(s["limits"]["flows"]["cap"], 100);
    // Every flow is to a distinct public address no DNS answer named, after the grace period.
    assert_eq!(dropped(&s, "hardcoded_per_device"), n - 10);
    let device = &s["devices"][0];
    assert_eq!(device["hardcoded"].as_array().unwrap().len(), 10);
}

#[test]
fn distinct_dns_names_are_bounded_by_the_dns_cache() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pcap = capture(dir.path(), Flood::DnsNames, n);
    let (code, lines, s) = replay(&pcap, &["--max-dns-cache", "100"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    assert_eq!(s["counters"]["dns_responses"], n);
    assert_eq!(s["limits"]["dns_cache"]["cap"], 100);
    assert_eq!(dropped(&s, "dns_cache"), generational_dropped(n, 100));
    assert_eq!(s["counters"]["dns_cache_evicted"], dropped(&s, "dns_cache"));
}

#[test]
fn answers_with_hundreds_of_records_keep_the_first_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200;
    let pcap = capture(dir.path(), Flood::DnsAnswers, n);
    let (code, lines, s) = replay(&pcap, &["--max-dns-cache", "1000"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    let kept = egresswatch::names::dns::DNS_ANSWERS_MAX as u64;
    let per_message = flood::ANSWERS_PER_MESSAGE as u64;
    assert_eq!(s["limits"]["dns_answers"]["cap"], kept);
    assert_eq!(dropped(&s, "dns_answers"), n * (per_message - kept));
    // Each kept record is a distinct address: the cache sees n × kept inserts.
    assert_eq!(
        dropped(&s, "dns_cache"),
        generational_dropped(n * kept, 1000)
    );
}

#[test]
fn deep_cname_chains_and_loops_are_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    let pcap = capture(dir.path(), Flood::CnameChains, n);
    let (code, lines, s) = replay(&pcap, &["--events", "alert,summary,dns"]);
    assert_eq!(code, 0);
    assert_eq!(s["counters"]["dns_responses"], 2 * n);
    // One long chain and one loop per round.
    assert_eq!(dropped(&s, "dns_cname_chain"), 2 * n);
    let dns: Vec<&Value> = lines.iter().filter(|v| v["event_type"] == "dns").collect();
    assert_eq!(dns.len() as u64, 2 * n, "one dns event per question");
    let max_chain = dns
        .iter()
        .map(|d| d["cname_chain"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap();
    assert!(max_chain <= egresswatch::names::dns::DNS_CNAME_CHAIN_MAX);
    // The long chain gives no address (cut before its end); the loop's question does.
    let long = dns
        .iter()
        .find(|d| d["query"] == "chain0.flood.example")
        .unwrap();
    assert_eq!(long["answers"].as_array().unwrap().len(), 0);
}

#[test]
fn compression_pointer_loops_are_malformed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let n = 500;
    let pcap = capture(dir.path(), Flood::PointerLoops, n);
    let (code, lines, s) = replay(&pcap, &[]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    assert_eq!(s["counters"]["dns_malformed"], n);
    assert_eq!(s["counters"]["dns_responses"], 0);
}

#[test]
fn fragment_floods_are_bounded_by_the_fragment_cap() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pcap = capture(dir.path(), Flood::Fragments, n);
    let (code, lines, s) = replay(&pcap, &["--max-fragments", "100"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    // Per round: an IPv4 and an IPv6 first fragment (distinct ids), and an orphan.
    assert_eq!(s["counters"]["fragments"], 3 * n);
    assert_eq!(s["counters"]["fragments_unmatched"], n);
    assert_eq!(s["limits"]["fragments"]["cap"], 100);
    assert_eq!(dropped(&s, "fragments"), generational_dropped(2 * n, 100));
}

#[test]
fn clienthellos_that_never_complete_are_bounded_by_the_reassembly_budget() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pcap = capture(dir.path(), Flood::PartialHellos, n);
    let budget = 100_000u64;
    let (code, lines, s) = replay(&pcap, &["--max-reassembly-bytes", &budget.to_string()]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    assert_eq!(s["counters"]["flows"], n);
    // Each flow holds its partial hello; the flows that fit keep theirs, every later one
    // lets go of its buffers.
    let fit = budget / flood::PARTIAL_HELLO_BYTES as u64;
    assert_eq!(dropped(&s, "reassembly_bytes"), n - fit);
    // Without the cap lowered nothing is dropped.
    let (_, _, s) = replay(&pcap, &[]);
    assert_eq!(dropped(&s, "reassembly_bytes"), 0);
}

#[test]
fn spoofed_devices_are_bounded_by_the_device_cap() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1000;
    let pcap = capture(dir.path(), Flood::Devices, n);
    let (code, lines, s) = replay(&pcap, &["--max-devices", "50"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    assert_eq!(s["devices"].as_array().unwrap().len(), 50);
    // One flow per device: every flow of a device past the cap.
    assert_eq!(dropped(&s, "devices"), n - 50);
}

#[test]
fn every_cap_is_reported_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), Flood::Scan, 10);
    let (_, _, s) = replay(&pcap, &[]);
    let limits = s["limits"].as_object().unwrap();
    let d = egresswatch::limits::Caps::default();
    assert_eq!(limits["dns_cache"]["cap"], d.dns_cache);
    assert_eq!(limits["fragments"]["cap"], d.fragments);
    assert_eq!(limits["devices"]["cap"], d.devices);
    assert_eq!(limits["reassembly_bytes"]["cap"], d.reassembly_bytes);
    assert_eq!(limits["flows"]["cap"], egresswatch::flow::FLOWS_MAX_DEFAULT);
    for (name, l) in limits {
        assert!(l["cap"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(l["dropped"], 0, "{name}: nothing dropped on 10 flows");
    }
}

#[test]
fn caps_below_the_minimum_are_raised_to_it() {
    // --max-dns-cache 0 and --max-fragments 0 are raised to the minimum of 2, not refused.
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), Flood::DnsNames, 10);
    let (code, _, s) = replay(&pcap, &["--max-dns-cache", "0", "--max-fragments", "0"]);
    assert_eq!(code, 0);
    assert_eq!(s["limits"]["dns_cache"]["cap"], 2);
    assert_eq!(s["limits"]["fragments"]["cap"], 2);
    assert_eq!(dropped(&s, "dns_cache"), generational_dropped(10, 2));
}

#[test]
fn alerts_on_distinct_remotes_are_all_written_and_the_dedup_table_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100u64;
    let pcap = capture(dir.path(), Flood::Scan, n);
    // 20.0.0.0/8 is placed in GB by the embedded database: one alert per scanned remote.
    let (code, lines, s) = replay(&pcap, &["--deny-country", "GB", "--max-dedup", "10"]);
    assert_eq!(code, 1, "alerts raised");
    let alerts = lines.iter().filter(|v| v["event_type"] == "alert").count() as u64;
    assert_eq!(alerts, n, "distinct remotes are never de-duplicated");
    assert_eq!(s["counters"]["alerts"], n);
    // Emptied each time it held 10 entries and an 11th came: before alerts 11, 21, ... 91.
    let cap = 10;
    assert_eq!(dropped(&s, "dedup"), (n - 1) / cap * cap);
}

#[test]
fn names_per_device_are_capped_and_counted() {
    use egresswatch::craft;
    use std::net::SocketAddr;
    let dir = tempfile::tempdir().unwrap();
    let n = 50u64;
    let mut frames = Vec::new();
    let mac = egresswatch::decode::Mac([2, 0, 0, 0, 0, 7]);
    let gw = egresswatch::decode::Mac([2, 0, 0, 0, 0, 1]);
    for i in 0..n {
        let src: SocketAddr = format!("192.168.1.7:{}", 40_000 + i).parse().unwrap();
        let dst = SocketAddr::new(flood::public_v4(i), 443);
        let hello = craft::tls_client_hello(&format!("host{i}.flood.example"), 0);
        let p = craft::tcp(src, dst, craft::tcp_flags::ACK | 0x08, &hello);
        frames.push((
            flood::T0 + i as i64 * 1_000,
            craft::ethernet(mac, gw, &[], &p),
        ));
    }
    let path = dir.path().join("names.pcap");
    common::write_pcap(&path, LinkType::ETHERNET, &frames);
    let (code, lines, s) = replay(&path, &["--max-names-per-device", "10"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    let device = &s["devices"][0];
    assert_eq!(device["names"].as_object().unwrap().len(), 10);
    assert_eq!(device["names_dropped"], n - 10);
    assert_eq!(dropped(&s, "names_per_device"), n - 10);
}

#[test]
fn summary_lists_over_all_devices_are_capped_together() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100u64;
    let pcap = capture(dir.path(), Flood::Devices, n);
    let (code, lines, s) = replay(&pcap, &["--max-summary-entries", "50"]);
    assert_eq!(code, 0);
    assert_quiet(&lines);
    // Each device's one flow lists an ASN and a hard-coded address: two entries per device,
    // so 25 devices fill the 50 and the other 75 list neither.
    let listed: usize = s["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["asns"].as_object().unwrap().len() + d["hardcoded"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, 50);
    assert_eq!(dropped(&s, "summary_entries"), 2 * (n - 25));
    assert_eq!(
        s["devices"].as_array().unwrap().len() as u64,
        n,
        "every device still listed"
    );
}

#[test]
fn devices_that_only_send_dns_queries_are_bounded_by_the_device_cap_too() {
    // 50 devices, each one DNS query to a public resolver: resolver flows go through the same
    // device cap as every other flow.
    let dir = tempfile::tempdir().unwrap();
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x06vendor\x07example\x00\x00\x01\x00\x01");
    let frames: Vec<(i64, Vec<u8>)> = (0..50u8)
        .map(|i| {
            let src = format!("192.168.7.{}:5353{}", i + 1, i % 10)
                .parse()
                .unwrap();
            let dst = "8.8.8.8:53".parse().unwrap();
            (
                1_768_471_200_000_000_000 + i64::from(i) * 1_000_000,
                egresswatch::craft::udp(src, dst, &query),
            )
        })
        .collect();
    let pcap = dir.path().join("dns-devices.pcap");
    common::write_pcap(&pcap, LinkType::RAW, &frames);
    let (_, _, s) = replay(&pcap, &["--max-devices", "3", "--fail-on", "never"]);
    assert_eq!(s["devices"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(dropped(&s, "devices"), 47, "{s}");
}
