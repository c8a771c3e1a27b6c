//! Shared test support: run the real binary, parse its JSON lines, compare with golden files,
//! and write captures for exact scenarios.

#![allow(dead_code)]

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use egresswatch::capture::Endian;
use egresswatch::capture::LinkType;
use egresswatch::capture::write::{PcapWriter, TsResolution};
use serde_json::Value;

/// The shared captures and databases beside the repository, if present.
pub fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if p.join("pcaps").is_dir() {
        Some(p)
    } else {
        eprintln!("note: ../shared is missing; skipping the tests that need it");
        None
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// What a run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Every stdout line parsed as JSON; fails the test on a line that is not one JSON object.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"));
                assert!(v.is_object(), "not an object: {l}");
                v
            })
            .collect()
    }

    pub fn events(&self, event_type: &str) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["event_type"] == event_type)
            .collect()
    }
}

/// Runs `egresswatch ARGS` with no terminal view noise in the way.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_egresswatch"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run egresswatch");
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        101,
        "egresswatch panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        code,
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Removes what legitimately changes between builds (tool version, database build dates).
pub fn normalise(mut events: Vec<Value>) -> Vec<Value> {
    for e in &mut events {
        if let Some(obj) = e.as_object_mut() {
            if obj.contains_key("tool") {
                obj.insert("tool".into(), Value::String("egresswatch VERSION".into()));
            }
            if let Some(dbs) = obj.get_mut("databases").and_then(Value::as_array_mut) {
                for db in dbs {
                    if let Some(db) = db.as_object_mut() {
                        db.retain(|k, _| k == "name" || k == "database_type");
                    }
                }
            }
        }
    }
    events
}

/// Compares events with tests/golden/NAME.jsonl; `EGRESSWATCH_BLESS=1` rewrites the file.
pub fn golden(name: &str, events: &[Value]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.jsonl"));
    let text: String = events
        .iter()
        .map(|v| format!("{}\n", serde_json::to_string(v).unwrap()))
        .collect();
    if std::env::var_os("EGRESSWATCH_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with EGRESSWATCH_BLESS=1 to create it, then review it",
            path.display()
        )
    });
    let expected: Vec<Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if expected != events {
        let mut report = String::new();
        for i in 0..expected.len().max(events.len()) {
            let (e, g) = (expected.get(i), events.get(i));
            if e != g {
                report.push_str(&format!(
                    "line {}:\n  expected {}\n  got      {}\n",
                    i + 1,
                    e.map(Value::to_string).unwrap_or_default(),
                    g.map(Value::to_string).unwrap_or_default()
                ));
            }
        }
        panic!(
            "output differs from {} (EGRESSWATCH_BLESS=1 rewrites it):\n{report}",
            path.display()
        );
    }
}

/// Writes a classic pcap (little-endian, microseconds) of `frames` (time in ns, bytes).
pub fn write_pcap(path: &Path, link_type: LinkType, frames: &[(i64, Vec<u8>)]) {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut w = PcapWriter::new(file, link_type, TsResolution::Micro, Endian::Little).unwrap();
    for (ts, data) in frames {
        w.write_frame(*ts, data, data.len() as u32).unwrap();
    }
    let mut inner = w.into_inner();
    std::io::Write::flush(&mut inner).unwrap();
}
