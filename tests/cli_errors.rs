//! The binary on bad input: broken or unsuitable GeoIP databases, invalid policies and
//! command-line rules, damaged, empty or missing captures. Each case checks the documented exit
//! code (2: usage, policy or database; 3: capture), that the message names what is wrong and
//! where, and what still reaches standard output.

mod common;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::lab::{T0, tcp_session};
use common::{Run, golden, normalise, null_fields, run, run_with, write_pcap};
use egresswatch::capture::LinkType;
use ipnet::IpNet;
use serde_json::Value;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs with the package root as working directory, so relative paths in messages are stable.
fn run_here(args: &[&str]) -> Run {
    run_with(args, Some(manifest_dir()), None, &[])
}

/// The one `egresswatch: error:` line of a failed run.
fn error_line(r: &Run) -> &str {
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("egresswatch: error: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected in: {}", r.stderr);
    lines[0]
}

// ------------------------------------------------------------------------------------------------
// GeoIP databases

/// The corrupt databases from ../shared/mmdb/bad-data and the deliberately broken ones of
/// ../shared/mmdb/test-data.
fn broken_databases(shared: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("mmdb/bad-data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mmdb"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "bad-data has {} databases", files.len());
    for name in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ] {
        files.push(shared.join("mmdb/test-data").join(name));
    }
    files
}

