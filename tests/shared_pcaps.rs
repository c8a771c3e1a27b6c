//! Every capture in ../shared/pcaps goes through the real binary: no panic, the documented exit
//! code, valid JSON lines, and alerts for exactly the egress flows the database places in CN.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::run;
use egresswatch::geoip::Resolver;
use serde_json::Value;

/// Captures whose damage the reader must report (exit code 3), with the byte offset named.
const DAMAGED: &[&str] = &[
    "ndpi_fuzz-2021-10-13_truncated.pcap",
    "sv_bug-6875-01_fuzz.pcap",
];

#[test]
fn every_shared_capture_is_processed_with_cn_alerts_exactly_where_the_database_says_cn() {
    let mut resolver = Resolver::embedded().unwrap();
    let files = common::shared_captures();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let r = run(&[
            "replay".as_ref(),
            file.as_os_str(),
            "--deny-country".as_ref(),
            "CN".as_ref(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ]);
        let events = r.json();
        let alerts: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "alert")
            .collect();
        let flows: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "flow")
            .collect();
        let summary = events.last().unwrap_or_else(|| panic!("{name}: no output"));
        assert_eq!(
            summary["event_type"], "summary",
            "{name}: the last line is the summary"
        );
        if DAMAGED.contains(&name.as_str()) {
            assert_eq!(r.code, 3, "{name}: damaged capture: {}", r.stderr);
            assert!(r.stderr.contains("byte offset"), "{name}: {}", r.stderr);
            assert!(
                r.stderr.contains(&name),
                "{name}: error names the file: {}",
                r.stderr
            );
        } else {
            let expected = if alerts.is_empty() { 0 } else { 1 };
            assert_eq!(r.code, expected, "{name}: {}", r.stderr);
        }
        // Built-in re-routing alerts (a name served from CN and elsewhere) may name any country.
        for a in alerts
            .iter()
            .filter(|a| a["rule"]["id"] == "cli-deny-country")
        {
            assert_eq!(a["remote"]["country"], "CN", "{name}: {a}");
        }
        // A flow alerted exactly when the device sent to a remote the database places in CN.
        let mut alerted = BTreeSet::new();
        for f in &flows {
            let Some(remote) = f["remote"]["ip"].as_str() else {
                // A proxied target named only by a name the capture never resolved: no
                // address, hence no country and no country alert.
                assert!(f["via"]["kind"].is_string(), "{name}: flow {f}");
                assert!(f["remote"]["country"].is_null(), "{name}: flow {f}");
                assert!(f["remote"]["hostname"].is_string(), "{name}: flow {f}");
                continue;
            };
            let remote: IpAddr = remote.parse().unwrap();
            let db_country = resolver.lookup(remote).country.map(|c| c.to_string());
            assert_eq!(
                f["remote"]["country"].as_str().map(str::to_owned),
                db_country,
                "{name}: country of {remote}"
            );
            let egress_to_cn = db_country.as_deref() == Some("CN")
                && f["packets_out"].as_u64().unwrap() > 0
                && f["internal"] == false;
            let fired = f["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|id| id == "cli-deny-country"));
            assert_eq!(fired, egress_to_cn, "{name}: flow {f}");
            if fired {
                alerted.insert(f["flow_id"].as_str().unwrap().to_owned());
            }
        }
        for a in alerts
            .iter()
            .filter(|a| a["rule"]["id"] == "cli-deny-country")
        {
            assert!(
                alerted.contains(a["flow_id"].as_str().unwrap()),
                "{name}: {a}"
            );
        }
    }
}

#[test]
fn known_cn_destinations_are_reported() {
    let Some(shared) = common::shared() else {
        return;
    };
    let mut resolver = Resolver::embedded().unwrap();
    for (file, remote) in [
        ("ndpi_wechat.pcap", "203.205.151.162"),
        ("ndpi_xiaomi.pcap", "203.107.1.65"),
    ] {
        let ip: IpAddr = remote.parse().unwrap();
        let in_cn = resolver
            .lookup(ip)
            .country
            .is_some_and(|c| c.as_str() == "CN");
        let r = run(&[
            "replay".as_ref(),
            shared.join("pcaps").join(file).as_os_str(),
            "--deny-country".as_ref(),
            "CN".as_ref(),
            "--json".as_ref(),
            "-".as_ref(),
            "--no-terminal".as_ref(),
        ]);
        let hit = r
            .events("alert")
            .iter()
            .any(|a| a["remote"]["ip"] == remote);
        assert_eq!(hit, in_cn, "{file}: alert for {remote}");
        assert!(in_cn, "the embedded database should place {remote} in CN");
    }
}

#[test]
fn unsupported_link_types_are_counted_not_fatal() {
    let Some(shared) = common::shared() else {
        return;
    };
    let r = run(&[
        "replay".as_ref(),
        shared
            .join("pcaps/tcpdump_unsupported-link-type-160.pcap")
            .as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert_eq!(r.code, 0);
    let s = &r.events("summary")[0];
    assert_eq!(s["counters"]["unsupported_link_types"]["160"], 1);
}

#[test]
fn several_inputs_and_a_directory_run_as_one() {
    let Some(shared) = common::shared() else {
        return;
    };
    let p = shared.join("pcaps");
    let r = run(&[
        "replay".as_ref(),
        p.join("ndpi_dns.pcap").as_os_str(),
        p.join("zeek_pcapng-multi-interface.pcapng").as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    let s = &r.events("summary")[0];
    assert_eq!(s["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(s["counters"]["frames"], 5 + 6);
    // The whole directory: damaged files are reported, the rest processed.
    let r = run(&[
        "replay".as_ref(),
        p.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let s = &r.events("summary")[0];
    assert!(s["inputs"].as_array().unwrap().len() >= 40);
    assert!(s["counters"]["frames"].as_u64().unwrap() > 90_000);
}
