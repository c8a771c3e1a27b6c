//! TLS: `parse_client_hello`, `parse_server_hello`, `parse_dtls_client_hello` and the handshake
//! tracker on the stream, then `TlsHelloAssembler` over the stream cut into segments given
//! fuzzer-chosen sequence numbers, order and duplicates.
//!
//! Input: `fuzz_support::TLS_CONTROL_LEN` control bytes (sequence base, split seed, order seed,
//! flags), then the client → server stream.
#![no_main]

use egresswatch::names::tls::{
    TlsHandshakeState, TlsHelloAssembler, parse_client_hello, parse_dtls_client_hello,
    parse_server_hello, plausible_record_header,
};
use fuzz_support::{Rng, TLS_CONTROL_LEN, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < TLS_CONTROL_LEN {
        return;
    }
    let (ctrl, stream) = data.split_at(TLS_CONTROL_LEN);
    let base = u32::from_le_bytes([ctrl[0], ctrl[1], ctrl[2], ctrl[3]]);
    let (split_seed, order_seed, flags) = (ctrl[4], ctrl[5], ctrl[6]);

    std::hint::black_box(parse_client_hello(stream).ok());
    std::hint::black_box(parse_server_hello(stream).ok());
    std::hint::black_box(parse_dtls_client_hello(stream).ok());
    std::hint::black_box(plausible_record_header(stream));
    let mut hs = TlsHandshakeState::new();
    hs.observe(true, stream);
    hs.observe(false, stream);
    std::hint::black_box(hs.is_encrypted());

    // Segments at their stream offsets from `base` (wrapping like TCP sequence numbers).
    let mut rng = Rng::new(u64::from(split_seed) << 8 | u64::from(order_seed));
    let max = if split_seed == 0 {
        stream.len()
    } else {
        usize::from(split_seed)
    };
    let mut segments: Vec<(u32, &[u8])> = Vec::new();
    let mut off = 0usize;
    for piece in split(stream, &mut rng, max) {
        segments.push((base.wrapping_add(off as u32), piece));
        off += piece.len();
    }
    if flags & 2 != 0 && !segments.is_empty() {
        let again = segments[rng.below(segments.len())];
        segments.push(again);
    }
    if flags & 4 != 0 && segments.len() > 1 {
        // Overlap: one segment re-sent starting a few bytes earlier with the bytes of the previous.
        let i = 1 + rng.below(segments.len() - 1);
        let (seq, piece) = segments[i];
        let back = (rng.below(4) + 1).min(segments[i - 1].1.len());
        let start = (seq.wrapping_sub(base) as usize).saturating_sub(back);
        let end = (start + back + piece.len()).min(stream.len());
        if let Some(bytes) = stream.get(start..end) {
            segments.push((base.wrapping_add(start as u32), bytes));
        }
    }
    // Order: a few swaps chosen by the seed (0 keeps stream order).
    if order_seed != 0 {
        for _ in 0..segments.len() {
            let (a, b) = (rng.below(segments.len()), rng.below(segments.len()));
            segments.swap(a, b);
        }
    }
    let mut asm = TlsHelloAssembler::new();
    if flags & 1 != 0 {
        asm.set_stream_start(base);
    }
    let mut results = 0;
    for (seq, piece) in segments {
        if let Some(r) = asm.push(seq, piece) {
            results += 1;
            assert!(asm.is_finished());
            std::hint::black_box(r.ok());
        }
    }
    assert!(results <= 1, "the assembler finished {results} times");
});
