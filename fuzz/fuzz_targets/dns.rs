//! DNS: `parse_message` and `resolutions()` over the bytes as one UDP payload; then the same
//! message behind a 2-byte length (DNS over TCP) and the raw bytes, each cut into segments at
//! points chosen from the input, through a `DnsTcpReassembler`, parsing every message it hands
//! back.
#![no_main]

use egresswatch::names::dns::{DnsTcpReassembler, parse_message, read_name};
use fuzz_support::{Rng, split};
use libfuzzer_sys::fuzz_target;

fn parse(msg: &[u8]) {
    if let Ok(m) = parse_message(msg) {
        for r in m.resolutions() {
            std::hint::black_box(&r);
        }
        std::hint::black_box(&m);
    }
}

fuzz_target!(|data: &[u8]| {
    parse(data);
    let _ = read_name(data, 12);
    let seed = data
        .iter()
        .rev()
        .take(8)
        .fold(data.len() as u64, |a, &b| a.rotate_left(8) ^ u64::from(b));
    let mut rng = Rng::new(seed);

    let mut framed = Vec::with_capacity(data.len() + 2);
    framed.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    framed.extend_from_slice(data);
    for stream in [framed.as_slice(), data] {
        let mut r = DnsTcpReassembler::new();
        let mut messages = 0usize;
        for segment in split(stream, &mut rng, 64) {
            r.push(segment, |msg| {
                messages += 1;
                parse(msg);
            });
            assert!(
                r.buffered() <= 70_000,
                "reassembler holds {} bytes",
                r.buffered()
            );
        }
        std::hint::black_box(messages);
    }
});
