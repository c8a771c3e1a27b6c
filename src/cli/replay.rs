//! `egresswatch replay`: analyse capture files.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use egresswatch::capture::{CaptureError, Prefetch, Replay};
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::EventSet;
use egresswatch::policy::Action;
use egresswatch::sink::{JsonLines, Sink, SinkError, write_junit};

use super::{Failure, GeoipArgs, OutputArgs, PolicyArgs, terminal_sink};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed), directories of them, or `-` for
    /// standard input. Several inputs are merged in timestamp order as one run.
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub geoip: GeoipArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// A flow with no packet for this many seconds of packet time ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub idle_timeout: f64,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    /// Threads: 1 reads and analyses on one thread; 2 reads the captures (file, gzip, records)
    /// and decodes the packets ahead on a second thread while the first analyses, and at the
    /// end of the input writes the flow records as JSON on the second thread while the first
    /// ends the flows. Default: 2
    /// when the machine has more than one CPU and every input is a regular file or directory
    /// (standard input and pipes are read on one thread, so that each frame is analysed as soon
    /// as it arrives; 2 is refused for them). Output is identical either way.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: Option<u8>,
}

/// The frames of a replay, read on this thread or ahead on another.
enum Frames {
    Here(Replay),
    Ahead(Prefetch),
}

impl Frames {
    /// Reads here, or starts the thread that reads ahead, with the engine's decoder lent to it.
    fn new(
        replay: Replay,
        inputs: &[PathBuf],
        threads: Option<u8>,
        engine: &mut Engine<'_>,
    ) -> Result<Frames, Failure> {
        // A batch is handed over when it is full: from a pipe that pauses, frames would wait.
        let files = inputs.iter().all(|p| {
            p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| m.is_file() || m.is_dir())
        });
        if threads == Some(2) && !files {
            return Err(Failure::Usage(
                "--threads 2 reads ahead only from files and directories: from standard input or \
                 a pipe, frames would wait for a full batch; use --threads 1"
                    .to_owned(),
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = threads.map_or(if files { cpus.min(2) } else { 1 }, usize::from);
        if threads < 2 {
            return Ok(Frames::Here(replay));
        }
        engine.set_threads(2);
        Prefetch::start(replay, engine.lend_decoder())
            .map(Frames::Ahead)
            .map_err(|e| {
                Failure::Usage(format!(
                    "cannot start the thread that reads ahead ({e}); run with --threads 1"
                ))
            })
    }

    /// Gives the next frame to `engine`: `Ok(None)` when every input is exhausted, `Ok(Some(r))`
    /// with what the engine said, `Err` for an input's damage (the other inputs go on).
    fn feed(
        &mut self,
        engine: &mut Engine<'_>,
    ) -> Result<Option<Result<(), SinkError>>, CaptureError> {
        Ok(match self {
            Frames::Here(r) => r.next_frame()?.map(|frame| engine.process(&frame)),
            Frames::Ahead(p) => p
                .next_frame()?
                .map(|(frame, packet)| engine.process_decoded(&frame, packet)),
        })
    }

    /// Ends reading; the engine gets its decoder back (with what it counted) if it was lent.
    fn finish(self, engine: &mut Engine<'_>) {
        if let Frames::Ahead(p) = self {
            engine.return_decoder(p.finish());
        }
    }
}

/// Where the JSON lines go.
fn json_sink(path: &PathBuf, events: EventSet) -> Result<Box<dyn Sink>, Failure> {
    if path.as_os_str() == "-" {
        let out = BufWriter::with_capacity(1 << 16, io::stdout());
        return Ok(Box::new(JsonLines::new(
            out,
            "standard output".to_owned(),
            events,
            false,
        )));
    }
    let name = path.display().to_string();
    let file = File::create(path).map_err(|source| SinkError {
        name: name.clone(),
        source,
    })?;
    Ok(Box::new(JsonLines::new(
        BufWriter::with_capacity(1 << 16, file),
        name,
        events,
        false,
    )))
}

/// Runs a replay and returns the exit code.
pub fn run(args: &ReplayArgs) -> Result<u8, Failure> {
    let policy = args.policy.load()?;
    let resolver = args.geoip.open()?;
    let baseline = args.output.baseline()?;
    if !(args.idle_timeout.is_finite() && args.idle_timeout > 0.0) {
        return Err(Failure::Usage(format!(
            "--idle-timeout must be a positive number of seconds, not {}",
            args.idle_timeout
        )));
    }
    let settings = Settings {
        max_flows: args.limits.max_flows.max(1),
        idle_timeout_ns: (args.idle_timeout * 1e9) as i64,
        caps: args.limits.caps(),
    };
    let replay = Replay::open(&args.inputs)?;
    if replay.input_names().is_empty() {
        // A directory without captures: a CI job whose capture was never produced must not
        // look clean.
        return Err(Failure::NoInput(
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let json_to_stdout = args
        .output
        .json
        .as_ref()
        .is_some_and(|p| p.as_os_str() == "-");
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(path) = &args.output.json {
        sinks.push(json_sink(path, args.output.events)?);
    }
    if !args.output.no_terminal {
        sinks.push(terminal_sink(
            args.output.color,
            args.output.events.alert || args.output.json.is_some(),
            json_to_stdout,
        ));
    }
    let alert_rules: Vec<String> = policy
        .rules()
        .iter()
        .filter(|r| r.action == Action::Alert)
        .map(|r| r.id.clone())
        .collect();
    let names = replay.input_names().to_vec();
    let mut engine = Engine::new(policy, resolver, &settings, names.clone(), sinks);
    if args.output.events.dns && args.output.json.is_some() {
        engine = engine.with_dns_events();
    }
    if let Some(baseline) = baseline {
        engine = engine.with_baseline(baseline);
    }
    let started = std::time::Instant::now();
    let mut replay = Frames::new(replay, &args.inputs, args.threads, &mut engine)?;
    let mut damaged = false;
    let mut broken_pipe = false;
    loop {
        match replay.feed(&mut engine) {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) if e.is_broken_pipe() => {
                broken_pipe = true;
                break;
            }
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => break,
            Err(e) => {
                damaged = true;
                tracing::error!("{e}");
                let path = match &e {
                    CaptureError::Io { path, .. }
                    | CaptureError::UnknownFormat { path, .. }
                    | CaptureError::Damaged { path, .. } => path.clone(),
                };
                if let Some(i) = names.iter().position(|n| *n == path) {
                    engine.input_error(i, e.to_string());
                }
            }
        }
    }
    replay.finish(&mut engine);
    let read = started.elapsed();
    let finished = engine.finish();
    tracing::debug!(
        "inputs read and analysed in {:.1} ms; flows left ended and the summary written in {:.1} ms",
        read.as_secs_f64() * 1e3,
        (started.elapsed() - read).as_secs_f64() * 1e3
    );
    let report = match finished {
        Ok(report) => report,
        Err(e) if e.is_broken_pipe() || broken_pipe => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &args.output.junit {
        let xml = write_junit(&report.summary, &alert_rules);
        let name = path.display().to_string();
        File::create(path)
            .and_then(|mut f| f.write_all(xml.as_bytes()).and_then(|()| f.flush()))
            .map_err(|source| SinkError { name, source })?;
    }
    if damaged {
        return Ok(3);
    }
    let failed = args.output.fail_on.failed(report.max_severity);
    Ok(u8::from(failed))
}
