//! Builds seed corpora from real captures with egresswatch's own reader and decoder:
//!
//! ```sh
//! cargo run --release --manifest-path fuzz/Cargo.toml --example seeds -- ../shared/pcaps fuzz/corpus
//! ```
//!
//! Writes into `<corpus>/<target>/`: the first [`FILE_MAX`] bytes of every capture
//! (`capture_file`, with its flag byte, and `engine`), distinct frames (`decode`, behind their
//! link-type selector byte), and transport payloads by protocol (`dns`, `tls` behind the control
//! bytes, `http`, `quic` as raw datagram sequences per flow and as sealed CRYPTO frames built
//! from the TLS ClientHellos found). GeoIP databases and policies are copied by scripts/fuzz.sh.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use egresswatch::capture::Replay;
use egresswatch::decode::{Decoder, Transport};
use egresswatch::names::tls::parse_client_hello;
use fuzz_support::{
    QUIC_RAW, QUIC_SEAL_V1, QUIC_SEAL_V2, TLS_CONTROL_LEN, crypto_frame, encode_records,
    link_selector,
};

/// Longest capture prefix kept as a whole-file seed (the targets' -max_len).
const FILE_MAX: usize = 64 * 1024;
/// Longest frame kept for `decode`.
const FRAME_MAX: usize = 4096;
/// Seeds per target and capture at most, so one big capture does not drown the rest.
const PER_FILE_MAX: usize = 40;
/// Datagrams per QUIC flow seed.
const QUIC_FLOW_DATAGRAMS: usize = 6;

struct Corpus {
    root: PathBuf,
    seen: HashSet<(String, u64)>,
    written: HashMap<String, usize>,
}

impl Corpus {
    /// Writes a seed named by its content hash; `false` if it was there already.
    fn add(&mut self, target: &str, bytes: &[u8]) -> bool {
        let h = fnv(bytes);
        if !self.seen.insert((target.to_owned(), h)) {
            return false;
        }
        let dir = self.root.join(target);
        let _ = fs::create_dir_all(&dir);
        if fs::write(dir.join(format!("seed-{h:016x}")), bytes).is_ok() {
            *self.written.entry(target.to_owned()).or_default() += 1;
        }
        true
    }
}

/// The ports of the `reroute` target, in its order (fuzz_targets/reroute.rs).
const REROUTE_PORTS: [u16; 14] = [
    500, 4500, 123, 514, 161, 162, 830, 7547, 1883, 5683, 53, 853, 1080, 443,
];

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn tls_seed(control: [u8; TLS_CONTROL_LEN], stream: &[u8]) -> Vec<u8> {
    let mut v = control.to_vec();
    v.extend_from_slice(stream);
    v
}

fn is_http(p: &[u8]) -> bool {
    const STARTS: [&[u8]; 10] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"PATCH ",
        b"TRACE ",
        b"HTTP/",
    ];
    STARTS.iter().any(|s| p.starts_with(s))
}

