//! `Replay::from_reader` over any bytes: pcap, pcapng, gzip. The first byte is a flag byte:
//! bit 0 gzip-compresses the rest before reading it; bit 1 cuts the rest in two at a point given
//! by the second byte and merges the halves as two inputs. Every frame is drained.
#![no_main]

use std::io::{Cursor, Read, Write as _};

use egresswatch::capture::{CaptureError, Replay};
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

fn reader(bytes: Vec<u8>, gzip: bool) -> Box<dyn Read + Send> {
    if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        let _ = enc.write_all(&bytes);
        Box::new(Cursor::new(enc.finish().unwrap_or_default()))
    } else {
        Box::new(Cursor::new(bytes))
    }
}

fn drain(mut replay: Replay) {
    let mut sum = 0u64;
    let mut errors = 0u32;
    loop {
        match replay.next_frame() {
            Ok(Some(frame)) => {
                sum = sum.wrapping_add(frame.data.iter().map(|&b| u64::from(b)).sum::<u64>());
                assert!(frame.data.len() <= egresswatch::capture::RECORD_MAX_BYTES);
            }
            Ok(None) => break,
            Err(e) => {
                // A damaged input is closed; the others go on. Each reports once at most.
                let _ = e.to_string();
                assert!(matches!(
                    e,
                    CaptureError::Damaged { .. } | CaptureError::Io { .. }
                ));
                errors += 1;
                assert!(errors <= 2, "an input reported damage twice");
            }
        }
    }
    std::hint::black_box(sum);
    std::hint::black_box(replay.stats());
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let gzip = flags & 1 != 0;
    let replay = if flags & 2 != 0 && rest.len() > 1 {
        let cut = usize::from(rest[0]) * rest.len() / 256;
        let (a, b) = rest[1..].split_at(cut.min(rest.len() - 1));
        Replay::from_readers(vec![
            ("a".to_owned(), reader(a.to_vec(), gzip)),
            ("b".to_owned(), reader(b.to_vec(), gzip)),
        ])
    } else {
        Replay::from_reader("fuzz".to_owned(), reader(rest.to_vec(), gzip))
    };
    if let Ok(replay) = replay {
        drain(replay);
    }
});
