//! QUIC: `QuicInitialAssembler::push` over a sequence of client → server datagrams.
//!
//! The first byte is the mode (`fuzz_support::QUIC_*`): raw datagrams, or each record sealed as
//! a protected client Initial (v1 or v2) so that mutations reach the frame parser and CRYPTO
//! reassembly behind the packet protection. The rest is `fuzz_support::records`.
#![no_main]

use egresswatch::names::quic::{QuicInitialAssembler, QuicVersion};
use fuzz_support::{QUIC_SEAL_V1, QUIC_SEAL_V2, SEAL_DCID, records, seal_initial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let datagrams: Vec<Vec<u8>> = match mode {
        QUIC_SEAL_V1 | QUIC_SEAL_V2 => {
            let version = if mode == QUIC_SEAL_V1 {
                QuicVersion::V1
            } else {
                QuicVersion::V2
            };
            records(rest)
                .into_iter()
                .enumerate()
                .map(|(pn, plain)| seal_initial(version, &SEAL_DCID, pn as u16, plain))
                .collect()
        }
        _ => records(rest).into_iter().map(<[u8]>::to_vec).collect(),
    };
    let mut asm = QuicInitialAssembler::new();
    let mut results = 0;
    for d in &datagrams {
        if let Some(r) = asm.push(d) {
            results += 1;
            assert!(asm.is_finished());
            std::hint::black_box(r.ok());
        }
    }
    assert!(results <= 1, "the assembler finished {results} times");
    std::hint::black_box(asm.stats());
});
