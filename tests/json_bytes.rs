//! The hand-written JSON of events (`event::ToJson`) against serde_json, on every event the
//! engine writes for the captures in ../shared/pcaps: the bytes must be identical, line for line.

mod common;

use egresswatch::capture::Replay;
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::{Event, ToJson, write_summary};
use egresswatch::geoip::Resolver;
use egresswatch::policy::Policy;
use egresswatch::sink::{Sink, SinkError};

/// Compares each event's two renderings; counts what it compared.
#[derive(Default)]
struct Compare {
    events: usize,
    /// Events seen per type: alert, flow, dns, summary.
    by_type: [usize; 4],
    mismatches: Vec<String>,
}

impl Compare {
    fn check(&mut self, ours: Vec<u8>, reference: Vec<u8>) {
        self.events += 1;
        if ours != reference {
            self.mismatches.push(format!(
                "ours:  {}\nserde: {}",
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&reference)
            ));
        }
    }
}

impl Sink for &mut Compare {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        let mut ours = Vec::new();
        let kind = match event {
            Event::Alert(_) => 0,
            Event::Flow(_) => 1,
            Event::Dns(_) => 2,
            Event::Summary(_) => 3,
        };
        self.by_type[kind] += 1;
        let reference = match event {
            Event::Alert(a) => {
                a.write_json(&mut ours);
                serde_json::to_vec(a)
            }
            Event::Flow(f) => {
                f.write_json(&mut ours);
                serde_json::to_vec(f)
            }
            Event::Dns(d) => {
                d.write_json(&mut ours);
                serde_json::to_vec(d)
            }
            Event::Summary(s) => {
                write_summary(&mut ours, s).expect("summary");
                serde_json::to_vec(s)
            }
        };
        self.check(ours, reference.expect("serde_json"));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn every_event_of_the_shared_captures_writes_as_serde_json() {
    let mut compare = Compare::default();
    for file in common::shared_captures() {
        let mut replay = Replay::open(std::slice::from_ref(&file)).expect("open");
        let sinks: Vec<Box<dyn Sink + '_>> = vec![Box::new(&mut compare)];
        let mut engine = Engine::new(
            Policy::embedded_default(),
            Resolver::embedded().expect("embedded database"),
            &Settings::default(),
            replay.input_names().to_vec(),
            sinks,
        )
        .with_dns_events();
        // Damaged captures end early with an error: the events up to there still count.
        while let Ok(Some(frame)) = replay.next_frame() {
            engine.process(&frame).expect("process");
        }
        engine.finish().expect("finish");
    }
    let files = common::shared_captures().len();
    if files > 0 {
        let [alerts, flows, dns, summaries] = compare.by_type;
        assert!(alerts > 0 && flows > 0 && dns > 0, "{:?}", compare.by_type);
        assert_eq!(summaries, files);
    }
    assert!(
        compare.mismatches.is_empty(),
        "{} of {} events differ; first:\n{}",
        compare.mismatches.len(),
        compare.events,
        compare.mismatches[0]
    );
    println!(
        "{} events compared (alert, flow, dns, summary: {:?})",
        compare.events, compare.by_type
    );
}
