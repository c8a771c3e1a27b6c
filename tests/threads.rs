//! `--threads`: reading ahead on a second thread changes nothing in the output, damage included.

mod common;

use std::path::Path;

use common::run;

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
