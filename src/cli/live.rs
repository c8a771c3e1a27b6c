//! `egresswatch live`: capture on interfaces beside a device under test.
//!
//! Each interface is read by its own thread (see `egresswatch::capture::live`), which hands
//! batches of frames over a bounded channel. One tokio thread drives everything else: it runs the
//! batches through the engine, expires idle flows by wall-clock time, writes periodic `stats`
//! events, and handles signals: SIGINT/SIGTERM stop capturing, drain what is queued, end every
//! flow and write the summary (a second one exits at once); SIGHUP reopens the JSON output file.
//! Alerts are flushed line by line, so one reaches the file within milliseconds of its packet.
//! Nothing here listens on a network port.

mod output;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use egresswatch::capture::live::{Batch, Capture, LiveConfig, LiveError, Message, wall_clock_ns};
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::{EventSet, InterfaceStats, Rfc3339, SCHEMA_VERSION, Stats};
use egresswatch::policy::Action;
use egresswatch::sink::{JsonLines, Sink, SinkError, write_junit};

use super::{ColorChoice, FailOn, Failure, GeoipArgs, PolicyArgs, parse_fail_on, terminal_sink};
use output::Output;

/// Batches waiting between the capture threads and the engine, at most; a full channel makes
/// the capture threads wait, and the kernel buffers (then drops and counts) behind them.
pub const CHANNEL_BATCHES: usize = 64;
/// How often idle flows are expired by wall-clock time when no packet comes.
pub const EXPIRY_TICK: Duration = Duration::from_secs(1);
/// Interfaces in one run, at most (inputs are numbered with 16 bits).
pub const INTERFACES_MAX: usize = 256;

pub const LIVE_EXIT_CODES: &str = "\
Exit codes:
  0    clean: no alert at or above --fail-on
  1    an alert at or above --fail-on (default: any alert)
  2    usage, policy or GeoIP database error, an interface that does not exist or may not be
       opened (the message says how to fix it), or output that could not be written
  3    an interface failed while capturing (what was captured before is still reported)
  130  a second SIGINT (143: SIGTERM) while stopping: exited at once, without a summary";

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Capture on this interface (repeatable; `egresswatch interfaces` lists them).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    pub interfaces: Vec<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub geoip: GeoipArgs,
    /// Write events as JSON lines to this file (`-` for standard output; the terminal view then
    /// goes to standard error). Every line is flushed as it is written; SIGHUP reopens the file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Which events to write as JSON: a comma-separated list of alert, flow, summary, dns (or
    /// all). `stats` events are written whenever --stats-interval is not 0.
    #[arg(long, value_name = "LIST", default_value = "alert,flow,summary", value_parser = EventSet::parse)]
    pub events: EventSet,
    /// Exit with code 1 when an alert at or above this severity was raised: info, low, medium,
    /// high, critical, or never.
    #[arg(long, value_name = "SEVERITY", default_value = "info", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Write a JUnit XML report (a test case per alerting rule and device) to this file at the end.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Most flows held at once; the least recently active flow is evicted (and counted) beyond.
    #[arg(long, value_name = "N", default_value_t = egresswatch::flow::FLOWS_MAX_DEFAULT)]
    pub max_flows: usize,
    /// A flow with no packet for this many seconds ends (checked every second).
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub idle_timeout: f64,
    /// Do not put the interfaces in promiscuous mode (see only traffic to and from this host).
    #[arg(long)]
    pub no_promisc: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop after this many frames (over all interfaces).
    #[arg(long, value_name = "N")]
    pub max_packets: Option<u64>,
    /// Write a `stats` event (packets, bytes, flows, alerts, kernel drops) when capture starts and
    /// then every this many seconds; 0 turns them off.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Colour the terminal view.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// No terminal view (alert lines and summary table); JSON and JUnit output are unaffected.
    #[arg(long)]
    pub no_terminal: bool,
    // Caps (flood helper): one grouped block.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// A positive, finite number of seconds.
fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    if value.is_finite() && value > 0.0 && value < 1e12 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Failure::Usage(format!(
            "{flag} must be a positive number of seconds, not {value}"
        )))
    }
}

