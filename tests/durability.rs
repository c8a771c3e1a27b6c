//! Output durability: whole lines only, even under kill -9; a closed pipe is not a crash; a full
//! disk is a clear error with exit code 2.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType};
use egresswatch::craft;

const T0: i64 = 1_768_471_200_000_000_000;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egresswatch"))
}

/// A pcap of `n` one-packet UDP flows, one per millisecond, as bytes.
fn many_flows(n: u32) -> Vec<u8> {
    let mut w = PcapWriter::new(
        Vec::new(),
        LinkType::RAW,
        TsResolution::Micro,
        Endian::Little,
    )
    .unwrap();
    for i in 0..n {
        let src: SocketAddr = format!(
            "192.168.{}.{}:{}",
            (i >> 8) & 0xff,
            i & 0xff,
            1024 + (i % 60000)
        )
        .parse()
        .unwrap();
        let dst: SocketAddr = "198.18.1.1:9".parse().unwrap();
        let p = craft::udp(src, dst, b"x");
        w.write_frame(T0 + i64::from(i) * 1_000_000, &p, p.len() as u32)
            .unwrap();
    }
    w.into_inner()
}

fn assert_whole_lines(text: &str) {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line: {:?}",
        &text[text.len().saturating_sub(80)..]
    );
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object());
    }
}

#[test]
fn kill_9_leaves_only_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let capture = many_flows(60_000);
    let mut child = bin()
        .args([
            "replay",
            "-",
            "--idle-timeout",
            "0.001",
            "--no-terminal",
            "--json",
        ])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Feed most of the capture, keep the pipe open so the run cannot finish, then wait for
    // output to reach the file and kill the process without warning.
    stdin.write_all(&capture[..capture.len() * 9 / 10]).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.is_empty(),
        "the run wrote nothing before it was killed"
    );
    assert_whole_lines(&text);
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child = bin()
        .args([
            "replay",
            "examples/demo.pcap",
            "--json",
            "-",
            "--events",
            "flow,alert,summary",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader went away (like `| head -1`).
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&first).is_ok());
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}: {err}");
}

#[test]
fn a_full_disk_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(dir.path())
        .status();
    if !matches!(mount, Ok(s) if s.success()) {
        eprintln!("note: cannot mount a tmpfs here (not root?); skipping the full-disk test");
        return;
    }
    let input_dir = tempfile::tempdir().unwrap();
    let input = input_dir.path().join("flows.pcap");
    std::fs::write(&input, many_flows(2_000)).unwrap();
    let out = dir.path().join("events.jsonl");
    let r = bin()
        .args(["replay", "--no-terminal", "--json"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(dir.path()).status();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("events.jsonl"), "{stderr}");
    assert!(stderr.to_lowercase().contains("no space"), "{stderr}");
}