#[test]
fn every_broken_geoip_database_is_refused_with_exit_2_naming_the_file() {
    let Some(shared) = common::shared() else {
        return;
    };
    for db in broken_databases(&shared) {
        let r = run(&[
            "replay".as_ref(),
            "examples/demo.pcap".as_ref(),
            "--geoip-db".as_ref(),
            db.as_os_str(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ]);
        let name = db.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(
            r.stdout.is_empty(),
            "{name}: no JSON expected: {}",
            r.stdout
        );
        let line = error_line(&r);
        assert!(
            line.contains(&db.display().to_string()),
            "{name}: the message names the file: {line}"
        );
        // Every refusal says what is wrong with it: corrupt, or the wrong kind of database.
        assert!(
            line.contains("corrupt") || line.contains("none of the fields egresswatch reads"),
            "{name}: {line}"
        );
    }
}

#[test]
fn a_database_of_the_wrong_type_is_refused_saying_which_type_it_is() {
    let Some(shared) = common::shared() else {
        return;
    };
    let db = shared.join("mmdb/test-data/GeoIP2-Domain-Test.mmdb");
    let r = run(&[
        "replay".as_ref(),
        "examples/demo.pcap".as_ref(),
        "--geoip-db".as_ref(),
        db.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let line = error_line(&r);
    assert!(line.contains(&db.display().to_string()), "{line}");
    assert!(line.contains("\"GeoIP2-Domain\" database"), "{line}");
    assert!(
        line.contains("give a country, city or ASN database"),
        "{line}"
    );
}

#[test]
fn a_missing_geoip_database_is_exit_2_and_says_it_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("GeoLite2-Country.mmdb");
    for sub in ["replay", "lookup"] {
        let first: &std::ffi::OsStr = if sub == "replay" {
            "examples/demo.pcap".as_ref()
        } else {
            "8.8.8.8".as_ref()
        };
        let r = run(&[sub.as_ref(), first, "--geoip-db".as_ref(), db.as_os_str()]);
        assert_eq!(r.code, 2, "{sub}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{sub}: {}", r.stdout);
        let line = error_line(&r);
        assert!(line.contains(&db.display().to_string()), "{sub}: {line}");
        assert!(
            line.contains("cannot read the GeoIP database"),
            "{sub}: {line}"
        );
    }
}

/// A record of a MaxMind source-data JSON file: its network and its data.
fn source_records(path: &Path) -> Vec<(IpNet, Value)> {
    let all: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.into_iter()
        .flat_map(|m| m.into_iter())
        .map(|(net, data)| {
            let net: IpNet = net.parse().unwrap_or_else(|e| panic!("{net}: {e}"));
            (net.trunc(), data)
        })
        .collect()
}

/// The most specific record for `ip`, as the database built from these records answers it
/// (IPv4 addresses live under ::/96 in an IPv6 database).
fn most_specific(records: &[(IpNet, Value)], ip: IpAddr) -> Option<&Value> {
    let forms: Vec<IpAddr> = match ip {
        IpAddr::V4(v4) => vec![ip, IpAddr::V6(v4.to_ipv6_compatible())],
        IpAddr::V6(_) => vec![ip],
    };
    records
        .iter()
        .filter(|(net, _)| forms.iter().any(|f| net.contains(f)))
        .max_by_key(|(net, _)| {
            // Compare IPv4 prefixes on the IPv6 scale.
            match net {
                IpNet::V4(n) => n.prefix_len() + 96,
                IpNet::V6(n) => n.prefix_len(),
            }
        })
        .map(|(_, data)| data)
}

#[test]
fn good_databases_answer_lookups_as_their_source_data_says() {
    let Some(shared) = common::shared() else {
        return;
    };
    let country_db = shared.join("mmdb/test-data/GeoIP2-Country-Test.mmdb");
    let asn_db = shared.join("mmdb/test-data/GeoLite2-ASN-Test.mmdb");
    let countries = source_records(&shared.join("mmdb/source-data/GeoIP2-Country-Test.json"));
    let asns = source_records(&shared.join("mmdb/source-data/GeoLite2-ASN-Test.json"));
    let dbs = [
        "--geoip-db".as_ref(),
        country_db.as_os_str(),
        "--geoip-db".as_ref(),
        asn_db.as_os_str(),
    ];

    // A replay with them works and lists them in the summary.
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "replay".as_ref(),
        "examples/demo.pcap".as_ref(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ];
    args.extend(dbs);
    let r = run(&args);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    let summary = r.events("summary").pop().expect("a summary");
    let used: Vec<(&str, &str)> = summary["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap(),
                d["database_type"].as_str().unwrap(),
            )
        })
        .collect();
    let country_name = country_db.display().to_string();
    let asn_name = asn_db.display().to_string();
    assert!(
        used.contains(&(country_name.as_str(), "GeoIP2-Country")),
        "{used:?}"
    );
    assert!(
        used.contains(&(asn_name.as_str(), "GeoLite2-ASN")),
        "{used:?}"
    );

    // Addresses from the source data: in both files, only in the country file, only in the ASN
    // file, and IPv6.
    let addresses = [
        "214.78.120.1",
        "89.160.20.112",
        "81.2.69.160",
        "1.128.0.1",
        "2001:218::1",
    ];
    let mut args: Vec<&std::ffi::OsStr> = vec!["lookup".as_ref()];
    args.extend(dbs);
    args.extend(addresses.iter().map(std::ffi::OsStr::new));
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answers = r.json();
    assert_eq!(answers.len(), addresses.len(), "{}", r.stdout);
    let mut both = 0;
    for (addr, got) in addresses.iter().zip(&answers) {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(got["ip"], *addr);
        assert_eq!(got["public"], true, "{got}");
        let c = most_specific(&countries, ip);
        let country = c.and_then(|d| d.pointer("/country/iso_code"));
        let registered = c.and_then(|d| d.pointer("/registered_country/iso_code"));
        assert_eq!(got.get("country"), country, "{addr}: {got}");
        assert_eq!(got.get("registered_country"), registered, "{addr}: {got}");
        if country.is_some() {
            assert_eq!(
                got["country_source"],
                country_name.as_str(),
                "{addr}: {got}"
            );
        } else {
            assert!(got.get("country_source").is_none(), "{addr}: {got}");
        }
        let a_rec = most_specific(&asns, ip);
        let asn = a_rec.and_then(|d| d.get("autonomous_system_number"));
        let org = a_rec.and_then(|d| d.get("autonomous_system_organization"));
        assert_eq!(got.get("asn"), asn, "{addr}: {got}");
        assert_eq!(got.get("as_org"), org, "{addr}: {got}");
        if asn.is_some() {
            assert_eq!(got["asn_source"], asn_name.as_str(), "{addr}: {got}");
        } else {
            assert!(got.get("asn_source").is_none(), "{addr}: {got}");
        }
        if country.is_some() && asn.is_some() {
            both += 1;
        }
    }
    // The picks really exercise both databases at once.
    assert!(both >= 2, "{}", r.stdout);
    assert_eq!(answers[0]["country"], "US");
    assert_eq!(answers[0]["asn"], 721);
}

