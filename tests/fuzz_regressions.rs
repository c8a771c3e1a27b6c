//! Fuzzing's findings and the damage table of docs/robustness.md, kept as tests.
//!
//! - Every file under `tests/fuzz-regressions/TARGET/` goes through the same library calls as the
//!   fuzz target `TARGET` in fuzz/fuzz_targets/ (no libFuzzer needed): no panic, no hang.
//! - Each row of the damage table is run through the real binary: exit code and message fragment.
//! - A record claiming 1.4 GB is refused without allocating it (counting allocator; and the
//!   binary's peak RSS under /usr/bin/time where that exists).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::io::{Cursor, Read, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{Run, run_with};
use egresswatch::capture::{CaptureError, Frame, LinkType, RECORD_MAX_BYTES, Replay};
use egresswatch::decode::Decoder;
use egresswatch::names::{dns, http, quic, tls};
use flate2::Compression;
use flate2::write::GzEncoder;

// ------------------------------------------------------------------------------------------------
// A counting allocator: live and peak bytes of the current thread while it counts.

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn account(delta: i64) {
    // `try_with`: thread-locals may be gone while a thread exits.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = LIVE.try_with(|l| {
                let now = l.get() + delta;
                l.set(now);
                let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
            });
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; only thread-local counters
// (const-initialised, so touching them never allocates) are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (net of frees) on this thread while `f` ran.
fn peak_allocated<T>(f: impl FnOnce() -> T) -> (T, i64) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, PEAK.with(Cell::get))
}

// ------------------------------------------------------------------------------------------------
// Fuzz findings: each file replayed through its target's calls.

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// The files kept for one target (none is fine: the directory holds what fuzzing found).
fn regression_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = fs::read_dir(regressions_dir().join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Drains a replay the way the `capture_file` target does; returns frames and errors.
fn drain(mut replay: Replay) -> (u64, u32) {
    let (mut frames, mut errors) = (0u64, 0u32);
    loop {
        match replay.next_frame() {
            Ok(Some(f)) => {
                assert!(f.data.len() <= RECORD_MAX_BYTES);
                frames += 1;
            }
            Ok(None) => return (frames, errors),
            Err(_) => {
                errors += 1;
                assert!(errors <= 2, "an input reported damage twice");
            }
        }
    }
}

fn boxed(bytes: Vec<u8>, gzip: bool) -> Box<dyn Read + Send> {
    if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&bytes).unwrap();
        Box::new(Cursor::new(enc.finish().unwrap()))
    } else {
        Box::new(Cursor::new(bytes))
    }
}

/// The calls of the fuzz target `target` on `data` (fuzz/fuzz_targets/TARGET.rs, simplified: the
/// same parsers and inputs, without the harness's split and order choices).
fn exercise(target: &str, data: &[u8]) {
    match target {
        "capture_file" => {
            let Some((&flags, rest)) = data.split_first() else {
                return;
            };
            if let Ok(r) = Replay::from_reader("fuzz".into(), boxed(rest.to_vec(), flags & 1 != 0))
            {
                drain(r);
            }
        }
        "engine" => {
            if let Ok(r) = Replay::from_reader("fuzz".into(), boxed(data.to_vec(), false)) {
                drain(r);
            }
        }
        "decode" => {
            let Some((&pick, frame)) = data.split_first() else {
                return;
            };
            const LINKS: [u32; 11] = [1, 101, 113, 276, 0, 108, 228, 229, 12, 14, 160];
            let mut d = Decoder::new();
            let f = Frame {
                ts_ns: 0,
                link_type: LinkType(LINKS[usize::from(pick) % LINKS.len()]),
                data: frame,
                wire_len: frame.len() as u32,
                source: 0,
                index: 1,
            };
            let _ = d.decode(&f);
            let _ = d.decode(&f);
        }
        "dns" => {
            if let Ok(m) = dns::parse_message(data) {
                let _ = m.resolutions().count();
            }
            let mut r = dns::DnsTcpReassembler::new();
            for chunk in data.chunks(7) {
                r.push(chunk, |msg| {
                    let _ = dns::parse_message(msg);
                });
            }
        }
        "tls" => {
            let stream = data.get(7..).unwrap_or_default();
            let _ = tls::parse_client_hello(stream);
            let _ = tls::parse_server_hello(stream);
            let _ = tls::parse_dtls_client_hello(stream);
            let mut a = tls::TlsHelloAssembler::new();
            for (i, chunk) in stream.chunks(13).enumerate().rev() {
                let _ = a.push(1000u32.wrapping_add(13 * i as u32), chunk);
            }
        }
        "http" => {
            let _ = http::parse_request(data);
            let _ = http::parse_response_status(data);
        }
        "quic" => {
            let mut a = quic::QuicInitialAssembler::new();
            for d in data.get(1..).unwrap_or_default().chunks(1200) {
                let _ = a.push(d);
            }
        }
        "policy" => {
            let _ = egresswatch::policy::Policy::from_toml(&String::from_utf8_lossy(data), "f");
        }
        "geoip_open" => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fuzz.mmdb");
            fs::write(&path, data).unwrap();
            if let Ok(mut r) = egresswatch::geoip::Resolver::open(&[path]) {
                for a in ["1.1.1.1", "2001:4860:4860::8888"] {
                    let _ = r.lookup(a.parse::<IpAddr>().unwrap());
                }
            }
        }
        other => panic!("tests/fuzz-regressions/{other}: no such fuzz target"),
    }
}