/// Seeds from one capture.
fn from_capture(path: &Path, corpus: &mut Corpus, hellos: &mut Vec<Vec<u8>>) {
    let Ok(bytes) = fs::read(path) else {
        return;
    };
    let prefix = &bytes[..bytes.len().min(FILE_MAX)];
    let mut flagged = vec![0u8];
    flagged.extend_from_slice(prefix);
    corpus.add("capture_file", &flagged);
    corpus.add("engine", prefix);
    if bytes.len() < 4096 {
        flagged[0] = 1; // gzip-wrapped by the harness
        corpus.add("capture_file", &flagged);
        flagged[0] = 2; // split into two merged inputs
        corpus.add("capture_file", &flagged);
    }

    let Ok(mut replay) = Replay::open(&[path.to_path_buf()]) else {
        return;
    };
    let mut decoder = Decoder::new();
    let mut count: HashMap<&'static str, usize> = HashMap::new();
    let mut take = |target: &'static str| {
        let n = count.entry(target).or_default();
        *n += 1;
        *n <= PER_FILE_MAX
    };
    let mut quic_flows: HashMap<(IpAddr, u16, IpAddr), Vec<Vec<u8>>> = HashMap::new();
    while let Ok(Some(frame)) = replay.next_frame() {
        if let Some(sel) = link_selector(frame.link_type)
            && frame.data.len() <= FRAME_MAX
            && take("decode")
        {
            let mut seed = vec![sel];
            seed.extend_from_slice(frame.data);
            corpus.add("decode", &seed);
        }
        let Some(p) = decoder.decode(&frame) else {
            continue;
        };
        let payload = p.payload;
        if payload.is_empty() {
            continue;
        }
        let ports = [p.src_port, p.dst_port];
        // reroute: a head byte naming the port (its index in the target's list) and TCP.
        if let Some(i) = REROUTE_PORTS.iter().position(|x| ports.contains(x))
            && matches!(p.transport, Transport::Tcp | Transport::Udp)
            && take("reroute")
        {
            let tcp = if p.transport == Transport::Tcp { 0x80 } else { 0 };
            let mut seed = vec![i as u8 | tcp];
            seed.extend_from_slice(payload);
            corpus.add("reroute", &seed);
        }
        match p.transport {
            Transport::Udp => {
                if ports.iter().any(|&x| matches!(x, 53 | 5353 | 5355)) && take("dns") {
                    corpus.add("dns", payload);
                }
                if payload.first() == Some(&0x16) && payload.get(1) == Some(&0xfe) {
                    corpus.add("tls", &tls_seed([0; TLS_CONTROL_LEN], payload));
                }
                if payload.first().is_some_and(|b| b & 0x80 != 0)
                    && ports.contains(&443)
                    && p.dst_port == 443
                {
                    let flow = quic_flows.entry((p.src, p.src_port, p.dst)).or_default();
                    if flow.len() < QUIC_FLOW_DATAGRAMS {
                        flow.push(payload.to_vec());
                    }
                }
            }
            Transport::Tcp => {
                if ports.contains(&53) && take("dns") {
                    corpus.add("dns", payload);
                }
                if payload.first() == Some(&0x16) && take("tls") {
                    let s = p.seq.to_le_bytes();
                    corpus.add("tls", &tls_seed([s[0], s[1], s[2], s[3], 0, 0, 0], payload));
                    corpus.add(
                        "tls",
                        &tls_seed([s[0], s[1], s[2], s[3], 61, 3, 7], payload),
                    );
                    if parse_client_hello(payload).is_ok() {
                        hellos.push(payload.to_vec());
                    }
                }
                if is_http(payload) && take("http") {
                    corpus.add("http", payload);
                }
            }
            _ => {}
        }
    }
    for datagrams in quic_flows.into_values() {
        let mut seed = vec![QUIC_RAW];
        seed.extend(encode_records(datagrams.iter().map(Vec::as_slice)));
        corpus.add("quic", &seed);
    }
}

/// Sealed-mode QUIC seeds: each ClientHello's handshake message as CRYPTO frames, whole in one
/// Initial, and halved across two Initials sent second half first.
fn sealed_quic(hellos: &[Vec<u8>], corpus: &mut Corpus) {
    for stream in hellos.iter().take(PER_FILE_MAX) {
        let Some(len) = stream
            .get(3..5)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            continue;
        };
        let Some(msg) = stream.get(5..5 + len) else {
            continue;
        };
        let whole = crypto_frame(0, msg);
        let half = msg.len() / 2;
        let second = crypto_frame(half as u32, &msg[half..]);
        let mut first = vec![0x01]; // PING, then the frame
        first.extend(crypto_frame(0, &msg[..half]));
        for mode in [QUIC_SEAL_V1, QUIC_SEAL_V2] {
            let mut seed = vec![mode];
            seed.extend(encode_records([whole.as_slice()]));
            corpus.add("quic", &seed);
            let mut seed = vec![mode];
            seed.extend(encode_records([second.as_slice(), first.as_slice()]));
            corpus.add("quic", &seed);
        }
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(pcaps), Some(root)) = (args.next(), args.next()) else {
        eprintln!("usage: seeds <capture directory> <corpus directory>");
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = match fs::read_dir(&pcaps) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            eprintln!("seeds: {}: {e}", Path::new(&pcaps).display());
            std::process::exit(2);
        }
    };
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "gz")
    });
    files.sort();
    let mut corpus = Corpus {
        root: PathBuf::from(root),
        seen: HashSet::new(),
        written: HashMap::new(),
    };
    let mut hellos = Vec::new();
    for f in &files {
        from_capture(f, &mut corpus, &mut hellos);
    }
    sealed_quic(&hellos, &mut corpus);
    let mut written: Vec<_> = corpus.written.into_iter().collect();
    written.sort();
    let summary: Vec<String> = written.iter().map(|(t, n)| format!("{t}={n}")).collect();
    println!("seeds from {} captures: {}", files.len(), summary.join(" "));
}