/// Running counters of one interface.
#[derive(Default)]
struct Counters {
    packets: u64,
    bytes: u64,
    drops: Option<u64>,
}

/// How the live loop ended.
#[derive(Default)]
struct Outcome {
    capture_failed: bool,
    broken_pipe: bool,
}

/// Modification time and size of each database and overlay file given, to notice a replaced
/// file. Empty for the embedded databases.
fn file_stamps(geoip: &GeoipArgs) -> Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)> {
    geoip
        .geoip_db
        .iter()
        .chain(&geoip.geoip_overlay)
        .map(|p| {
            let stamp = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p.clone(), stamp)
        })
        .collect()
}

/// Everything the loop works on.
struct Live<'a> {
    engine: Engine<'a>,
    /// How the GeoIP databases were opened, to reopen them.
    geoip: GeoipArgs,
    geoip_stamps: Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)>,
    output: Option<Output>,
    names: Vec<String>,
    counters: Vec<Counters>,
    started: std::time::Instant,
    stop: Arc<AtomicBool>,
    max_packets: Option<u64>,
    processed: u64,
    outcome: Outcome,
}

impl Live<'_> {
    /// Runs a batch through the engine.
    fn batch(&mut self, batch: &Batch) -> Result<(), Failure> {
        let Some(c) = self.counters.get_mut(usize::from(batch.source)) else {
            return Ok(());
        };
        if batch.kernel_drops.is_some() {
            c.drops = batch.kernel_drops;
        }
        for frame in batch.frames() {
            if self.outcome.broken_pipe || self.max_packets.is_some_and(|m| self.processed >= m) {
                break;
            }
            c.packets += 1;
            c.bytes += u64::from(frame.wire_len);
            self.processed += 1;
            match self.engine.process(&frame) {
                Ok(()) => {}
                Err(e) if e.is_broken_pipe() => {
                    self.outcome.broken_pipe = true;
                    self.stop.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.max_packets.is_some_and(|m| self.processed >= m) {
            self.stop.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes a `stats` event to the JSON output.
    fn stats(&mut self) -> Result<(), Failure> {
        let Some(output) = &self.output else {
            return Ok(());
        };
        let e = self.engine.live_stats();
        let interfaces: Vec<InterfaceStats> = self
            .names
            .iter()
            .zip(&self.counters)
            .map(|(name, c)| InterfaceStats {
                name: name.clone(),
                packets: c.packets,
                bytes: c.bytes,
                drops: c.drops,
            })
            .collect();
        let drops = interfaces
            .iter()
            .filter_map(|i| i.drops)
            .reduce(u64::saturating_add);
        let stats = Stats {
            timestamp: Rfc3339(wall_clock_ns()),
            event_type: "stats",
            schema: SCHEMA_VERSION,
            uptime_s: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            packets: e.frames,
            bytes: interfaces.iter().map(|i| i.bytes).sum(),
            flows_active: e.flows_active,
            flows: e.flows,
            alerts: e.alerts,
            alerts_suppressed: e.alerts_suppressed,
            drops,
            geoip_reloads: e.geoip_reloads,
            interfaces,
            limits: e.limits,
        };
        let mut line = serde_json::to_vec(&stats).map_err(|e| SinkError {
            name: output.name().to_owned(),
            source: e.into(),
        })?;
        line.push(b'\n');
        match output.write_line(&line) {
            Err(e) if e.is_broken_pipe() => {
                self.outcome.broken_pipe = true;
                self.stop.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// Expires idle flows at the wall clock's time.
    /// Reopens the GeoIP databases and switches to them; on failure keeps those in use.
    fn reload_geoip(&mut self, why: &str) {
        match self.geoip.open() {
            Ok(resolver) => {
                let names: Vec<String> = resolver
                    .databases()
                    .iter()
                    .map(|d| d.name.clone())
                    .collect();
                self.engine.replace_resolver(resolver);
                tracing::info!("{why}: reloaded the GeoIP databases ({})", names.join(", "));
            }
            Err(e) => tracing::error!("{why}: keeping the GeoIP databases in use: {e}"),
        }
        self.geoip_stamps = file_stamps(&self.geoip);
    }

    /// Whether a database or overlay file was replaced or changed on disk since the last look.
    fn geoip_changed(&self) -> bool {
        !self.geoip_stamps.is_empty() && file_stamps(&self.geoip) != self.geoip_stamps
    }

    fn tick(&mut self) -> Result<(), Failure> {
        if self.geoip_changed() {
            self.reload_geoip("a GeoIP file changed on disk");
        }
        match self.engine.tick(wall_clock_ns()) {
            Err(e) if e.is_broken_pipe() => {
                self.outcome.broken_pipe = true;
                self.stop.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => Ok(other?),
        }
    }
}

/// Runs live capture and returns the exit code.
pub fn run(args: &LiveArgs) -> Result<u8, Failure> {
    let idle = seconds("--idle-timeout", args.idle_timeout)?;
    let duration = args
        .duration
        .map(|d| seconds("--duration", d))
        .transpose()?;
    let stats_every = if args.stats_interval == 0.0 {
        None
    } else {
        Some(seconds("--stats-interval", args.stats_interval)?)
    };
    if args.max_packets == Some(0) {
        return Err(Failure::Usage(
            "--max-packets must be at least 1 (leave it out to capture until stopped)".to_owned(),
        ));
    }
    if args.interfaces.len() > INTERFACES_MAX {
        return Err(Failure::Usage(format!(
            "at most {INTERFACES_MAX} interfaces may be captured at once"
        )));
    }
    for (i, name) in args.interfaces.iter().enumerate() {
        if args.interfaces[..i].contains(name) {
            return Err(Failure::Usage(format!(
                "interface {name} is given twice: every frame would be counted twice"
            )));
        }
    }
    let policy = args.policy.load()?;
    let resolver = args.geoip.open()?;
    let settings = Settings {
        max_flows: args.max_flows.max(1),
        idle_timeout_ns: i64::try_from(idle.as_nanos()).unwrap_or(i64::MAX),
        caps: args.limits.caps(),
    };
    // Open every interface before writing anything: a refusal leaves no empty output behind.
    let config = LiveConfig {
        promiscuous: !args.no_promisc,
    };
    let mut captures = Vec::with_capacity(args.interfaces.len());
    for (i, name) in args.interfaces.iter().enumerate() {
        let source = u16::try_from(i).unwrap_or(u16::MAX);
        captures.push(Capture::open(name, source, config).map_err(open_failure)?);
    }
    let output = match &args.json {
        Some(p) if p.as_os_str() == "-" => Some(Output::stdout()),
        Some(p) => Some(Output::create(p)?),
        None => None,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(out) = &output {
        sinks.push(Box::new(JsonLines::new(
            out.clone(),
            out.name().to_owned(),
            args.events,
            true,
        )));
    }
    if !args.no_terminal {
        let json_to_stdout = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
        sinks.push(terminal_sink(
            args.color,
            args.events.alert || args.json.is_some(),
            json_to_stdout,
        ));
    }
    let alert_rules: Vec<String> = policy
        .rules()
        .iter()
        .filter(|r| r.action == Action::Alert)
        .map(|r| r.id.clone())
        .collect();
    let names = args.interfaces.clone();
    let engine = Engine::new(policy, resolver, &settings, names.clone(), sinks)
        .with_source_kind("interface");
    // `--events dns` means the same as in replay: one event per DNS answer a device receives.
    let engine = if args.events.dns && args.json.is_some() {
        engine.with_dns_events()
    } else {
        engine
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))?;
    let mut live = Live {
        engine,
        output,
        counters: names.iter().map(|_| Counters::default()).collect(),
        names,
        started: std::time::Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
        max_packets: args.max_packets,
        processed: 0,
        outcome: Outcome::default(),
        geoip_stamps: file_stamps(&args.geoip),
        geoip: args.geoip.clone(),
    };
    runtime.block_on(drive(&mut live, captures, duration, stats_every))?;
    let Live {
        engine, outcome, ..
    } = live;
    let report = match engine.finish() {
        Ok(report) => report,
        Err(e) if e.is_broken_pipe() || outcome.broken_pipe => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    if outcome.broken_pipe {
        return Ok(0);
    }
    if let Some(path) = &args.junit {
        let xml = write_junit(&report.summary, &alert_rules);
        let name = path.display().to_string();
        File::create(path)
            .and_then(|mut f| f.write_all(xml.as_bytes()).and_then(|()| f.flush()))
            .map_err(|source| SinkError { name, source })?;
    }
    if outcome.capture_failed {
        return Ok(3);
    }
    let failed = args.fail_on.failed(report.max_severity);
    Ok(u8::from(failed))
}

fn open_failure(e: LiveError) -> Failure {
    Failure::Usage(e.to_string())
}

/// The loop: frames, timers and signals, until every capture thread has ended.
async fn drive(
    live: &mut Live<'_>,
    captures: Vec<Capture>,
    duration: Option<Duration>,
    stats_every: Option<Duration>,
) -> Result<(), Failure> {
    let signal_failure = |e: io::Error| Failure::Usage(format!("cannot watch signals: {e}"));
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_failure)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_failure)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(signal_failure)?;

    let (tx, mut rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    let mut threads = Vec::with_capacity(captures.len());
    for capture in captures {
        let tx = tx.clone();
        tracing::info!(
            "capturing on {} (link type {})",
            capture.name(),
            capture.link_type().0
        );
        match capture.spawn(Arc::clone(&live.stop), move |m| tx.blocking_send(m).is_ok()) {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                live.stop.store(true, Ordering::Relaxed);
                return Err(open_failure(e));
            }
        }
    }
    // Only the capture threads hold senders now: the channel closes when the last one ends.
    drop(tx);

    if stats_every.is_some() {
        live.stats()?;
    }
    let far = Duration::from_secs(86_400 * 365);
    let stats_period = stats_every.unwrap_or(far);
    let mut stats_timer = tokio::time::interval_at(Instant::now() + stats_period, stats_period);
    stats_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval_at(Instant::now() + EXPIRY_TICK, EXPIRY_TICK);
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(duration.unwrap_or(far));
    tokio::pin!(deadline);
    let mut stopping = false;

    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Batch(batch)) => live.batch(&batch)?,
                Some(Message::Failed { source, error }) => {
                    tracing::error!("{error}");
                    live.engine.input_error(usize::from(source), error.to_string());
                    live.outcome.capture_failed = true;
                }
                None => break,
            },
            _ = sigint.recv() => {
                if stopping {
                    std::process::exit(130);
                }
                tracing::info!("SIGINT: stopping (again to exit at once)");
                stopping = true;
                live.stop.store(true, Ordering::Relaxed);
            }
            _ = sigterm.recv() => {
                if stopping {
                    std::process::exit(143);
                }
                tracing::info!("SIGTERM: stopping");
                stopping = true;
                live.stop.store(true, Ordering::Relaxed);
            }
            _ = sighup.recv() => {
                live.reload_geoip("SIGHUP");
                if let Some(out) = &live.output {
                    match out.reopen() {
                        Ok(true) => tracing::info!("SIGHUP: reopened {}", out.name()),
                        Ok(false) => tracing::info!("SIGHUP: standard output is not reopened"),
                        Err(e) => tracing::error!("SIGHUP: cannot reopen, still writing to the old file: {e}"),
                    }
                }
            }
            _ = expiry.tick() => live.tick()?,
            _ = stats_timer.tick(), if stats_every.is_some() => live.stats()?,
            () = &mut deadline, if duration.is_some() && !stopping => {
                tracing::info!("--duration reached: stopping");
                stopping = true;
                live.stop.store(true, Ordering::Relaxed);
            }
        }
        if live.stop.load(Ordering::Relaxed) {
            stopping = true;
        }
    }
    for handle in threads {
        if handle.join().is_err() {
            tracing::error!("a capture thread panicked");
            live.outcome.capture_failed = true;
        }
    }
    // A last count, with everything drained, before the flow records and the summary.
    if stats_every.is_some() && !live.outcome.broken_pipe {
        live.stats()?;
    }
    Ok(())
}
