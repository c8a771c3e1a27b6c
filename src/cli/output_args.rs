//! The output flags `replay` and `live` share, flattened into both (`#[command(flatten)]`).

use std::path::PathBuf;

use clap::Args;

use egresswatch::event::EventSet;

use super::{ColorChoice, FailOn, parse_fail_on};

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Write events as JSON lines to this file (`-` for standard output; the terminal view then
    /// goes to standard error). live: every line is flushed as it is written; SIGHUP reopens the
    /// file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Which events to write as JSON: a comma-separated list of alert, flow, summary, dns (or
    /// all). `dns` writes one event per question of each DNS response a device receives. live:
    /// `stats` events are written whenever --stats-interval is not 0.
    #[arg(long, value_name = "LIST", default_value = "alert,flow,summary", value_parser = EventSet::parse)]
    pub events: EventSet,
    /// Exit with code 1 when an alert at or above this severity was raised: info, low, medium,
    /// high, critical, or never.
    #[arg(long, value_name = "SEVERITY", default_value = "info", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Compare with an earlier run: the JSON output (or summary) of a previous `replay --json`.
    /// Alerts on every country the baseline never saw a device send to (baseline-new-country)
    /// and on every name served from a country the baseline did not see it served from
    /// (baseline-name-moved). This is how a CI job compares firmware 1.3 with 1.2.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write a JUnit XML report (a test case per alerting rule and device) to this file at the
    /// end.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Colour the terminal view.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// No terminal view (alert lines and summary table); JSON and JUnit output are unaffected.
    #[arg(long)]
    pub no_terminal: bool,
}

impl OutputArgs {
    /// The `--baseline` run's summary, when one was given.
    pub fn baseline(&self) -> Result<Option<egresswatch::routes::Baseline>, super::Failure> {
        self.baseline
            .as_deref()
            .map(egresswatch::routes::Baseline::from_file)
            .transpose()
            .map_err(super::Failure::from)
    }
}
