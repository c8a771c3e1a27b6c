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
mod status;
mod user;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use egresswatch::capture::live::evidence::Evidence;
use egresswatch::capture::live::{
    BUFFER_MIN_BYTES, Backend, Batch, Capture, LiveConfig, LiveError, Message, SNAPLEN,
    SNAPLEN_MIN, SOCKET_RCVBUF_BYTES, wall_clock_ns,
};
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::{InterfaceStats, Rfc3339, SCHEMA_VERSION, Stats};
use egresswatch::policy::Action;
use egresswatch::sink::{JsonLines, Sink, SinkError, write_junit};

use super::{Failure, GeoipArgs, OutputArgs, PolicyArgs, terminal_sink};
use output::Output;
use status::{ClearingSink, Figures, STATUS_EVERY, StatusLine};

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
  3    an interface failed, went down or disappeared while capturing (what was captured before
       is still reported, and the summary written; --wait-for-interface waits instead)
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
    #[command(flatten)]
    pub output: OutputArgs,
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
    /// Capture backend: afpacket (Linux AF_PACKET, always built) or libpcap (needs a binary built
    /// with `--features libpcap`).
    #[arg(long, value_name = "NAME", default_value = "afpacket", value_parser = Backend::parse)]
    pub backend: Backend,
    /// Capture only frames matching this BPF filter expression, e.g. 'not port 22' (libpcap
    /// backend; compiled by libpcap, a bad expression is refused at start).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Bytes kept of each frame (longer frames are cut; their length on the wire stays right).
    #[arg(long, value_name = "BYTES", default_value_t = SNAPLEN)]
    pub snaplen: usize,
    /// Kernel buffer per interface: SO_RCVBUF for afpacket, the ring size for libpcap (suffixes
    /// k, M, G: powers of 1024).
    #[arg(long, value_name = "SIZE", default_value_t = SOCKET_RCVBUF_BYTES as u64, value_parser = parse_size)]
    pub buffer_size: u64,
    /// Keep every captured frame in this pcapng file as evidence (an interface block per -i;
    /// alerts' `source.packet` is the frame's number in it).
    #[arg(long, value_name = "FILE")]
    pub write_pcap: Option<PathBuf>,
    /// Start a new evidence file (FILE.1, FILE.2, ...) once the current one reaches this size
    /// (suffixes k, M, G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "write_pcap")]
    pub write_pcap_size: Option<u64>,
    /// Drop to this user (and its groups) once every interface and output file is open.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// An interface that is missing or down (at start, or later) is waited for instead of
    /// ending the run.
    #[arg(long)]
    pub wait_for_interface: bool,
    /// No live status line on standard error (it is only drawn when that is a terminal).
    #[arg(long)]
    pub no_status: bool,
    /// libpcap backend: immediate mode (each frame readable as soon as the kernel has it, in a
    /// ring of fixed, frame-sized slots). By default libpcap packs frames densely into blocks
    /// handed over when full or 1 ms old: no drops at 200 k packets/s and a quarter of the CPU,
    /// about a millisecond more delay (BENCHMARKS.md, "Live capture").
    #[arg(long)]
    pub immediate: bool,
    // Caps (flood helper): one grouped block.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Largest size `--buffer-size` and `--write-pcap-size` take (1 TiB).
const SIZE_MAX: u64 = 1 << 40;

/// A byte count with an optional k, M or G suffix (powers of 1024; `B`/`iB` may follow).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (a number, with k, M or G after it)"))?;
    match n.checked_shl(shift) {
        Some(v) if v > 0 && v <= SIZE_MAX && v >> shift == n => Ok(v),
        _ => Err(format!("{text:?}: a size must be between 1 byte and 1 TiB")),
    }
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
    /// `--write-pcap`: written by the capture threads.
    evidence: Option<Arc<Mutex<Evidence>>>,
    status: status::Shared,
}

