//! Writes a flood capture (hostile input for the caps; see docs/robustness.md, "Floods").
//!
//! ```sh
//! cargo run --release --example gen_flood -- --kind dns-names --count 1000000 --out names.pcap
//! cargo run --release --example gen_flood -- --kind dns-names --count 272144 \
//!     --spacing-ns 9998322 --ttl 2021 --out stairs.pcap
//! ```
//!
//! `--spacing-ns`: nanoseconds between the flood's frames (default 1000); `--ttl`: seconds, for
//! the DNS floods' answers (default 300). The second example spreads answers so that one cached
//! answer expires at each new one once the cache is full (the worst case of a sweep for expired
//! entries; see BENCHMARKS.md).
//!
//! Kinds: scan, dns-names, dns-answers, cname-chains, pointer-loops, fragments, partial-hellos
//! (`egresswatch::flood`). Deterministic: the same arguments give the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType};
use egresswatch::flood::Flood;

fn usage() -> ExitCode {
    let kinds: Vec<&str> = Flood::ALL.iter().map(|f| f.name()).collect();
    eprintln!(
        "usage: gen_flood --kind KIND --count N [--spacing-ns NS] [--ttl S] --out FILE\nkinds: {}",
        kinds.join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (mut kind, mut count, mut path) = (None, None, None);
    let mut spacing_ns = 1_000i64;
    let mut ttl = egresswatch::flood::DNS_TTL;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kind" => kind = args.next().as_deref().and_then(Flood::from_name),
            "--count" => {
                count = args
                    .next()
                    .and_then(|v| v.replace('_', "").parse::<u64>().ok())
            }
            "--out" => path = args.next(),
            "--spacing-ns" => match args.next().and_then(|v| v.parse::<i64>().ok()) {
                Some(v) if v > 0 => spacing_ns = v,
                _ => return usage(),
            },
            "--ttl" => match args.next().and_then(|v| v.parse::<u32>().ok()) {
                Some(v) => ttl = v,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let (Some(kind), Some(count), Some(path)) = (kind, count, path) else {
        return usage();
    };
    let result = File::create(&path).and_then(|file| {
        let mut w = PcapWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
        )?;
        let mut failed = Ok(());
        let mut frames = 0u64;
        kind.build_with(count, spacing_ns, ttl, |ts, frame| {
            if failed.is_ok() {
                failed = w.write_frame(ts, frame, frame.len() as u32);
                frames += 1;
            }
        });
        failed?;
        w.into_inner().flush()?;
        eprintln!(
            "gen_flood: {} × {count}: {frames} frames to {path}",
            kind.name()
        );
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_flood: {path}: {e}");
            ExitCode::from(2)
        }
    }
}
