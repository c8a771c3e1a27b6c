//! Using egresswatch as a library: replay a capture through the engine with a policy given as
//! text, and collect the alerts in memory instead of writing JSON.
//!
//! ```sh
//! cargo run --example library -- examples/demo.pcap
//! ```

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use egresswatch::capture::Replay;
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::{Alert, Event};
use egresswatch::geoip::Resolver;
use egresswatch::policy::Policy;
use egresswatch::sink::{Sink, SinkError};

/// A sink that keeps alerts in memory.
struct Collect(Rc<RefCell<Vec<Alert>>>);

impl Sink for Collect {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        if let Event::Alert(alert) = event {
            self.0.borrow_mut().push(alert.clone());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

const POLICY: &str = r#"
version = 1
name = "library-example"
home = ["BE"]

[[rules]]
id = "outside-eu"
severity = "medium"
not_countries = ["EU", "home"]
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let input = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("examples/demo.pcap"), PathBuf::from);
    let policy = Policy::from_toml(POLICY, "library-example.toml")?;
    let resolver = Resolver::embedded()?;
    let mut replay = Replay::open(&[input])?;
    let alerts = Rc::new(RefCell::new(Vec::new()));
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Collect(alerts.clone()))];
    let mut engine = Engine::new(
        policy,
        resolver,
        &Settings::default(),
        replay.input_names().to_vec(),
        sinks,
    );
    while let Some(frame) = replay.next_frame()? {
        engine.process(&frame)?;
    }
    let report = engine.finish()?;
    for a in alerts.borrow().iter() {
        println!(
            "{} {} → {} {}",
            a.rule.id,
            a.device.ip,
            // Absent only for a proxied target known by name alone.
            a.remote
                .ip
                .map_or_else(|| "?".to_owned(), |ip| ip.to_string()),
            a.remote.country.map(|c| c.to_string()).unwrap_or_default()
        );
    }
    println!(
        "{} packets, {} flows, {} alerts",
        report.summary.counters.frames,
        report.summary.counters.flows,
        report.summary.counters.alerts
    );
    Ok(())
}
