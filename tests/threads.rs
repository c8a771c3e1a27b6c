//! `--threads`: reading ahead on a second thread changes nothing in the output, damage included.

mod common;

use std::path::Path;

use common::lab::{MS, T0, eth, sa};
use common::run;
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, tcp_flags::*};

/// stdout, stderr and exit code of a replay of `inputs` with `--threads n`.
fn replay(inputs: &[&Path], n: &str) -> (String, String, i32) {
    let mut args: Vec<&str> = vec!["replay"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend([
        "--json",
        "-",
        "--events",
        "alert,flow,dns,summary",
        "--no-terminal",
        "--threads",
        n,
    ]);
    let r = run(&args);
    (r.stdout, r.stderr, r.code)
}

#[test]
fn one_or_two_threads_give_the_same_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("examples/demo.pcap");
    let mut sets: Vec<Vec<&Path>> = vec![vec![&demo]];
    let shared = common::shared();
    let extra: Vec<_> = shared
        .iter()
        .flat_map(|s| {
            [
                "ndpi_wechat.pcap",
                "ndpi_dns.pcap",
                "zeek_pcapng-multi-interface.pcapng",
                "sv_bug-6875-01_fuzz.pcap",
                "ndpi_fuzz-2021-10-13_truncated.pcap",
            ]
            .map(|n| s.join("pcaps").join(n))
        })
        .filter(|p| p.exists())
        .collect();
    if !extra.is_empty() {
        // Several inputs merged, two of them damaged midway.
        sets.push(extra.iter().map(|p| p.as_path()).collect());
        sets.push(vec![&demo, extra[0].as_path()]);
        for p in &extra {
            sets.push(vec![p.as_path()]);
        }
    }
    for set in &sets {
        let one = replay(set, "1");
        let two = replay(set, "2");
        assert_eq!(one.2, two.2, "{set:?}: {}", two.1);
        assert_eq!(one.0, two.0, "{set:?}");
        assert!(!one.0.is_empty(), "{set:?}: {}", one.1);
    }
}

#[test]
fn threads_out_of_range_is_a_usage_error() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.pcap");
    let r = run(&["replay", demo.to_str().unwrap(), "--threads", "3"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--threads"), "{}", r.stderr);
}

#[test]
fn two_threads_are_refused_for_standard_input() {
    let r = common::run_with(&["replay", "-", "--threads", "2"], None, Some(b""), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--threads 2 reads ahead only from files"),
        "{}",
        r.stderr
    );
}

/// A capture whose flows are all still open at its end, more of them than the engine ends in
/// one part (1,024), so that `--threads 2` formats their records on a second thread: UDP flows
/// to lab hosts, and every fourth a TLS flow whose handshake never completes, which the last
/// evaluation at the end finds unencrypted (plaintext-foreign alerts among the records).
fn many_open_flows(dir: &Path) -> std::path::PathBuf {
    let mut frames = Vec::new();
    for i in 0..3000u32 {
        let t = T0 + i64::from(i) * MS;
        let dev = sa(&format!("192.168.1.50:{}", 20000 + i));
        if i % 4 == 0 {
            // Each to its own address, so that no earlier alert de-duplicates the last one.
            let k = i / 4;
            let remote = sa(&format!("198.19.{}.{}:443", k / 250, 1 + k % 250));
            let hello = craft::tls_client_hello(&format!("h{i}.lab.example"), 0);
            frames.push((t, eth(true, craft::tcp(dev, remote, SYN, b""))));
            frames.push((t + 1, eth(false, craft::tcp(remote, dev, SYN | ACK, b""))));
            frames.push((t + 2, eth(true, craft::tcp(dev, remote, ACK, b""))));
            frames.push((t + 3, eth(true, craft::tcp(dev, remote, PSH | ACK, &hello))));
        } else {
            let remote = sa(&format!(
                "198.18.{}.{}:{}",
                1 + i % 3,
                1 + (i / 3) % 250,
                1000 + i
            ));
            frames.push((t, eth(true, craft::udp(dev, remote, &[0x42; 100]))));
            frames.push((t + 1, eth(false, craft::udp(remote, dev, &[0x24; 60]))));
        }
    }
    let path = dir.join("open-flows.pcap");
    common::write_pcap(&path, LinkType::ETHERNET, &frames);
    path
}

#[test]
fn flows_ended_at_the_end_are_written_the_same_on_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cap = many_open_flows(dir.path());
    // Lab hosts placed by overrides, and no rule of its own: the built-in plaintext-foreign
    // rule (on with a home set) decides at the last evaluation.
    let policy = dir.path().join("plaintext.toml");
    std::fs::write(
        &policy,
        "version = 1\nhome = [\"BE\"]\n\
         [[geoip_overrides]]\ncidr = \"198.18.0.0/15\"\ncountry = \"US\"\n",
    )
    .unwrap();
    let args = |json: &str, threads: &str| -> Vec<String> {
        [
            "replay",
            cap.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--json",
            json,
            "--events",
            "all",
            "--no-terminal",
            "--threads",
            threads,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let one = run(&args("-", "1"));
    let two = run(&args("-", "2"));
    assert_eq!(one.code, 1, "{}", one.stderr);
    assert_eq!(two.code, one.code, "{}", two.stderr);
    assert!(
        one.stdout == two.stdout,
        "one and two threads wrote different output"
    );
    // What the second thread formatted: every flow's record, with the alerts raised at the end
    // between them.
    let events = one.json();
    let flows = common::of_type(&events, "flow");
    assert_eq!(flows.len(), 3000);
    let first_flow = events
        .iter()
        .position(|e| e["event_type"] == "flow")
        .unwrap();
    let late = events[first_flow..]
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["rule"]["id"] == "plaintext-foreign")
        .count();
    assert!(
        late >= 100,
        "{late} plaintext-foreign alerts among the flow records"
    );

    // A sink that fails while packets are still read (the alerts fill its buffer before the
    // end) fails the same way on two threads; the next test fails it at the end.
    if Path::new("/dev/full").exists() {
        let one = run(&args("/dev/full", "1"));
        let two = run(&args("/dev/full", "2"));
        assert_eq!(one.code, 2, "{}", one.stderr);
        assert_eq!((two.code, &two.stderr), (one.code, &one.stderr));
        assert!(one.stderr.contains("/dev/full"), "{}", one.stderr);
    }
}

/// A sink that fails while the flows left at the end are written (`--events flow`: nothing is
/// written before the end, so the first failing write is in `Engine::finish`) fails the same way
/// on two threads. The `/dev/full` check above fails earlier: ~450 KB of alerts fill the 64 KiB
/// buffer while packets are still read, and replay returns before `Engine::finish`.
#[test]
fn a_sink_failing_at_the_end_fails_the_same_on_two_threads() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cap = many_open_flows(dir.path());
    let args = |threads: &str| {
        run(&[
            "replay",
            cap.to_str().unwrap(),
            "--json",
            "/dev/full",
            "--events",
            "flow",
            "--no-terminal",
            "--threads",
            threads,
        ])
    };
    let one = args("1");
    let two = args("2");
    assert_eq!(one.code, 2, "{}", one.stderr);
    assert_eq!((two.code, &two.stderr), (one.code, &one.stderr));
    assert!(one.stderr.contains("/dev/full"), "{}", one.stderr);
}
