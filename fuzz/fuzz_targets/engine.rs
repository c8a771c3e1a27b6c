//! End to end: the bytes as a capture replayed through `engine::Engine` with the embedded GeoIP
//! database and the embedded default policy, into JSON lines written to nowhere (so events are
//! still built and serialised).
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use egresswatch::capture::Replay;
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::EventSet;
use egresswatch::geoip::Resolver;
use egresswatch::policy::Policy;
use egresswatch::sink::{JsonLines, Sink};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(Policy::embedded_default)
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut replay) =
        Replay::from_reader("fuzz".to_owned(), Box::new(Cursor::new(data.to_vec())))
    else {
        return;
    };
    let Ok(resolver) = Resolver::embedded() else {
        return;
    };
    let Ok(events) = EventSet::parse("all") else {
        return;
    };
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonLines::new(
        std::io::sink(),
        "nowhere".to_owned(),
        events,
        false,
    ))];
    let mut engine = Engine::new(
        policy().clone(),
        resolver,
        &Settings::default(),
        replay.input_names().to_vec(),
        sinks,
    );
    loop {
        match replay.next_frame() {
            Ok(Some(frame)) => {
                if engine.process(&frame).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                engine.input_error(0, e.to_string());
                break;
            }
        }
    }
    if let Ok(report) = engine.finish() {
        std::hint::black_box(report.summary.counters.frames);
    }
});