impl Live<'_> {
    /// Redraws the status line (when it is on).
    fn draw_status(&mut self) {
        let e = self.engine.live_stats();
        let figures = Figures {
            packets: e.frames,
            flows_active: e.flows_active,
            drops: self
                .counters
                .iter()
                .filter_map(|c| c.drops)
                .reduce(u64::saturating_add),
            alerts: e.alerts,
        };
        if let Ok(mut s) = self.status.try_borrow_mut() {
            s.draw(&figures);
        }
    }

    /// Flushes the evidence file before an immediate exit, so it ends with a whole block.
    fn flush_evidence(&self) {
        if let Some(ev) = &self.evidence {
            let _ = ev.lock().unwrap_or_else(PoisonError::into_inner).finish();
        }
    }

    /// Clears the status line before a log message.
    fn clear_status(&self) {
        if let Ok(mut s) = self.status.try_borrow_mut() {
            s.clear();
        }
    }

    /// Runs a batch through the engine.
    fn batch(&mut self, batch: &Batch) -> Result<(), Failure> {
        let Some(c) = self.counters.get_mut(usize::from(batch.source)) else {
            return Ok(());
        };
        if let Some(d) = batch.kernel_drops {
            c.drops = Some(d);
            self.engine.input_drops(usize::from(batch.source), d);
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
    let baseline = args.output.baseline()?;
    let settings = Settings {
        max_flows: args.limits.max_flows.max(1),
        idle_timeout_ns: i64::try_from(idle.as_nanos()).unwrap_or(i64::MAX),
        caps: args.limits.caps(),
    };
    if !args.backend.built() {
        return Err(open_failure(LiveError::BackendUnavailable));
    }
    if args.filter.is_some() && args.backend != Backend::Libpcap {
        return Err(Failure::Usage(
            "--filter needs --backend libpcap (BPF expressions are compiled by libpcap)".to_owned(),
        ));
    }
    if !(SNAPLEN_MIN..=SNAPLEN).contains(&args.snaplen) {
        return Err(Failure::Usage(format!(
            "--snaplen must be between {SNAPLEN_MIN} and {SNAPLEN} bytes, not {}",
            args.snaplen
        )));
    }
    if args.buffer_size < BUFFER_MIN_BYTES as u64 || args.buffer_size > i32::MAX as u64 {
        return Err(Failure::Usage(format!(
            "--buffer-size must be between {} KiB and 2 GiB",
            BUFFER_MIN_BYTES >> 10
        )));
    }
    let user = args
        .user
        .as_deref()
        .map(user::lookup)
        .transpose()
        .map_err(Failure::Usage)?;
    // Open every interface before writing anything: a refusal leaves no empty output behind.
    let config = LiveConfig {
        promiscuous: !args.no_promisc,
        backend: args.backend,
        snaplen: args.snaplen,
        buffer_bytes: usize::try_from(args.buffer_size).unwrap_or(usize::MAX),
        filter: args.filter.clone(),
        wait_for_interface: args.wait_for_interface,
        immediate: args.immediate,
    };
    let mut captures = Vec::with_capacity(args.interfaces.len());
    for (i, name) in args.interfaces.iter().enumerate() {
        let source = u16::try_from(i).unwrap_or(u16::MAX);
        captures.push(Capture::open(name, source, &config).map_err(open_failure)?);
    }
    let evidence = match &args.write_pcap {
        Some(path) => {
            let interfaces = captures
                .iter()
                .map(|c| {
                    (
                        c.link_type(),
                        u32::try_from(args.snaplen).unwrap_or(u32::MAX),
                    )
                })
                .collect();
            let ev =
                Evidence::create(path, interfaces, args.write_pcap_size).map_err(|source| {
                    SinkError {
                        name: path.display().to_string(),
                        source,
                    }
                })?;
            Some(Arc::new(Mutex::new(ev)))
        }
        None => None,
    };
    let output = match &args.output.json {
        Some(p) if p.as_os_str() == "-" => Some(Output::stdout()),
        Some(p) => Some(Output::create(p)?),
        None => None,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(out) = &output {
        sinks.push(Box::new(JsonLines::new(
            out.clone(),
            out.name().to_owned(),
            args.output.events,
            true,
        )));
    }
    let status = StatusLine::new(!args.output.no_terminal && !args.no_status);
    if !args.output.no_terminal {
        let json_to_stdout = args
            .output
            .json
            .as_ref()
            .is_some_and(|p| p.as_os_str() == "-");
        sinks.push(Box::new(ClearingSink {
            inner: terminal_sink(
                args.output.color,
                args.output.events.alert || args.output.json.is_some(),
                json_to_stdout,
            ),
            status: Rc::clone(&status),
        }));
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
    let engine = if args.output.events.dns && args.output.json.is_some() {
        engine.with_dns_events()
    } else {
        engine
    };
    let engine = match baseline {
        Some(baseline) => engine.with_baseline(baseline),
        None => engine,
    };
    // Every capture handle and output file is open: give up root now, before any thread starts.
    if let Some(user) = &user {
        user::drop_to(user).map_err(Failure::Usage)?;
        tracing::info!(
            "running as user {} (uid {}, gid {})",
            user.name,
            user.uid,
            user.gid
        );
    }
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
        evidence,
        status,
    };
    runtime.block_on(drive(&mut live, captures, duration, stats_every))?;
    let drops: u64 = live.counters.iter().filter_map(|c| c.drops).sum();
    let evidence_result = live
        .evidence
        .as_ref()
        .map(|e| e.lock().unwrap_or_else(PoisonError::into_inner).finish());
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
    if let Some(path) = &args.output.junit {
        let xml = write_junit(&report.summary, &alert_rules);
        let name = path.display().to_string();
        File::create(path)
            .and_then(|mut f| f.write_all(xml.as_bytes()).and_then(|()| f.flush()))
            .map_err(|source| SinkError { name, source })?;
    }
    if drops > 0 {
        eprintln!(
            "WARNING: {drops} packet(s) were DROPPED by the kernel and never seen: this run's \
             results are incomplete (see `drops` in the summary's inputs; a larger --buffer-size \
             or --backend libpcap may help)"
        );
    }
    if let Some(Err(e)) = evidence_result {
        return Err(Failure::Usage(format!(
            "--write-pcap: the evidence file could not be written: {e}"
        )));
    }
    if outcome.capture_failed {
        return Ok(3);
    }
    let failed = args.output.fail_on.failed(report.max_severity);
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
        let evidence = live.evidence.clone();
        let deliver = move |m: Message| {
            if let (Some(ev), Message::Batch(batch)) = (&evidence, &m) {
                ev.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write(batch);
            }
            tx.blocking_send(m).is_ok()
        };
        match capture.spawn(Arc::clone(&live.stop), deliver) {
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
    let status_on = live.status.borrow().enabled();
    let mut status_timer = tokio::time::interval(STATUS_EVERY);
    status_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(duration.unwrap_or(far));
    tokio::pin!(deadline);
    let mut stopping = false;

    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Batch(batch)) => live.batch(&batch)?,
                Some(Message::Failed { source, error }) => {
                    live.clear_status();
                    tracing::error!("{error}; stopping");
                    live.engine.input_error(usize::from(source), error.to_string());
                    live.outcome.capture_failed = true;
                    // What every interface captured so far is drained and reported.
                    live.stop.store(true, Ordering::Relaxed);
                }
                Some(Message::Notice { text, .. }) => {
                    live.clear_status();
                    tracing::warn!("{text}");
                }
                None => break,
            },
            _ = sigint.recv() => {
                if stopping {
                    live.flush_evidence();
                    std::process::exit(130);
                }
                live.clear_status();
                tracing::info!("SIGINT: stopping (again to exit at once)");
                stopping = true;
                live.stop.store(true, Ordering::Relaxed);
            }
            _ = sigterm.recv() => {
                if stopping {
                    live.flush_evidence();
                    std::process::exit(143);
                }
                live.clear_status();
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
            _ = status_timer.tick(), if status_on => live.draw_status(),
            _ = stats_timer.tick(), if stats_every.is_some() => live.stats()?,
            () = &mut deadline, if duration.is_some() && !stopping => {
                live.clear_status();
                tracing::info!("--duration reached: stopping");
                stopping = true;
                live.stop.store(true, Ordering::Relaxed);
            }
        }
        if live.stop.load(Ordering::Relaxed) {
            stopping = true;
        }
    }
    live.clear_status();
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("8k"), Ok(8 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("100MB"), Ok(100 << 20));
        for bad in ["", "0", "-1", "12x", "M", "2000G", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