// ------------------------------------------------------------------------------------------------
// Policies

/// Each bad policy fixture: the position of its error and words the message must contain.
const BAD_POLICIES: &[(&str, u32, u32, &[&str])] = &[
    (
        "bad-unknown-key.toml",
        7,
        1,
        &["unknown key `severty`", "`severity`"],
    ),
    (
        "bad-country-uk.toml",
        7,
        20,
        &["unknown country \"UK\"", "did you mean \"GB\""],
    ),
    (
        "bad-cidr.toml",
        8,
        26,
        &["invalid CIDR \"198.51.100.0/33\""],
    ),
    (
        "bad-duplicate-rule.toml",
        10,
        6,
        &["duplicate rule id \"no-cn\"", "line 6, column 6"],
    ),
    ("bad-syntax.toml", 3, 19, &["invalid basic string"]),
    (
        "bad-unknown-group.toml",
        10,
        29,
        &["unknown group \"nordics\"", "[groups]"],
    ),
    // Column 72 in characters; the line has multi-byte characters before the error (byte 77).
    (
        "bad-column-in-characters.toml",
        3,
        72,
        &["unknown country \"UK\"", "did you mean \"GB\""],
    ),
];

fn assert_policy_error(r: &Run, file: &str, line: u32, column: u32, words: &[&str]) {
    let msg = error_line(r);
    let prefix = format!("{file}:{line}:{column}: ");
    assert!(
        msg.contains(&prefix),
        "{file}: expected {prefix:?} in {msg:?}"
    );
    for w in words {
        assert!(msg.contains(w), "{file}: expected {w:?} in {msg:?}");
    }
}