#[test]
fn every_kept_fuzz_input_runs_through_its_target() {
    let Ok(rd) = fs::read_dir(regressions_dir()) else {
        return;
    };
    for entry in rd.flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        let target = entry.file_name().to_string_lossy().into_owned();
        for (path, bytes) in regression_inputs(&target) {
            eprintln!("{}", path.display());
            exercise(&target, &bytes);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Memory: a record that claims 1.4 GB.

const HUGE: u32 = 1_400_000_000;

/// A little-endian microsecond pcap with one good 60-byte Ethernet frame, then a record header
/// claiming `HUGE` bytes followed by a little data.
fn pcap_claiming_huge() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (caplen, data_len) in [(60u32, 60usize), (HUGE, 256)] {
        v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&caplen.to_le_bytes());
        v.extend_from_slice(&caplen.to_le_bytes());
        v.extend(std::iter::repeat_n(0xabu8, data_len));
    }
    v
}

/// A pcapng section with one interface, then an Enhanced Packet Block claiming `HUGE` bytes.
fn pcapng_claiming_huge() -> Vec<u8> {
    let mut v = Vec::new();
    // Section Header Block: type, length 28, byte-order magic, version 1.0, section length -1.
    for w in [0x0a0d_0d0au32, 28, 0x1a2b_3c4d] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&u64::MAX.to_le_bytes());
    v.extend_from_slice(&28u32.to_le_bytes());
    // Interface Description Block: Ethernet, snaplen 0.
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&20u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&20u32.to_le_bytes());
    // Enhanced Packet Block whose total length and captured length claim `HUGE`.
    for w in [6u32, HUGE, 0, 0, 0, HUGE, HUGE] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.extend(std::iter::repeat_n(0u8, 256));
    v
}

/// What the reader may hold besides one frame: its read buffer (256 KiB) and small bookkeeping.
const ALLOWED_PEAK: i64 = 4 * 1024 * 1024;

#[test]
fn a_record_claiming_1_4_gb_is_refused_without_allocating_it() {
    for (name, bytes, gzip) in [
        ("pcap", pcap_claiming_huge(), false),
        ("pcap.gz", pcap_claiming_huge(), true),
        ("pcapng", pcapng_claiming_huge(), false),
    ] {
        let reader = boxed(bytes, gzip);
        let ((frames, errors), peak) = peak_allocated(|| {
            let replay = Replay::from_reader(name.to_owned(), reader).unwrap();
            drain(replay)
        });
        eprintln!("{name}: peak {peak} bytes allocated while reading");
        // The counter works: the read buffer itself is counted.
        assert!(peak >= 64 * 1024, "{name}: only {peak} bytes counted");
        assert_eq!(errors, 1, "{name}: the claim is reported as damage");
        assert!(frames <= 1, "{name}: {frames} frames");
        assert!(
            peak < ALLOWED_PEAK,
            "{name}: reading allocated {peak} bytes at peak (limit {ALLOWED_PEAK})"
        );
    }
}

