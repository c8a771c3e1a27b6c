//! The embedded ASN and registered-country databases, lab overlays and database age, through the
//! binary: `lookup`, `geoip info` and `replay`.

mod common;

use std::path::Path;

use common::run;
use egresswatch::geoip::writer::{IpVersion, MmdbWriter, Record};

/// One JSON answer of `egresswatch lookup ARGS`.
fn lookup(args: &[&str]) -> serde_json::Value {
    let r = run(args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json().remove(0)
}

#[test]
fn lookup_names_alibabas_frankfurt_server_from_the_embedded_databases() {
    let a = lookup(&["lookup", "8.209.73.197"]);
    assert_eq!(a["asn"], 45_102);
    assert_eq!(a["as_org"], "Alibaba (US) Technology Co., Ltd.");
    assert_eq!(a["asn_source"], "embedded:asn.mmdb");
    // Where it stands (DB-IP geolocation: Frankfurt), whose it is (a US entity of a group
    // headquartered in China), and where its block is registered (Singapore): three answers.
    assert_eq!(a["country"], "DE");
    assert_eq!(a["country_source"], "embedded:dbip-country.mmdb");
    assert_eq!(a["registered_country"], "SG");
    assert_eq!(a["registered_country_source"], "embedded:asn-country.mmdb");
}

#[test]
fn overlay_wins_over_databases_and_policy_overrides_win_over_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("lab.csv");
    std::fs::write(
        &overlay,
        "cidr,country,asn,org,label\n8.209.73.0/24,DE,64512,Lab proxy,frankfurt-mitm\n\
         203.0.113.0/24,NL,,,\n",
    )
    .unwrap();
    let overlay = overlay.to_str().unwrap();
    let a = lookup(&["lookup", "--geoip-overlay", overlay, "8.209.73.197"]);
    let source = format!("overlay:{overlay}");
    assert_eq!(a["country"], "DE");
    assert_eq!(
        (a["asn"].as_u64(), a["as_org"].as_str()),
        (Some(64_512), Some("Lab proxy"))
    );
    assert_eq!(
        (a["country_source"].as_str(), a["asn_source"].as_str()),
        (Some(&*source), Some(&*source))
    );
    assert_eq!(a["label"], "frankfurt-mitm");
    assert_eq!(a["registered_country_source"], "embedded:asn-country.mmdb");

    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "[[geoip_overrides]]\ncidr = \"8.209.73.197\"\ncountry = \"JP\"\n",
    )
    .unwrap();
    let a = lookup(&[
        "lookup",
        "--geoip-overlay",
        overlay,
        "--policy",
        policy.to_str().unwrap(),
        "8.209.73.197",
        "203.0.113.9",
    ]);
    assert_eq!(
        (a["country"].as_str(), a["country_source"].as_str()),
        (Some("JP"), Some("overrides"))
    );
    assert_eq!(a["asn_source"].as_str(), Some(&*source));

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "198.18.0.0/15,DE\n198.18.0.1/15,DE\n").unwrap();
    let r = run(&[
        "lookup",
        "--geoip-overlay",
        bad.to_str().unwrap(),
        "1.1.1.1",
    ]);
    assert_eq!(r.code, 2);
    let expected = format!(
        "{}:2: column 1: 198.18.0.1/15 has bits set after the prefix",
        bad.display()
    );
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
}

/// A one-network country database built `days_old` days ago.
fn old_database(dir: &Path, days_old: u64) -> String {
    let mut writer = MmdbWriter::new("lab-Country", IpVersion::V6);
    let now = egresswatch::geoip::now_epoch();
    writer.build_epoch(now - days_old * 86_400);
    let de = Record::map([("iso_code", Record::string("DE"))]);
    writer
        .insert(
            "198.51.100.0/24".parse().unwrap(),
            Record::map([("country", de)]),
        )
        .unwrap();
    writer
        .insert(
            "2001:db8::/32".parse().unwrap(),
            Record::map([("country_code", Record::string("FR"))]),
        )
        .unwrap();
    let path = dir.join(format!("old-{days_old}.mmdb"));
    std::fs::write(&path, writer.build().unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn old_databases_are_reported_by_info_and_at_replay_start() {
    let dir = tempfile::tempdir().unwrap();
    let old = old_database(dir.path(), 400);
    let fresh = old_database(dir.path(), 3);

    let r = run(&["geoip", "info", "--geoip-db", &old, "--geoip-db", &fresh]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (old_part, fresh_part) = r.stdout.split_at(r.stdout.find(&fresh).unwrap());
    assert!(old_part.contains("(400 days ago)"), "{}", r.stdout);
    assert!(old_part.contains("networks:      2\n"), "{}", r.stdout);
    assert!(
        old_part.contains("warning:       built more than 180 days ago"),
        "{}",
        r.stdout
    );
    assert!(!fresh_part.contains("warning"), "{}", r.stdout);

    let r = run(&[
        "geoip",
        "info",
        "--geoip-db",
        &old,
        "--max-age-days",
        "500",
        "--json",
    ]);
    let line = &r.json()[0];
    assert_eq!(
        (line["age_days"].as_u64(), line["stale"].as_bool()),
        (Some(400), Some(false))
    );
    assert_eq!(line["networks"], 2);

    // At replay start: a warning in the log, for the old database only.
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.pcap");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            capture.to_str().unwrap(),
            "--no-terminal",
            "--fail-on",
            "never",
            "--geoip-db",
            &old,
            "--geoip-db",
            &fresh,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let r = replay(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0].contains(&format!(
            "GeoIP database {old} was built 400 days ago (more than 180 days)"
        )),
        "{}",
        r.stderr
    );
    let r = replay(&["--geoip-max-age-days", "1000"]);
    assert!(!r.stderr.contains("WARN"), "{}", r.stderr);

    // The embedded databases report their record counts.
    let r = run(&["geoip", "info", "--json"]);
    let lines = r.json();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(line["networks"].as_u64().unwrap() > 100_000, "{line}");
    }
}