#[test]
fn policy_check_reports_each_error_at_its_line_and_column() {
    for (name, line, column, words) in BAD_POLICIES {
        let file = format!("tests/fixtures/{name}");
        let r = run_here(&["policy", "check", &file]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{name}: {}", r.stdout);
        assert_policy_error(&r, &file, *line, *column, words);
    }
}

#[test]
fn replay_refuses_a_bad_policy_before_reading_any_packet() {
    for (name, line, column, words) in BAD_POLICIES {
        let file = format!("tests/fixtures/{name}");
        let r = run_here(&[
            "replay",
            "examples/demo.pcap",
            "--policy",
            &file,
            "--json",
            "-",
        ]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(
            r.stdout.is_empty(),
            "{name}: no JSON expected: {}",
            r.stdout
        );
        assert_policy_error(&r, &file, *line, *column, words);
        // The policy is checked before the capture is even opened: a missing capture does not
        // change the outcome (it would be exit 3).
        let r = run_here(&["replay", "no-such-capture.pcap", "--policy", &file]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert_policy_error(&r, &file, *line, *column, words);
    }
}

#[test]
fn a_good_policy_checks_ok_with_a_description() {
    let r = run_here(&["policy", "check", "examples/policy.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "examples/policy.toml: ok: policy \"dut-lab\", 4 device(s), 23 rule(s)\n"
    );
    let r = run_here(&["policy", "check", "tests/fixtures/lab.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(": ok: policy \"lab-fixture\""),
        "{}",
        r.stdout
    );
}

#[test]
fn the_default_policy_printed_is_accepted_by_policy_check() {
    let r = run(&["policy", "default"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[[rules]]"), "{}", r.stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("default.toml");
    std::fs::write(&file, &r.stdout).unwrap();
    let r = run(&["policy".as_ref(), "check".as_ref(), file.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(": ok: policy \"embedded-default\", 0 device(s), 1 rule(s)"),
        "{}",
        r.stdout
    );
}

#[test]
fn policy_check_of_a_missing_file_is_exit_2() {
    let r = run_here(&["policy", "check", "tests/fixtures/no-such-policy.toml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        error_line(&r).contains("tests/fixtures/no-such-policy.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_command_line_rules_name_the_option_and_item() {
    let cases: &[(&[&str], &str, &[&str])] = &[
        (
            &["--deny-country", "XX"],
            "--deny-country:1:1: ",
            &["unknown country \"XX\""],
        ),
        (
            &["--deny-country", "CN,UK"],
            "--deny-country:1:2: ",
            &["unknown country \"UK\"", "did you mean \"GB\""],
        ),
        (
            &["--allow-country", "EU,Chna"],
            "--allow-country:1:2: ",
            &["unknown country \"Chna\"", "did you mean \"CN\""],
        ),
        (
            &["--home", "XX"],
            "--home:1:1: ",
            &["unknown country \"XX\""],
        ),
    ];
    for (flags, prefix, words) in cases {
        let mut args = vec!["replay", "examples/demo.pcap", "--json", "-"];
        args.extend_from_slice(flags);
        let r = run_here(&args);
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{flags:?}: {}", r.stdout);
        let msg = error_line(&r);
        assert!(msg.contains(prefix), "{flags:?}: {msg}");
        for w in *words {
            assert!(msg.contains(w), "{flags:?}: expected {w:?} in {msg}");
        }
    }
    // A group defined in the policy file is usable in a one-liner.
    let r = run_here(&[
        "replay",
        "examples/demo.pcap",
        "--policy",
        "examples/policy.toml",
        "--deny-country",
        "benelux",
        "--events",
        "summary",
        "--json",
        "-",
        "--no-terminal",
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    assert_eq!(r.events("summary")[0]["policy"], "dut-lab");
}

#[test]
fn bad_option_values_are_usage_errors() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--fail-on", "bogus"], &["--fail-on", "bogus"]),
        (&["--events", "alerts"], &["--events", "alerts"]),
        (&["--idle-timeout", "0"], &["--idle-timeout"]),
        (&["--idle-timeout=-5"], &["--idle-timeout", "-5"]),
        (&["--idle-timeout", "NaN"], &["--idle-timeout", "NaN"]),
        (&["--color", "sometimes"], &["--color", "sometimes"]),
    ];
    for (flags, words) in cases {
        let mut args = vec!["replay", "examples/demo.pcap", "--json", "-"];
        args.extend_from_slice(flags);
        let r = run_here(&args);
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{flags:?}: {}", r.stdout);
        for w in *words {
            assert!(
                r.stderr.contains(w),
                "{flags:?}: expected {w:?} in {}",
                r.stderr
            );
        }
    }
    // No input at all.
    let r = run_here(&["replay"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("<FILE>"), "{}", r.stderr);
}

#[test]
fn the_fail_on_error_lists_every_accepted_value() {
    // `--help` documents "info, low, medium, high, critical, or never"; the error for a wrong
    // value should offer the same choices.
    let r = run_here(&["replay", "examples/demo.pcap", "--fail-on", "bogus"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for word in ["info", "low", "medium", "high", "critical", "never"] {
        assert!(r.stderr.contains(word), "expected {word:?} in {}", r.stderr);
    }
}

#[test]
fn lookup_refuses_what_is_not_an_address() {
    let r = run(&["lookup", "8.8.8.8", "not-an-ip"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Nothing is printed for the good address either: arguments are checked first.
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        error_line(&r).contains("\"not-an-ip\" is not an IPv4 or IPv6 address"),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------------------------------------------
// Captures

/// Writes the lab camera's session to a CN lab host (8 good frames) and then a record whose
/// header claims 200 captured bytes of which only 10 follow. Returns the damaged record's offset.
fn write_truncated_capture(path: &Path) -> u64 {
    let frames = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    write_pcap(path, LinkType::ETHERNET, &frames);
    let offset = std::fs::metadata(path).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    let ts = (T0 / 1_000_000_000) as u32 + 1;
    for field in [ts, 0u32, 200, 200] {
        f.write_all(&field.to_le_bytes()).unwrap();
    }
    f.write_all(&[0xab; 10]).unwrap();
    offset
}

#[test]
fn a_truncated_record_is_exit_3_and_what_came_before_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let offset = write_truncated_capture(&dir.path().join("truncated.pcap"));
    let lab = common::fixture("lab.toml");
    let r = run_with(
        &[
            "replay".as_ref(),
            "truncated.pcap".as_ref(),
            "--policy".as_ref(),
            lab.as_os_str(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("truncated.pcap"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("byte offset {offset}")),
        "offset {offset} expected in {}",
        r.stderr
    );
    let alerts = r.events("alert");
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    assert_eq!(alerts[0]["rule"]["id"], "no-cn");
    assert_eq!(alerts[0]["remote"]["ip"], "198.18.1.10");
    assert_eq!(alerts[0]["source"]["name"], "truncated.pcap");
    let events = r.json();
    let summary = events.last().unwrap();
    assert_eq!(summary["event_type"], "summary");
    assert_eq!(summary["inputs"][0]["name"], "truncated.pcap");
    assert_eq!(summary["inputs"][0]["frames"], 8);
    let error = summary["inputs"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "truncated.pcap: damaged at byte offset {offset}: "
        )),
        "{error}"
    );
    assert_eq!(summary["counters"]["frames"], 8);
    assert_eq!(summary["alerts"]["no-cn"]["alerts"], 1);
    golden("truncated_record", &normalise(events));
}

#[test]
fn an_empty_file_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pcap"), b"").unwrap();
    let r = run_with(
        &["replay", "empty.pcap", "--json", "-", "--no-terminal"],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("empty.pcap: damaged at byte offset 0: file is empty"),
        "{}",
        r.stderr
    );
    let summary = r.events("summary").pop().expect("a summary");
    assert_eq!(summary["inputs"][0]["frames"], 0);
    assert!(
        summary["inputs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("file is empty")
    );
    assert_eq!(summary["counters"]["frames"], 0);
}

#[test]
fn the_summary_of_an_empty_capture_leaves_unknown_times_out() {
    // docs/json-format.md: "a field whose value is unknown is left out (never null ...)".
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pcap"), b"").unwrap();
    let r = run_with(
        &["replay", "empty.pcap", "--json", "-", "--no-terminal"],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let summary = r.events("summary").pop().expect("a summary");
    assert_eq!(null_fields(&summary), Vec::<String>::new(), "{summary}");
}

#[test]
fn a_text_file_named_explicitly_is_not_a_pcap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello, these are notes\n").unwrap();
    let r = run_with(
        &["replay", "notes.txt", "--json", "-"],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let msg = error_line(&r);
    assert!(
        msg.contains("notes.txt: not a pcap, pcapng or gzip file (it starts with 68 65 6c 6c)"),
        "{msg}"
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn a_nonexistent_capture_is_exit_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_with(
        &["replay", "missing.pcap", "--json", "-"],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(error_line(&r).contains("missing.pcap: "), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn shared_damaged_captures_report_the_exact_byte_offset() {
    let Some(shared) = common::shared() else {
        return;
    };
    for (name, offset, frames) in [
        ("sv_bug-6875-01_fuzz.pcap", 228, 1),
        ("ndpi_fuzz-2021-10-13_truncated.pcap", 24, 0),
    ] {
        let r = run_with(
            &["replay", name, "--json", "-", "--no-terminal"],
            Some(&shared.join("pcaps")),
            None,
            &[],
        );
        assert_eq!(r.code, 3, "{name}: {}", r.stderr);
        let expected = format!("{name}: damaged at byte offset {offset}: ");
        assert!(r.stderr.contains(&expected), "{name}: {}", r.stderr);
        let summary = r.events("summary").pop().expect("a summary");
        assert_eq!(summary["inputs"][0]["frames"], frames, "{name}");
        assert!(
            summary["inputs"][0]["error"]
                .as_str()
                .unwrap()
                .starts_with(&expected),
            "{name}: {summary}"
        );
    }
}

#[test]
fn logs_written_to_a_pipe_have_no_ansi_escapes() {
    // Standard error is a pipe here (as in CI logs): the error log line must be plain text, as
    // the terminal view is when it is not on a terminal.
    let dir = tempfile::tempdir().unwrap();
    write_truncated_capture(&dir.path().join("truncated.pcap"));
    let r = run_with(
        &["replay", "truncated.pcap", "--no-terminal"],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("byte offset"), "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "ANSI escapes in {:?}", r.stderr);
}

#[test]
fn a_gzip_stream_cut_short_is_exit_3_after_the_frames_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    // Two sessions to CN hosts, 20 s apart, with incompressible payloads so the cut falls
    // between them.
    let mut frames = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    frames.extend(tcp_session(
        "192.168.1.50:50001",
        "198.18.1.11:443",
        T0 + 20_000_000_000,
    ));
    let mut noise = 0x1234_5678u32;
    for (_, f) in &mut frames {
        // Overwrite payload bytes past the headers (Ethernet 14 + IPv4 20 + TCP 20).
        for b in f.iter_mut().skip(54) {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            *b = noise as u8;
        }
    }
    let plain = dir.path().join("plain.pcap");
    write_pcap(&plain, LinkType::ETHERNET, &frames);
    let bytes = std::fs::read(&plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(dir.path().join("cut.pcap.gz"), &gz[..gz.len() * 3 / 4]).unwrap();
    let lab = common::fixture("lab.toml");
    let r = run_with(
        &[
            "replay".as_ref(),
            "cut.pcap.gz".as_ref(),
            "--policy".as_ref(),
            lab.as_os_str(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("cut.pcap.gz: damaged at byte offset"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("the gzip stream is damaged or cut short"),
        "{}",
        r.stderr
    );
    let summary = r.events("summary").pop().expect("a summary");
    let frames_read = summary["inputs"][0]["frames"].as_u64().unwrap();
    assert!(
        (8..16).contains(&frames_read),
        "the first session is read, not all: {summary}"
    );
    let alerts = r.events("alert");
    assert!(!alerts.is_empty(), "{}", r.stdout);
    assert_eq!(alerts[0]["remote"]["ip"], "198.18.1.10");
}

#[test]
fn damage_in_the_second_input_keeps_everything_from_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let good = tcp_session("192.168.1.50:50000", "198.18.1.10:443", T0);
    write_pcap(&dir.path().join("good.pcap"), LinkType::ETHERNET, &good);
    let offset = write_truncated_capture(&dir.path().join("bad.pcap"));
    let r = run_with(
        &[
            "replay",
            "good.pcap",
            "bad.pcap",
            "--deny-country",
            "CN",
            "--json",
            "-",
            "--no-terminal",
        ],
        Some(dir.path()),
        None,
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("bad.pcap: damaged at byte offset {offset}")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("good.pcap"), "{}", r.stderr);
    let summary = r.events("summary").pop().expect("a summary");
    let inputs = summary["inputs"].as_array().unwrap();
    assert_eq!(inputs[0]["name"], "good.pcap");
    assert_eq!(inputs[0]["frames"], 8);
    assert!(inputs[0].get("error").is_none(), "{summary}");
    assert_eq!(inputs[1]["name"], "bad.pcap");
    assert_eq!(inputs[1]["frames"], 8);
    assert!(inputs[1]["error"].is_string(), "{summary}");
    assert_eq!(summary["counters"]["frames"], 16);
}

#[test]
fn empty_or_foreign_standard_input_is_exit_3() {
    let r = run_with(
        &["replay", "-", "--json", "-", "--no-terminal"],
        None,
        Some(b""),
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("-: damaged at byte offset 0: file is empty"),
        "{}",
        r.stderr
    );
    let r = run_with(
        &["replay", "-", "--json", "-"],
        None,
        Some(b"hello, this is not a capture\n"),
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        error_line(&r).contains("-: not a pcap, pcapng or gzip file"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}