#[test]
fn the_error_for_a_1_4_gb_claim_names_the_offset() {
    let replay = Replay::from_reader("huge.pcap".into(), boxed(pcap_claiming_huge(), false));
    let mut replay = replay.unwrap();
    assert!(replay.next_frame().unwrap().is_some());
    match replay.next_frame() {
        Err(CaptureError::Damaged { offset, what, .. }) => {
            assert_eq!(offset, 24 + 16 + 60);
            assert!(what.contains("1400000000"), "{what}");
        }
        other => panic!("expected damage, got {other:?}"),
    }
}

/// The binary's peak resident set size in KiB, by /usr/bin/time (GNU), if it is installed.
fn peak_rss_kib(args: &[&str]) -> Option<(i32, u64)> {
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss=%M"])
        .arg(env!("CARGO_BIN_EXE_egresswatch"))
        .args(args)
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss="))?
        .trim()
        .parse()
        .ok()?;
    Some((out.status.code().unwrap_or(-1), kib))
}

#[test]
fn the_binary_stays_small_on_a_1_4_gb_claim() {
    let dir = tempfile::tempdir().unwrap();
    let crafted = dir.path().join("huge.pcap");
    fs::write(&crafted, pcap_claiming_huge()).unwrap();
    let mut inputs = vec![crafted];
    if let Some(shared) = common::shared() {
        inputs.push(shared.join("pcaps/sv_bug-6875-01_fuzz.pcap"));
    }
    for input in inputs {
        let path = input.to_str().unwrap();
        let Some((code, kib)) = peak_rss_kib(&["replay", "--no-terminal", path]) else {
            eprintln!("note: /usr/bin/time is not available; the allocator test covers this");
            return;
        };
        assert_eq!(code, 3, "{path}");
        // The whole process: binary, embedded database, 256 KiB read buffer. 1.4 GB is far away.
        assert!(kib < 64 * 1024, "{path}: peak RSS {kib} KiB");
    }
}

// ------------------------------------------------------------------------------------------------
// The damage table (docs/robustness.md): exit code and message fragment of each row.

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn replay(args: &[&str]) -> Run {
    let mut all = vec![
        "replay",
        "--json",
        "-",
        "--no-terminal",
        "--events",
        "summary",
    ];
    all.extend_from_slice(args);
    run_with(&all, Some(manifest_dir()), None, &[])
}

fn frames(r: &Run) -> u64 {
    let s = r.events("summary");
    assert_eq!(s.len(), 1, "one summary expected: {}", r.stdout);
    s[0]["counters"]["frames"].as_u64().unwrap()
}

/// One row: the run's exit code, a fragment of standard error, the frames still processed.
#[track_caller]
fn row(r: &Run, code: i32, fragment: &str, frames_still: Option<u64>) {
    assert_eq!(r.code, code, "exit code; stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(fragment),
        "{fragment:?} not in stderr: {}",
        r.stderr
    );
    if let Some(n) = frames_still {
        assert_eq!(frames(r), n, "frames still processed");
    }
}

#[test]
fn damage_table_shared_captures() {
    let Some(shared) = common::shared() else {
        return;
    };
    let p = |name: &str| shared.join("pcaps").join(name).to_str().unwrap().to_owned();
    let r = replay(&[&p("sv_bug-6875-01_fuzz.pcap")]);
    row(
        &r,
        3,
        "damaged at byte offset 228: record at offset 228 claims 1409179648 bytes, more than the 16 MiB limit",
        Some(1),
    );
    let r = replay(&[&p("ndpi_fuzz-2021-10-13_truncated.pcap")]);
    row(
        &r,
        3,
        "damaged at byte offset 24: record at offset 24 claims 524501 captured bytes but the file ends after 199 of them",
        Some(0),
    );
    let r = replay(&[&p("tcpdump_empty.pcap")]);
    row(&r, 0, "", Some(0));
    let r = replay(&[&p("zeek_tcp_truncated-header_snaplen68.pcap")]);
    row(&r, 0, "", Some(24));
    let r = replay(&[&p("tcpdump_unsupported-link-type-160.pcap")]);
    row(&r, 0, "", Some(1));
    let s = &r.events("summary")[0];
    assert_eq!(s["counters"]["unsupported_link_types"]["160"], 1);
}

