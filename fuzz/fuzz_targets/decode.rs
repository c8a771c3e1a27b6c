//! `Decoder::decode` on one frame. The first byte picks the link type from
//! `fuzz_support::LINK_TYPES`; the rest is the frame. The frame is decoded twice by one decoder
//! (the second time as if later), so the IP fragment tracker sees a repeat.
#![no_main]

use egresswatch::capture::Frame;
use egresswatch::decode::Decoder;
use fuzz_support::LINK_TYPES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link_type = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let mut decoder = Decoder::new();
    for (i, ts_ns) in [1_700_000_000_000_000_000i64, 1_700_000_001_000_000_000]
        .into_iter()
        .enumerate()
    {
        let f = Frame {
            ts_ns,
            link_type,
            data: frame,
            wire_len: frame.len() as u32,
            source: 0,
            index: i as u64 + 1,
        };
        if let Some(p) = decoder.decode(&f) {
            assert!(p.payload.len() <= frame.len());
            std::hint::black_box((p.src, p.dst, p.src_port, p.dst_port, p.transport.ip_proto()));
        }
    }
    std::hint::black_box(decoder.stats());
});
