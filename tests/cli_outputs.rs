//! The binary's inputs and outputs on good data: compressed, piped, pcapng and several inputs
//! read the same; exit codes and `--fail-on`; which events go where (`--events`, `--json`, the
//! terminal view, `--no-terminal`, `--junit`, `-q`, logs); `lookup`; `--help` and `--version`.
//!
//! Captures are generated with the lab camera of tests/fixtures/lab.toml and run in a temporary
//! directory under relative names, so the output names only the file.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use common::lab::{GATEWAY, MS, T0, sa, tcp_session};
use common::{Run, golden, normalise, null_fields, run, run_with, write_pcap};
use egresswatch::capture::write::PcapngWriter;
use egresswatch::capture::{Endian, LinkType};
use egresswatch::craft;
use egresswatch::decode::Mac;
use serde_json::Value;

/// A second, unnamed local device with its own MAC.
const LAPTOP: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x60]);

type Frames = Vec<(i64, Vec<u8>)>;

/// A UDP exchange of the laptop (192.168.1.60) with a lab host in DE: allowed by lab.toml.
fn laptop_to_de(t: i64) -> Frames {
    let (d, r) = (sa("192.168.1.60:40000"), sa("198.18.2.20:443"));
    vec![
        (
            t,
            craft::ethernet(LAPTOP, GATEWAY, &[], &craft::udp(d, r, &[0x11; 200])),
        ),
        (
            t + 30 * MS,
            craft::ethernet(GATEWAY, LAPTOP, &[], &craft::udp(r, d, &[0x22; 900])),
        ),
    ]
}

/// The camera to CN (rule no-cn, high), the camera to US (camera-outside-eu, medium) and the
/// laptop to DE (allowed), interleaved in time.
fn mixed() -> Frames {
    let mut frames = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    frames.extend(tcp_session(
        "192.168.1.50:50001",
        "198.18.3.5:443",
        T0 + 500 * MS,
    ));
    frames.extend(laptop_to_de(T0 + 20 * MS));
    frames.sort_by_key(|(t, _)| *t);
    frames
}

/// Only the camera to US: one alert of severity medium.
fn medium_only() -> Frames {
    tcp_session("192.168.1.50:50001", "198.18.3.5:443", T0)
}

/// Only the camera to DE: no alert.
fn clean() -> Frames {
    tcp_session("192.168.1.50:50002", "198.18.2.20:443", T0)
}

fn pcap_bytes(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pcap");
    write_pcap(&path, LinkType::ETHERNET, frames);
    std::fs::read(path).unwrap()
}

/// Runs `egresswatch replay ARGS --policy lab.toml` in `dir`.
fn replay_in(dir: &Path, args: &[&str]) -> Run {
    replay_full(dir, args, None, &[])
}