/// Damaged copies of tests/fixtures/damage-base.pcap (an earlier demo capture: 150 frames, 142 033 bytes) and of a shared pcapng.
#[test]
fn damage_table_crafted_captures() {
    let dir = tempfile::tempdir().unwrap();
    let demo = fs::read(manifest_dir().join("tests/fixtures/damage-base.pcap")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };

    let f = write("truncated-record.pcap", &demo[..demo.len() - 10]);
    row(
        &replay(&[&f]),
        3,
        "claims 54 captured bytes but the file ends after 44 of them",
        Some(149),
    );

    let f = write("empty.pcap", b"");
    row(
        &replay(&[&f]),
        3,
        "damaged at byte offset 0: file is empty",
        Some(0),
    );

    for snaplen in [0u32, 1] {
        let mut b = demo.clone();
        b[16..20].copy_from_slice(&snaplen.to_le_bytes());
        let f = write(&format!("snaplen{snaplen}.pcap"), &b);
        // Records longer than the header's snaplen are read as they are; the alerts still come.
        row(&replay(&[&f]), 1, "", Some(150));
    }

    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&demo).unwrap();
    let gz = gz.finish().unwrap();
    let f = write("cut.pcap.gz", &gz[..gz.len() / 2]);
    let r = replay(&[&f]);
    row(&r, 3, "the gzip stream is damaged or cut short", None);
    assert!(frames(&r) > 0, "frames before the cut are still processed");
    let mut b = gz.clone();
    let n = b.len();
    b[n - 8] ^= 0xff; // CRC32 of the trailer
    let f = write("bad-crc.pcap.gz", &b);
    row(
        &replay(&[&f]),
        3,
        "corrupt gzip stream does not have a matching checksum",
        Some(150),
    );
    // Flipped bytes mid-stream: the inflater hands out garbage before the deflate error or the
    // checksum surfaces; the garbage must not be blamed as an impossible record.
    let mut b = gz.clone();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 8] {
        *x = !*x;
    }
    let f = write("flipped.pcap.gz", &b);
    let r = replay(&[&f]);
    row(&r, 3, "the gzip stream is", None);
    assert!(
        r.stderr.contains("corrupt") && r.stderr.contains("by compressed byte offset"),
        "the gzip error with its compressed offset: {}",
        r.stderr
    );
    assert!(
        frames(&r) > 0,
        "frames before the damage are still processed"
    );
    let f = write("magic-only.pcap.gz", &gz[..2]);
    row(
        &replay(&[&f]),
        3,
        "the gzip stream is damaged or cut short",
        Some(0),
    );

    if let Some(shared) = common::shared() {
        let ng = fs::read(shared.join("pcaps/zeek_pcapng-multi-interface.pcapng")).unwrap();
        // The first Enhanced Packet Block starts at byte 348 and is 128 bytes long.
        assert_eq!(&ng[348..352], &6u32.to_le_bytes());
        for (len, fragment) in [
            (
                129u32,
                "block at offset 348 (type 0x6) has total length 129; it must be a multiple of 4 and at least 12",
            ),
            (
                8,
                "has total length 8; it must be a multiple of 4 and at least 12",
            ),
            (
                0x7fff_fff0,
                "block at offset 348 claims 2147483632 bytes, more than the 16 MiB limit",
            ),
        ] {
            let mut b = ng.clone();
            b[352..356].copy_from_slice(&len.to_le_bytes());
            let f = write(&format!("len{len}.pcapng"), &b);
            row(&replay(&[&f]), 3, fragment, Some(0));
        }
        let mut b = ng.clone();
        b[472..476].copy_from_slice(&132u32.to_le_bytes());
        let f = write("trailer.pcapng", &b);
        row(
            &replay(&[&f]),
            3,
            "block at offset 348 (type 0x6) starts with length 128 but ends with 132",
            Some(0),
        );
    }
}

