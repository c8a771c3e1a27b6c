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

/// A capture of the shared set by file name; `None` when ../shared is missing.
pub fn shared_capture(name: &str) -> Option<PathBuf> {
    Some(shared()?.join("pcaps").join(name))
}

/// Replays one capture with the embedded defaults, flow records only, whatever its exit code.
pub fn flows_of(path: &Path) -> Run {
    run(&[
        "replay".as_ref(),
        path.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
        "--events".as_ref(),
        "flow".as_ref(),
    ])
}

/// [`flows_of`] for a capture that must replay without damage.
pub fn replay_flows(path: &Path) -> Run {
    let r = flows_of(path);
    assert_eq!(r.code, 0, "{}: {}", path.display(), r.stderr);
    r
}

/// The events of one `event_type`.
pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// Inputs named by temporary paths, reduced to their file names (`source.name`,
/// `inputs[].name`), so that events compare with goldens.
pub fn file_names(events: &mut [Value]) {
    let file_name = |v: &mut Value| {
        let name = Path::new(v.as_str().unwrap_or_default())
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        *v = Value::String(name);
    };
    for e in events {
        if let Some(s) = e.pointer_mut("/source/name") {
            file_name(s);
        }
        if let Some(inputs) = e.get_mut("inputs").and_then(|v| v.as_array_mut()) {
            for n in inputs.iter_mut().filter_map(|i| i.get_mut("name")) {
                file_name(n);
            }
        }
    }
}

/// The capture files of the shared set (pcap, pcapng, gzip), sorted by name; none without it.
pub fn shared_captures() -> Vec<PathBuf> {
    let Some(shared) = shared() else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("pcaps"))
        .expect("the shared pcaps directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "gz")
        })
        .collect();
    files.sort();
    files
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

// ---------------------------------------------------------------------------------------------
// Added for tests/cli_errors.rs and tests/cli_outputs.rs: runs with a working directory, standard
// input or environment, and the frames of a lab device talking to lab hosts.

/// Runs `egresswatch ARGS` like [`run`], optionally in `cwd` (so that inputs named relatively give
/// stable names in the output), with `stdin` piped in (else no standard input) and extra `env`.
pub fn run_with<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    cwd: Option<&Path>,
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_egresswatch"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run egresswatch");
    // Feed standard input from another thread so that a full stdout pipe cannot deadlock us.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                // The child may stop reading early (an error): a broken pipe here is fine.
                let _ = std::io::Write::write_all(&mut pipe, &data);
            }))
        }
        _ => None,
    };
    let out = child.wait_with_output().expect("wait for egresswatch");
    if let Some(f) = feeder {
        f.join().unwrap();
    }
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

/// Every JSON path (like `/summary/first_packet`) whose value is `null`: the format leaves unknown
/// fields out instead (docs/json-format.md).
pub fn null_fields(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Null => out.push(at),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    walk(item, format!("{at}/{k}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// Lab frames: the camera of tests/fixtures/lab.toml (192.168.1.50, this MAC) and its gateway.
pub mod lab {
    use std::net::SocketAddr;

    use egresswatch::craft::{self, tcp_flags::*};
    use egresswatch::decode::Mac;

    pub const CAMERA: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x50]);
    pub const GATEWAY: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
    /// 2026-01-15T10:00:00Z in nanoseconds.
    pub const T0: i64 = 1_768_471_200_000_000_000;
    pub const MS: i64 = 1_000_000;

    pub fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// An Ethernet frame from the device side (`from_device`) or towards it.
    pub fn eth(from_device: bool, ip: Vec<u8>) -> Vec<u8> {
        if from_device {
            craft::ethernet(CAMERA, GATEWAY, &[], &ip)
        } else {
            craft::ethernet(GATEWAY, CAMERA, &[], &ip)
        }
    }

    /// A TCP connection from `dev` to `remote` starting at `t`: handshake, request, response, FIN
    /// exchange (8 frames).
    pub fn tcp_session(dev: &str, remote: &str, t: i64) -> Vec<(i64, Vec<u8>)> {
        let (d, r) = (sa(dev), sa(remote));
        vec![
            (t, eth(true, craft::tcp(d, r, SYN, b""))),
            (t + MS, eth(false, craft::tcp(r, d, SYN | ACK, b""))),
            (t + 2 * MS, eth(true, craft::tcp(d, r, ACK, b""))),
            (
                t + 3 * MS,
                eth(true, craft::tcp(d, r, PSH | ACK, &[0x16; 300])),
            ),
            (
                t + 40 * MS,
                eth(false, craft::tcp(r, d, PSH | ACK, &[0x17; 1200])),
            ),
            (t + 50 * MS, eth(true, craft::tcp(d, r, FIN | ACK, b""))),
            (t + 60 * MS, eth(false, craft::tcp(r, d, FIN | ACK, b""))),
            (t + 61 * MS, eth(true, craft::tcp(d, r, ACK, b""))),
        ]
    }
}