fn replay_full(dir: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let lab = common::fixture("lab.toml");
    let mut all: Vec<&std::ffi::OsStr> = vec!["replay".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.push("--policy".as_ref());
    all.push(lab.as_os_str());
    run_with(&all, Some(dir), stdin, env)
}

/// A temporary directory holding `name` with these frames as a classic pcap.
fn with_pcap(name: &str, frames: &[(i64, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_pcap(&dir.path().join(name), LinkType::ETHERNET, frames);
    dir
}

fn assert_no_nulls(r: &Run) {
    for e in r.json() {
        assert_eq!(null_fields(&e), Vec::<String>::new(), "{e}");
    }
}

const JSON_OUT: [&str; 3] = ["--json", "-", "--no-terminal"];

// ------------------------------------------------------------------------------------------------
// Inputs

#[test]
fn a_gzip_compressed_capture_gives_byte_identical_json() {
    let dir = with_pcap("lab.pcap", &mixed());
    let plain = std::fs::read(dir.path().join("lab.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        File::create(dir.path().join("lab.pcap.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&plain).unwrap();
    gz.finish().unwrap();

    let a = replay_in(dir.path(), &[&["lab.pcap"], &JSON_OUT[..]].concat());
    let b = replay_in(dir.path(), &[&["lab.pcap.gz"], &JSON_OUT[..]].concat());
    assert_eq!(a.code, 1, "{}", a.stderr);
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert_eq!(a.events("alert").len(), 2, "{}", a.stdout);
    assert!(
        b.stdout.contains("\"name\":\"lab.pcap.gz\""),
        "{}",
        b.stdout
    );
    assert_eq!(b.stdout.replace("lab.pcap.gz", "lab.pcap"), a.stdout);
    assert_no_nulls(&a);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let frames = mixed();
    let bytes = pcap_bytes(&frames);
    let dir = with_pcap("lab.pcap", &frames);
    let file = replay_in(dir.path(), &[&["lab.pcap"], &JSON_OUT[..]].concat());
    let piped = replay_full(
        dir.path(),
        &[&["-"], &JSON_OUT[..]].concat(),
        Some(&bytes),
        &[],
    );
    assert_eq!(piped.code, 1, "{}", piped.stderr);
    let alerts = piped.events("alert");
    assert_eq!(alerts.len(), 2, "{}", piped.stdout);
    assert!(alerts.iter().all(|a| a["source"]["name"] == "-"));
    assert_eq!(
        piped
            .stdout
            .replace("\"name\":\"-\"", "\"name\":\"lab.pcap\""),
        file.stdout
    );

    // Compressed standard input too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let piped_gz = replay_full(
        dir.path(),
        &[&["-"], &JSON_OUT[..]].concat(),
        Some(&gz),
        &[],
    );
    assert_eq!(piped_gz.code, 1, "{}", piped_gz.stderr);
    assert_eq!(piped_gz.stdout, piped.stdout);
}

#[test]
fn pcapng_with_two_byte_orders_and_two_timestamp_units_reads_like_the_pcap() {
    let frames = mixed();
    let dir = with_pcap("lab.pcap", &frames);
    {
        let file = BufWriter::new(File::create(dir.path().join("lab.pcapng")).unwrap());
        let mut w = PcapngWriter::new(file, Endian::Little).unwrap();
        let half = frames.len() / 2;
        for (section, part) in [
            (Endian::Little, &frames[..half]),
            (Endian::Big, &frames[half..]),
        ] {
            if section == Endian::Big {
                w.new_section(Endian::Big).unwrap();
            }
            let ns = w.add_interface(LinkType::ETHERNET, 9, 0).unwrap();
            let us = w.add_interface(LinkType::ETHERNET, 6, 0).unwrap();
            assert_eq!((ns, us), (0, 1));
            for (i, (t, data)) in part.iter().enumerate() {
                let interface = if i % 2 == 0 { ns } else { us };
                w.write_epb(interface, *t, data, data.len() as u32).unwrap();
            }
        }
        w.into_inner().flush().unwrap();
    }
    let pcap = replay_in(dir.path(), &[&["lab.pcap"], &JSON_OUT[..]].concat());
    let ng = replay_in(dir.path(), &[&["lab.pcapng"], &JSON_OUT[..]].concat());
    assert_eq!(ng.code, 1, "{}", ng.stderr);
    assert!(ng.stderr.is_empty(), "{}", ng.stderr);
    let alerts = ng.events("alert");
    assert_eq!(alerts.len(), 2, "{}", ng.stdout);
    assert_eq!(
        alerts
            .iter()
            .map(|a| a["rule"]["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["no-cn", "camera-outside-eu"]
    );
    // Same alerts, flows and summary: only the input's name differs.
    assert_eq!(ng.stdout.replace("lab.pcapng", "lab.pcap"), pcap.stdout);
}

#[test]
fn two_inputs_are_merged_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    // a.pcap: the camera to two CN hosts at 0 s and 2 s; b.pcap: to two US hosts at 1 s and 3 s.
    let mut a = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    a.extend(tcp_session(
        "192.168.1.50:50001",
        "198.18.1.11:443",
        T0 + 2_000 * MS,
    ));
    let mut b = tcp_session("192.168.1.50:50002", "198.18.3.5:443", T0 + 1_000 * MS);
    b.extend(tcp_session(
        "192.168.1.50:50003",
        "198.18.3.6:443",
        T0 + 3_000 * MS,
    ));
    write_pcap(&dir.path().join("a.pcap"), LinkType::ETHERNET, &a);
    write_pcap(&dir.path().join("b.pcap"), LinkType::ETHERNET, &b);

    let r = replay_in(dir.path(), &[&["a.pcap", "b.pcap"], &JSON_OUT[..]].concat());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let alerts = r.events("alert");
    let seen: Vec<(&str, &str, u64)> = alerts
        .iter()
        .map(|a| {
            (
                a["source"]["name"].as_str().unwrap(),
                a["remote"]["ip"].as_str().unwrap(),
                a["source"]["packet"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a.pcap", "198.18.1.10", 1),
            ("b.pcap", "198.18.3.5", 1),
            ("a.pcap", "198.18.1.11", 9),
            ("b.pcap", "198.18.3.6", 9),
        ]
    );
    let times: Vec<&str> = alerts
        .iter()
        .map(|a| a["timestamp"].as_str().unwrap())
        .collect();
    // RFC 3339 UTC with a fixed number of digits: text order is time order.
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let summary = r.events("summary").pop().unwrap();
    assert_eq!(summary["inputs"][0]["name"], "a.pcap");
    assert_eq!(summary["inputs"][0]["frames"], 16);
    assert_eq!(summary["inputs"][1]["name"], "b.pcap");
    assert_eq!(summary["inputs"][1]["frames"], 16);
    assert_eq!(summary["counters"]["frames"], 32);
    golden("merged_two_inputs", &normalise(r.json()));

    // The order of the arguments does not change the order of the alerts.
    let swapped = replay_in(dir.path(), &[&["b.pcap", "a.pcap"], &JSON_OUT[..]].concat());
    let swapped_alerts: Vec<Value> = swapped.events("alert");
    assert_eq!(swapped_alerts, alerts);
}

// ------------------------------------------------------------------------------------------------
// Exit codes

#[test]
fn fail_on_sets_the_exit_code_by_severity() {
    let dir = with_pcap("medium.pcap", &medium_only());
    let r = replay_in(dir.path(), &[&["medium.pcap"], &JSON_OUT[..]].concat());
    let alerts = r.events("alert");
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    assert_eq!(alerts[0]["rule"]["severity"], "medium");
    // The default is "any alert".
    assert_eq!(r.code, 1, "{}", r.stderr);
    for (fail_on, code) in [
        ("info", 1),
        ("low", 1),
        ("medium", 1),
        ("MEDIUM", 1),
        ("high", 0),
        ("critical", 0),
        ("never", 0),
    ] {
        let r = replay_in(dir.path(), &["medium.pcap", "--fail-on", fail_on, "-q"]);
        assert_eq!(r.code, code, "--fail-on {fail_on}: {}", r.stderr);
        // The alert is reported whatever the exit code.
        assert!(r.stdout.contains("camera-outside-eu"), "{}", r.stdout);
    }
}

#[test]
fn a_clean_capture_exits_0() {
    let dir = with_pcap("clean.pcap", &clean());
    for extra in [&[][..], &["--fail-on", "info"][..]] {
        let r = replay_in(
            dir.path(),
            &[&["clean.pcap"], &JSON_OUT[..], extra].concat(),
        );
        assert_eq!(r.code, 0, "{extra:?}: {}", r.stderr);
        assert!(r.events("alert").is_empty());
        assert_eq!(r.events("flow")[0]["remote"]["country"], "DE");
        assert_no_nulls(&r);
    }
}

// ------------------------------------------------------------------------------------------------
// Outputs

#[test]
fn events_chooses_which_event_types_are_written() {
    let dir = with_pcap("lab.pcap", &mixed());
    let all = replay_in(dir.path(), &[&["lab.pcap"], &JSON_OUT[..]].concat());
    let types = |r: &Run| -> Vec<String> {
        r.json()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let (alerts, flows) = (all.events("alert"), all.events("flow"));
    assert_eq!(alerts.len(), 2);
    assert_eq!(flows.len(), 3);

    let r = replay_in(
        dir.path(),
        &[
            "lab.pcap",
            "--events",
            "alert",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(types(&r), ["alert", "alert"]);
    assert_eq!(r.json(), alerts);

    let r = replay_in(
        dir.path(),
        &[
            "lab.pcap",
            "--events",
            "summary",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(types(&r), ["summary"]);
    assert_eq!(r.json(), all.events("summary"));

    let r = replay_in(
        dir.path(),
        &[
            "lab.pcap",
            "--events",
            "flow,alert",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    let t = types(&r);
    assert_eq!(t.len(), 5);
    assert!(!t.contains(&"summary".to_owned()), "{t:?}");

    let r = replay_in(
        dir.path(),
        &[
            "lab.pcap",
            "--events",
            "all",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(r.stdout, all.stdout);

    // With the terminal view on, it goes to standard error: standard output stays pure JSON.
    let r = replay_in(
        dir.path(),
        &["lab.pcap", "--events", "alert", "--json", "-"],
    );
    assert_eq!(r.json(), alerts);
    assert!(r.stderr.contains("egresswatch summary:"), "{}", r.stderr);
}

#[test]
fn json_to_a_file_leaves_the_terminal_view_on_stdout_without_colour() {
    let dir = with_pcap("lab.pcap", &mixed());
    let reference = replay_in(dir.path(), &[&["lab.pcap"], &JSON_OUT[..]].concat());
    let r = replay_in(dir.path(), &["lab.pcap", "--json", "out.jsonl"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(written, reference.stdout);
    // The human view: one line per alert, then the summary table.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let alert_lines: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("2026-01-15T10:00:00"))
        .collect();
    assert_eq!(alert_lines.len(), 2, "{}", r.stdout);
    assert!(
        alert_lines[0].contains("HIGH")
            && alert_lines[0].contains("no-cn")
            && alert_lines[0].contains("198.18.1.10:443/tcp"),
        "{}",
        alert_lines[0]
    );
    assert!(
        alert_lines[1].contains("MEDIUM") && alert_lines[1].contains("camera-outside-eu"),
        "{}",
        alert_lines[1]
    );
    assert!(
        r.stdout
            .contains("egresswatch summary: 18 packets in 1 input(s), 3 flows, 2 alerts"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("camera-01"), "{}", r.stdout);
    assert!(!r.stdout.contains('{'), "no JSON on stdout: {}", r.stdout);
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour off a terminal: {:?}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    // --color always colours it anyway; NO_COLOR does not override an explicit choice.
    let r = replay_full(
        dir.path(),
        &["lab.pcap", "--json", "out2.jsonl", "--color", "always"],
        None,
        &[("NO_COLOR", "1")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("\x1b["), "{:?}", r.stdout);
    assert!(
        r.stdout.contains("\x1b[0m"),
        "colour is reset: {:?}",
        r.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out2.jsonl")).unwrap(),
        written,
        "colour never reaches the JSON"
    );
    // --color never stays plain.
    let r = replay_in(dir.path(), &["lab.pcap", "--color", "never"]);
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
}

#[test]
fn no_terminal_without_json_prints_nothing() {
    let dir = with_pcap("lab.pcap", &mixed());
    let r = replay_in(dir.path(), &["lab.pcap", "--no-terminal"]);
    assert_eq!(
        r.code, 1,
        "the exit code still reports the alerts: {}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
}

#[test]
fn junit_has_a_testcase_per_alerting_rule_and_device() {
    let dir = with_pcap("lab.pcap", &mixed());
    let r = replay_in(
        dir.path(),
        &["lab.pcap", "--junit", "report.xml", "--no-terminal"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        "{xml}"
    );
    // lab.toml has three alerting rules (no-cn, camera-outside-eu and, as it sets home, the
    // built-in plaintext-foreign; eu-ok is an allow rule) and the capture two devices: six
    // cases, the camera's no-cn and camera-outside-eu failed.
    assert!(
        xml.contains("<testsuites name=\"egresswatch\" tests=\"6\" failures=\"2\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<testsuite name=\"egresswatch policy lab-fixture\" tests=\"6\" failures=\"2\" errors=\"0\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(!xml.contains("eu-ok"), "{xml}");
    for rule in ["no-cn", "camera-outside-eu"] {
        assert!(
            xml.contains(&format!(
                "<testcase classname=\"egresswatch.{rule}\" name=\"camera-01 (192.168.1.50)\">\n      <failure "
            )),
            "{rule}: {xml}"
        );
        assert!(
            xml.contains(&format!(
                "<testcase classname=\"egresswatch.{rule}\" name=\"192.168.1.60\"/>"
            )),
            "{rule}: {xml}"
        );
    }
    assert!(
        xml.contains(
            "<failure type=\"high\" message=\"rule no-cn alerted 1 time(s) (0 more suppressed)\">"
        ),
        "{xml}"
    );
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 1);
    assert_eq!(xml.matches("</testsuite>").count(), 1);

    // A clean run: every case passes.
    let dir = with_pcap("clean.pcap", &clean());
    let r = replay_in(
        dir.path(),
        &["clean.pcap", "--junit", "report.xml", "--no-terminal"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"0\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn junit_to_an_unwritable_path_is_exit_2() {
    let dir = with_pcap("clean.pcap", &clean());
    let r = replay_in(
        dir.path(),
        &[
            "clean.pcap",
            "--junit",
            "no-such-dir/report.xml",
            "--no-terminal",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write no-such-dir/report.xml"),
        "{}",
        r.stderr
    );
    let r = replay_in(
        dir.path(),
        &[
            "clean.pcap",
            "--json",
            "no-such-dir/out.jsonl",
            "--no-terminal",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write no-such-dir/out.jsonl"),
        "{}",
        r.stderr
    );
}

#[test]
fn quiet_keeps_stderr_empty_and_logs_never_reach_stdout() {
    // A directory with a clean capture and a file that is not one: the file is skipped with a
    // warning (a log line).
    let dir = with_pcap("clean.pcap", &clean());
    std::fs::write(dir.path().join("README.txt"), "notes about this capture\n").unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let here = dir.path();

    let r = replay_in(here, &["."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("skipping a file that is not a pcap"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("README.txt"), "{}", r.stderr);
    assert!(r.stdout.contains("egresswatch summary:"), "{}", r.stdout);
    assert!(!r.stdout.contains("skipping"), "{}", r.stdout);
    assert!(!r.stdout.contains("README"), "{}", r.stdout);

    let r = replay_in(here, &[".", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    assert!(r.stdout.contains("egresswatch summary:"), "{}", r.stdout);

    // Most verbose, JSON on stdout: every stdout line is still a JSON object.
    let r = replay_in(here, &[".", "-vv", "--json", "-", "--no-terminal"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("skipping"), "{}", r.stderr);
    let events = r.json();
    assert_eq!(events.last().unwrap()["event_type"], "summary");
    assert_eq!(events.last().unwrap()["inputs"][0]["name"], "./clean.pcap");
    // RUST_LOG overrides the level, and still writes to stderr only.
    let r = replay_full(
        here,
        &[".", "--json", "-", "--no-terminal"],
        None,
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json().len(), events.len());
}

// ------------------------------------------------------------------------------------------------
// lookup

#[test]
fn lookup_prints_one_json_object_per_address() {
    let r = run(&["lookup", "8.8.8.8", "10.0.0.1", "2001:4860:4860::8888"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answers = r.json();
    assert_eq!(answers.len(), 3, "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 3);
    assert_eq!(answers[0]["ip"], "8.8.8.8");
    assert_eq!(answers[0]["public"], true);
    assert_eq!(answers[0]["country"], "US");
    assert!(
        answers[0]["country_source"]
            .as_str()
            .unwrap()
            .starts_with("embedded:"),
        "{}",
        answers[0]
    );
    // A private address: no country, nothing but the address and public:false.
    assert_eq!(
        answers[1],
        serde_json::json!({"ip": "10.0.0.1", "public": false})
    );
    assert_eq!(answers[2]["ip"], "2001:4860:4860::8888");
    assert_eq!(answers[2]["public"], true);
    assert!(answers[2]["country"].is_string(), "{}", answers[2]);
    assert_no_nulls(&r);
}

#[test]
fn lookup_applies_the_overrides_of_a_policy() {
    let lab = common::fixture("lab.toml");
    let r = run(&[
        "lookup".as_ref(),
        "--policy".as_ref(),
        lab.as_os_str(),
        "198.18.1.5".as_ref(),
        "2001:db8:86::1".as_ref(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answers = r.json();
    assert_eq!(answers[0]["ip"], "198.18.1.5");
    assert_eq!(answers[0]["country"], "CN");
    assert_eq!(answers[0]["asn"], 64501);
    assert_eq!(answers[0]["as_org"], "Lab host in CN");
    assert_eq!(answers[0]["country_source"], "overrides");
    assert_eq!(answers[0]["asn_source"], "overrides");
    assert_eq!(answers[1]["country"], "CN");
    assert_eq!(answers[1]["country_source"], "overrides");
    assert!(answers[1].get("asn").is_none(), "{}", answers[1]);

    // Without the policy, the benchmarking range has no country.
    let r = run(&["lookup", "198.18.1.5"]);
    assert_eq!(
        r.json()[0],
        serde_json::json!({"ip": "198.18.1.5", "public": false})
    );

    // A bad policy is refused, as in a replay.
    let bad = common::fixture("bad-country-uk.toml");
    let r = run(&[
        "lookup".as_ref(),
        "--policy".as_ref(),
        bad.as_os_str(),
        "198.18.1.5".as_ref(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("bad-country-uk.toml:7:20: "),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------------------------------------------
// --help and --version

#[test]
fn help_lists_the_exit_codes() {
    for args in [&["replay", "--help"][..], &["--help"][..]] {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        let h = &r.stdout;
        assert!(h.contains("Exit codes:"), "{args:?}: {h}");
        for line in [
            "0  clean: no alert at or above --fail-on",
            "1  an alert at or above --fail-on",
            "2  usage, policy or GeoIP database error",
            "3  a capture was unreadable or damaged",
        ] {
            assert!(h.contains(line), "{args:?}: {line:?} missing from {h}");
        }
    }
    let r = run(&["replay", "--help"]);
    for flag in [
        "--policy",
        "--deny-country",
        "--geoip-db",
        "--json",
        "--events",
        "--fail-on",
        "--junit",
        "--no-terminal",
        "--color",
    ] {
        assert!(r.stdout.contains(flag), "{flag} missing from {}", r.stdout);
    }
    let r = run(&["lookup", "--help"]);
    assert!(r.stdout.contains("Exit codes:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("2  an argument is not an IP address"),
        "{}",
        r.stdout
    );
}

#[test]
fn version_prints_the_package_version() {
    let r = run(&["--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("egresswatch {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    // The embedded data's licence asks for attribution.
    assert!(
        r.stdout.contains("Number Resource Organization"),
        "{}",
        r.stdout
    );
    // The summary's tool field agrees.
    let dir = with_pcap("clean.pcap", &clean());
    let s = replay_in(
        dir.path(),
        &[
            "clean.pcap",
            "--events",
            "summary",
            "--json",
            "-",
            "--no-terminal",
        ],
    );
    assert_eq!(
        s.json()[0]["tool"],
        format!("egresswatch {}", env!("CARGO_PKG_VERSION"))
    );
}