#[test]
fn damage_table_bad_databases() {
    let Some(shared) = common::shared() else {
        return;
    };
    // Fragments per file, as egresswatch words the refusal at open.
    let rows: [(&str, &str); 21] = [
        (
            "bad-unicode-in-map-key.mmdb",
            "the 16-byte separator after the search tree is not zero",
        ),
        ("cyclic-data-structure.mmdb", "its metadata cannot be used"),
        ("invalid-bytes-length.mmdb", "its metadata cannot be used"),
        (
            "invalid-data-record-offset.mmdb",
            "its metadata cannot be used",
        ),
        ("invalid-map-key-length.mmdb", "its metadata cannot be used"),
        ("invalid-string-length.mmdb", "its metadata cannot be used"),
        (
            "libmaxminddb-corrupt-search-tree.mmdb",
            "its search tree is corrupt: the metadata counts 100 nodes but the root reaches only 1",
        ),
        (
            "libmaxminddb-deep-array-nesting.mmdb",
            "looking up 1.1.1.1 fails",
        ),
        (
            "libmaxminddb-deep-nesting.mmdb",
            "exceeded maximum data structure depth",
        ),
        (
            "libmaxminddb-empty-array-last-in-metadata.mmdb",
            "a \"Test\" database, whose records carry none of the fields",
        ),
        (
            "libmaxminddb-empty-map-last-in-metadata.mmdb",
            "a \"Test\" database, whose records carry none of the fields",
        ),
        (
            "libmaxminddb-metadata-marker-only.mmdb",
            "its metadata cannot be used",
        ),
        (
            "libmaxminddb-offset-integer-overflow.mmdb",
            "its metadata cannot be used",
        ),
        (
            "libmaxminddb-oversized-array.mmdb",
            "looking up 1.1.1.1 fails",
        ),
        (
            "libmaxminddb-oversized-map.mmdb",
            "exceeded maximum number of data structure values",
        ),
        (
            "libmaxminddb-separator-record-max-left.mmdb",
            "data pointer resolves to an invalid location",
        ),
        (
            "libmaxminddb-separator-record-min-left.mmdb",
            "data pointer resolves to an invalid location",
        ),
        (
            "libmaxminddb-separator-record-min-right.mmdb",
            "looking up 255.255.255.255 fails",
        ),
        ("libmaxminddb-uint64-max-epoch.mmdb", "build_epoch"),
        ("metadata-is-an-uint128.mmdb", "its metadata cannot be used"),
        ("unexpected-bytes.mmdb", "its metadata cannot be used"),
    ];
    let on_disk = fs::read_dir(shared.join("mmdb/bad-data")).unwrap().count();
    assert_eq!(on_disk, rows.len(), "a bad-data database without a row");
    for (name, fragment) in rows {
        let db = shared.join("mmdb/bad-data").join(name);
        let r = replay(&["--geoip-db", db.to_str().unwrap(), "examples/demo.pcap"]);
        // Refused before any packet: exit 2, nothing on standard output.
        row(&r, 2, fragment, None);
        assert!(r.stderr.contains("egresswatch: error: "), "{name}");
        assert!(r.stdout.is_empty(), "{name}: {}", r.stdout);
    }
}

#[test]
fn damage_table_bad_policies() {
    for (file, fragment) in [
        (
            "bad-cidr.toml",
            "bad-cidr.toml:8:26: invalid CIDR \"198.51.100.0/33\"",
        ),
        (
            "bad-column-in-characters.toml",
            "bad-column-in-characters.toml:3:72: unknown country \"UK\", did you mean \"GB\"?",
        ),
        (
            "bad-country-uk.toml",
            "bad-country-uk.toml:7:20: unknown country \"UK\"",
        ),
        (
            "bad-duplicate-rule.toml",
            "bad-duplicate-rule.toml:10:6: duplicate rule id \"no-cn\"",
        ),
        (
            "bad-syntax.toml",
            "bad-syntax.toml:3:19: invalid basic string",
        ),
        (
            "bad-unknown-group.toml",
            "bad-unknown-group.toml:10:29: unknown group \"nordics\"",
        ),
        (
            "bad-unknown-key.toml",
            "bad-unknown-key.toml:7:1: unknown key `severty`",
        ),
    ] {
        let policy = format!("tests/fixtures/{file}");
        let r = replay(&["-p", &policy, "examples/demo.pcap"]);
        row(&r, 2, fragment, None);
        assert!(r.stdout.is_empty(), "{file}: {}", r.stdout);
    }
}
