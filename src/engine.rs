//! The engine: wires frames through decode → flow → geoip and names → policy → events → sinks.
//!
//! The only module that knows the whole order. It owns the per-flow state the later stages need
//! (what the databases said about the remote, what the payload revealed, which rules fired),
//! the alert de-duplication, and the running summary. Time is packet time throughout, so a
//! replay is deterministic.
//!
//! A flow is judged against the policy when the device sends it its first packet, again
//! whenever its facts change (a name learned, the encryption verdict, the protocol), and a last
//! time when it ends; each evaluation's first matching rule decides, and a rule fires at most
//! once per flow.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::capture::Frame;
use crate::decode::{Decoder, Packet, Transport};
use crate::event::{
    Alert, DeviceRef, DeviceSummary, DnsRecord, EncryptionBytes, Event, FlowId, FlowRecord,
    InputSummary, NameSummary, RemoteRef, ResolverRef, ResolverSummary, Rfc3339, RuleCount,
    RuleRef, RunCounters, SCHEMA_VERSION, SourceRef, Summary, TcpFlags, Traffic, ViaRef,
};
use crate::flow::{EndReason, Flow, FlowConfig, FlowTable, Sides};
use crate::geoip::{self, CountryCode, DatabaseInfo, GeoInfo, Resolver};
use crate::names::attribution::{FlowInsight, PassiveDns};
use crate::policy::{Action, Policy, RuleId, Severity, Subject, TotalScope};
use crate::reroute::{RedirectHop, Target, Via, ViaKind};
use crate::resolvers::{ResolverKind, ResolverTrack, SUMMARY_RESOLVERS_MAX};
use crate::routes::{
    BASELINE_NAME_MOVED, BASELINE_NEW_COUNTRY, Baseline, NAME_REROUTED, RouteMemory,
};
use crate::sink::{Sink, SinkError};

use crate::limits::{Caps, Limit, Limits};

mod finish;

use finish::Ending;

/// Remembered (rule, device, remote) triples for de-duplication, at most.
pub const DEDUP_MAX_ENTRIES: usize = 65_536;
/// Names listed per device in the summary, at most; more are counted.
pub const SUMMARY_NAMES_MAX: usize = 4_096;
/// Hard-coded addresses listed per device in the summary, at most.
pub const SUMMARY_HARDCODED_MAX: usize = 1_024;
/// A flow that starts this soon after the capture's first packet may use an address whose DNS
/// answer came before the capture started: whether DNS named it is not judged.
pub const HARDCODED_GRACE_NS: i64 = 60_000_000_000;

/// Runtime knobs of a run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_flows: usize,
    pub idle_timeout_ns: i64,
    /// The other caps (docs/robustness.md, "Caps").
    pub caps: Caps,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_flows: crate::flow::FLOWS_MAX_DEFAULT,
            idle_timeout_ns: crate::flow::IDLE_TIMEOUT_DEFAULT_NS,
            caps: Caps::default(),
        }
    }
}

/// Flows ended and written per step when the input is over (see [`Engine::finish`]).
const FINISH_BATCH_FLOWS: usize = 1024;

/// What the engine keeps per flow.
#[derive(Default)]
pub struct FlowState {
    geo: GeoInfo,
    /// The remote may get a country and be judged: public, or covered by a lab override.
    judged: bool,
    device_name: Option<String>,
    /// The device has sent a packet: the flow is egress and may be evaluated.
    evaluated: bool,
    insight: FlowInsight,
    dns_named: Option<bool>,
    /// What the flow went through: the tunnel that carried its first packet (its far
    /// endpoint), or the proxy it asked to connect it onwards; with what the databases say.
    via: Option<Via>,
    fired: Vec<AlertId>,
    suppressed: u64,
    // --- proxies and redirects ---
    /// For a proxied flow: the destination the client named, judged instead of the proxy
    /// (whose facts moved to `via`; `geo` is the target's).
    target: Option<Box<Target>>,
    proxy_done: bool,
    /// The redirect the server answered, with its target resolved.
    redirect: Option<Box<RedirectHop>>,
    redirect_done: bool,
    /// Whether the flow carries the device's DNS queries, and of which kind.
    resolver: ResolverTrack,
}

/// A hash map keyed by what a capture controls (addresses, names): foldhash, seeded per process
/// like the flow index. std's SipHash was ~1% of a run's instructions through these maps alone
/// (run totals are looked up for every outbound packet when a policy counts them).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set keyed by what a capture controls, as [`Map`].
type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Bytes each device sent over the whole run per country and per name, kept only when a rule
/// uses `country_bytes_out_over` or `name_bytes_out_over`.
#[derive(Default)]
struct RunTotals {
    enabled: bool,
    thresholds: Vec<u64>,
    country: Map<(IpAddr, CountryCode), u64>,
    name: Map<(IpAddr, Arc<str>), u64>,
    /// (rule, device, country or name) that already fired.
    fired: Set<(RuleId, IpAddr, Arc<str>)>,
    /// Entries each map holds at most; 0 (the `Default`): [`RUN_TOTALS_MAX_ENTRIES`].
    cap: usize,
    /// Additions not kept because a map was full.
    dropped: u64,
}

/// Distinct (device, country) and (device, name) totals kept, each, at most.
pub const RUN_TOTALS_MAX_ENTRIES: usize = 262_144;

impl RunTotals {
    /// Adds an outbound packet's bytes; true when a total crossed a threshold.
    fn add(&mut self, flow: &Flow<FlowState>, bytes: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let device = flow.device.ip;
        let mut crossed = false;
        let cap = if self.cap == 0 {
            RUN_TOTALS_MAX_ENTRIES
        } else {
            self.cap
        };
        let dropped = &mut self.dropped;
        let mut bump = |total: &mut u64| {
            let before = *total;
            *total = total.saturating_add(bytes);
            crossed |= self_crossed(&self.thresholds, before, *total);
        };
        if let Some(c) = flow.ann.geo.country {
            match bounded_entry(&mut self.country, (device, c), cap) {
                Some(t) => bump(t),
                None => *dropped += 1,
            }
        }
        if let Some(h) = &flow.ann.insight.hostname {
            match bounded_entry(&mut self.name, (device, h.name.clone()), cap) {
                Some(t) => bump(t),
                None => *dropped += 1,
            }
        }
        crossed
    }

    /// The run totals for this flow's country and name.
    fn of(&self, flow: &Flow<FlowState>) -> (u64, u64) {
        if !self.enabled {
            return (0, 0);
        }
        let device = flow.device.ip;
        let country = flow
            .ann
            .geo
            .country
            .and_then(|c| self.country.get(&(device, c)).copied())
            .unwrap_or(0);
        let name = flow
            .ann
            .insight
            .hostname
            .as_ref()
            .and_then(|h| self.name.get(&(device, h.name.clone())).copied())
            .unwrap_or(0);
        (country, name)
    }
}

fn self_crossed(thresholds: &[u64], before: u64, now: u64) -> bool {
    thresholds.iter().any(|&t| before <= t && t < now)
}

fn bounded_entry<K: std::hash::Hash + Eq>(
    map: &mut Map<K, u64>,
    key: K,
    cap: usize,
) -> Option<&mut u64> {
    if map.len() >= cap && !map.contains_key(&key) {
        return None;
    }
    Some(map.entry(key).or_insert(0))
}

/// What raised an alert: a policy rule, or one of the engine's built-in checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AlertId {
    Rule(RuleId),
    Builtin(&'static str),
    /// A rule that matched the target of a redirect answered on the flow.
    Redirect(RuleId),
}

/// An alert about to be written.
struct Raised {
    key: AlertId,
    id: String,
    severity: Severity,
    reason: String,
    /// The remote and via to report instead of the flow's (a redirect's target and server).
    over: Option<Box<(RemoteRef, ViaRef)>>,
}

/// Alerts are de-duplicated per (alert, device, destination): the destination's address, and
/// its name when only the name is known (a proxied target the capture never resolved).
type DedupKey = (AlertId, IpAddr, Option<IpAddr>, Option<Arc<str>>);

#[derive(Default)]
struct DeviceAgg {
    device: Option<DeviceRef>,
    egress: Traffic,
    countries: BTreeMap<String, Traffic>,
    asns: BTreeMap<u32, Traffic>,
    internal: Traffic,
    encryption: EncryptionBytes,
    names: BTreeMap<String, NameSummary>,
    names_dropped: u64,
    hardcoded: Vec<IpAddr>,
    alerts: BTreeMap<String, RuleCount>,
    /// The addresses of `hardcoded`, for O(1) membership.
    hardcoded_set: Set<IpAddr>,
    resolvers: BTreeMap<(IpAddr, ResolverKind), ResolverSummary>,
    resolvers_dropped: u64,
}

/// The result of a run.
pub struct Report {
    pub summary: Summary,
    /// The most severe alert raised (written or de-duplicated), if any.
    pub max_severity: Option<Severity>,
}

/// Everything but the flow table and the decoder, so a flow borrowed from the table can be
/// judged and reported.
struct Core<'s> {
    resolver: Resolver,
    policy: Policy,
    /// The ids of the policy's rules, by index: what flow records name the rules that fired by.
    rule_ids: Vec<String>,
    sinks: Vec<Box<dyn Sink + 's>>,
    inputs: Vec<InputSummary>,
    dns: PassiveDns,
    dedup: Map<DedupKey, i64>,
    devices: BTreeMap<IpAddr, DeviceAgg>,
    rule_counts: BTreeMap<String, RuleCount>,
    counters: RunCounters,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    max_severity: Option<Severity>,
    /// `bytes_out_over` thresholds of the policy, sorted: crossing one re-evaluates a flow.
    bytes_thresholds: Vec<u64>,
    routes: RouteMemory,
    baseline: Option<Baseline>,
    totals: RunTotals,
    /// `file` for replays, `interface` for live capture: `source.kind` in events.
    source_kind: &'static str,
    /// Redirect targets a device was sent to, per (device, target name or address), with the
    /// redirecting server and when: a flow that follows one gets the server as its `via`.
    redirects: Map<(IpAddr, Arc<str>), (Via, i64)>,
    caps: Caps,
    /// What the caps the engine enforces itself dropped (the others are read at the end).
    limits: Limits,
    /// Bytes all flows hold in reassembly buffers now.
    reassembly_held: usize,
    max_flows: usize,
    /// Names, ASNs and hard-coded addresses listed over all devices.
    summary_entries: usize,
    /// While the flows left at the end of the input are ended on two threads: the alerts and
    /// flow records of the part being ended, in order, until their turn to be written (see
    /// [`Engine::finish`]).
    ending: Option<Vec<Ending>>,
}

/// Redirect targets remembered for flows to follow, at most; beyond, expired ones go first, then
/// all (counted in `redirects_forgotten`).
pub const REDIRECTS_PENDING_MAX: usize = 4_096;
/// How long after a redirect a flow to its target counts as following it.
pub const REDIRECT_FOLLOW_NS: i64 = 60_000_000_000;

/// One run of the pipeline.
pub struct Engine<'s> {
    decoder: Decoder,
    flows: FlowTable<FlowState>,
    ended: Vec<(Flow<FlowState>, EndReason)>,
    core: Core<'s>,
    /// Threads [`Engine::finish`] may use (see [`Engine::set_threads`]).
    threads: usize,
}

impl<'s> Engine<'s> {
    /// A run over inputs with these names (indexed by [`Frame::source`]).
    pub fn new(
        policy: Policy,
        mut resolver: Resolver,
        settings: &Settings,
        input_names: Vec<String>,
        sinks: Vec<Box<dyn Sink + 's>>,
    ) -> Engine<'s> {
        resolver.set_overrides(policy.overrides().to_vec());
        let bytes_thresholds = policy.bytes_thresholds();
        let needs_totals = policy.needs().totals;
        let total_thresholds = policy.total_thresholds();
        let sides = Sides {
            local_networks: policy.local_networks().to_vec(),
            device_networks: policy.device_networks(),
            device_macs: policy.device_macs(),
        };
        Engine {
            decoder: Decoder::with_fragment_cap(settings.caps.fragments),
            flows: FlowTable::new(FlowConfig {
                max_flows: settings.max_flows,
                idle_timeout_ns: settings.idle_timeout_ns,
                sides,
            }),
            ended: Vec::new(),
            core: Core {
                resolver,
                rule_ids: policy.rules().iter().map(|r| r.id.clone()).collect(),
                policy,
                sinks,
                inputs: input_names
                    .into_iter()
                    .map(|name| InputSummary {
                        name,
                        frames: 0,
                        error: None,
                        drops: None,
                    })
                    .collect(),
                dns: PassiveDns::with_cap(settings.caps.dns_cache),
                dedup: Map::default(),
                devices: BTreeMap::new(),
                rule_counts: BTreeMap::new(),
                counters: RunCounters::default(),
                first_ts: None,
                last_ts: None,
                max_severity: None,
                bytes_thresholds,
                routes: RouteMemory::with_cap(settings.caps.routes),
                baseline: None,
                totals: RunTotals {
                    enabled: needs_totals,
                    thresholds: total_thresholds,
                    cap: settings.caps.run_totals.max(1),
                    ..RunTotals::default()
                },
                source_kind: "file",
                redirects: Map::default(),
                caps: settings.caps,
                limits: Limits::default(),
                reassembly_held: 0,
                max_flows: settings.max_flows,
                summary_entries: 0,
                ending: None,
            },
            threads: 1,
        }
    }

    /// The threads the engine may use; 1 (the default) keeps it on the caller's thread. With 2,
    /// [`Engine::finish`] writes the records of the flows left at the end of the input as JSON
    /// on a second thread while it ends the next ones (the replay's reading thread is idle by
    /// then). The output is the same byte for byte.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Names the kind of input in `source.kind`: `file` (the default) or `interface`.
    pub fn with_source_kind(mut self, kind: &'static str) -> Engine<'s> {
        self.core.source_kind = kind;
        self
    }

    /// Also writes `dns` events: one per question of each DNS response a device receives.
    pub fn with_dns_events(mut self) -> Engine<'s> {
        self.core.dns.record = true;
        self
    }

    /// Compares this run with an earlier one: alerts on new countries and moved names.
    pub fn with_baseline(mut self, baseline: Baseline) -> Engine<'s> {
        self.core.baseline = Some(baseline);
        self
    }

    /// Records that an input failed (damaged, unreadable); the run goes on with the others.
    pub fn input_error(&mut self, source: usize, message: String) {
        if let Some(input) = self.core.inputs.get_mut(source) {
            input.error = Some(message);
        }
    }

    /// Live capture: the drop count an interface's backend reports (a running total).
    pub fn input_drops(&mut self, source: usize, drops: u64) {
        if let Some(input) = self.core.inputs.get_mut(source) {
            input.drops = Some(drops);
        }
    }

    /// Runs one frame through the pipeline.
    pub fn process(&mut self, frame: &Frame<'_>) -> Result<(), SinkError> {
        let packet = self.decoder.decode(frame);
        self.process_decoded(frame, packet)
    }

    /// [`Engine::process`] for a frame decoded elsewhere (by the reading thread, with the
    /// decoder lent by [`Engine::lend_decoder`]): `packet` is what `Decoder::decode` gave.
    pub fn process_decoded(
        &mut self,
        frame: &Frame<'_>,
        packet: Option<Packet<'_>>,
    ) -> Result<(), SinkError> {
        let core = &mut self.core;
        core.counters.frames += 1;
        if let Some(input) = core.inputs.get_mut(usize::from(frame.source)) {
            input.frames += 1;
        }
        core.first_ts = Some(core.first_ts.map_or(frame.ts_ns, |t| t.min(frame.ts_ns)));
        core.last_ts = Some(core.last_ts.map_or(frame.ts_ns, |t| t.max(frame.ts_ns)));
        let Some(packet) = packet else {
            return Ok(());
        };
        self.flows.expire(frame.ts_ns, &mut self.ended);
        flush_ended(core, &mut self.ended)?;
        let source = (frame.source, frame.index);
        let update = self
            .flows
            .update(&packet, frame.ts_ns, source, &mut self.ended);
        let flow = update.flow;
        if update.is_new {
            core.start_flow(flow, frame.ts_ns);
            if let Some(t) = packet.tunnel {
                // The far endpoint: the outer address that is not local.
                let far = if core.policy.is_local(t.outer_src) {
                    t.outer_dst
                } else {
                    t.outer_src
                };
                flow.ann.via = Some(Via {
                    kind: ViaKind::Tunnel {
                        kind: t.kind,
                        depth: t.depth,
                    },
                    ip: far,
                    port: None,
                    geo: core.resolver.lookup(far),
                });
            }
        }
        let device = flow.device.ip;
        let held_before = flow.ann.insight.held_bytes();
        let learned =
            flow.ann
                .insight
                .observe(&packet, update.outbound, device, frame.ts_ns, &mut core.dns);
        core.charge_reassembly(flow, held_before);
        if !core.dns.pending.is_empty() {
            core.write_dns_events()?;
        }
        if learned.changed {
            core.reroute(flow, frame.ts_ns, source)?;
        }
        let resolver_found = core.observe_resolver(flow, &packet, update.outbound);
        let first_out = update.outbound && !flow.ann.evaluated;
        if first_out {
            flow.ann.evaluated = true;
            let d = core.policy.device(flow.device.ip, flow.device_mac);
            flow.ann.device_name = d.map(|d| d.name.clone());
        }
        // A `bytes_out_over` threshold crossed by this packet changes a fact too.
        let crossed = update.outbound && {
            let now = flow.bytes_out;
            let before = now.saturating_sub(u64::from(packet.ip_len));
            core.bytes_thresholds
                .iter()
                .any(|&t| before <= t && t < now)
        };
        let crossed = crossed
            || (update.outbound
                && flow.ann.judged
                && core.totals.add(flow, u64::from(packet.ip_len)));
        if flow.ann.evaluated
            && flow.ann.judged
            && (first_out || learned.changed || crossed || resolver_found)
        {
            core.check_routes(flow, frame.ts_ns, source)?;
            core.judge(flow, frame.ts_ns, source, false)?;
        }
        if flow.ann.evaluated && (first_out || learned.changed || resolver_found) {
            core.check_resolver(flow, frame.ts_ns, source, false)?;
        }
        flush_ended(core, &mut self.ended)
    }

    /// Hands the decoder (its fragment state and counters) to whoever decodes frames for
    /// [`Engine::process_decoded`]; give it back with [`Engine::return_decoder`] before
    /// [`Engine::finish`], so the summary counts what it decoded.
    pub fn lend_decoder(&mut self) -> Decoder {
        std::mem::take(&mut self.decoder)
    }

    /// Takes back the decoder lent by [`Engine::lend_decoder`].
    pub fn return_decoder(&mut self, decoder: Decoder) {
        self.decoder = decoder;
    }

    /// Ends every flow, writes the flow records and the summary, and flushes the sinks.
    ///
    /// The flows are ended a part at a time ([`FINISH_BATCH_FLOWS`]), so the ended flows
    /// (hundreds of bytes each) never all sit in one list. With two threads (see
    /// [`Engine::set_threads`]) and more than one part left, a second thread builds each part's
    /// flow records and writes them as JSON while this one ends the next part.
    pub fn finish(mut self) -> Result<Report, SinkError> {
        let formatter = self.threads >= 2
            && self.flows.len() > FINISH_BATCH_FLOWS
            && self.core.sinks.iter().any(|s| s.wants_flows());
        if !(formatter && self.end_flows_on_two_threads()?) {
            while self.flows.drain_some(&mut self.ended, FINISH_BATCH_FLOWS) {
                flush_ended(&mut self.core, &mut self.ended)?;
            }
            flush_ended(&mut self.core, &mut self.ended)?;
        }
        let limits = self.limits();
        let mut core = self.core;
        let d = self.decoder.stats();
        let f = self.flows.stats();
        let c = &mut core.counters;
        c.packets = d.packets;
        c.not_ip = d.not_ip;
        c.truncated = d.truncated;
        c.malformed = d.malformed;
        c.unsupported_link_types = d.unsupported_link_types.clone();
        c.fragments = d.fragments;
        c.fragments_unmatched = d.fragments_unmatched;
        c.tunnels = d.tunnels.to_map();
        c.tunnel_malformed = d.tunnel_malformed;
        c.tunnel_not_decoded = d.tunnel_not_decoded;
        c.tunnel_depth_exceeded = d.tunnel_depth_exceeded;
        c.flows = f.created;
        c.flows_evicted = f.evicted;
        c.flows_peak = f.peak;
        c.geoip_lookup_errors = core.resolver.lookup_errors();
        c.dns_responses = core.dns.responses;
        c.dns_malformed = core.dns.malformed;
        c.dns_cache_evicted = core.dns.evicted;
        let devices = std::mem::take(&mut core.devices)
            .into_values()
            .filter_map(|agg| {
                Some(DeviceSummary {
                    device: agg.device?,
                    egress: agg.egress,
                    countries: agg.countries,
                    asns: agg.asns,
                    internal: agg.internal,
                    encryption: agg.encryption,
                    names: agg.names,
                    names_dropped: agg.names_dropped,
                    hardcoded: agg.hardcoded,
                    alerts: agg.alerts,
                    resolvers: agg.resolvers.into_values().collect(),
                    resolvers_dropped: agg.resolvers_dropped,
                })
            })
            .collect();
        let summary = Summary {
            timestamp: core.last_ts.map(Rfc3339),
            event_type: "summary",
            schema: SCHEMA_VERSION,
            tool: concat!("egresswatch ", env!("CARGO_PKG_VERSION")).to_owned(),
            policy: core
                .policy
                .name()
                .unwrap_or(core.policy.source())
                .to_owned(),
            first_packet: core.first_ts.map(Rfc3339),
            last_packet: core.last_ts.map(Rfc3339),
            inputs: std::mem::take(&mut core.inputs),
            databases: core.resolver.databases().to_vec(),
            counters: std::mem::take(&mut core.counters),
            alerts: std::mem::take(&mut core.rule_counts),
            devices,
            limits,
        };
        for sink in &mut core.sinks {
            sink.emit(Event::Summary(&summary))?;
        }
        for sink in &mut core.sinks {
            sink.finish()?;
        }
        Ok(Report {
            summary,
            max_severity: core.max_severity,
        })
    }
}

/// Writes the flows that ended and folds them into the summary. Called twice per packet and
/// almost always with nothing to do: the check is inlined, the work is not.
#[inline]
fn flush_ended(
    core: &mut Core<'_>,
    ended: &mut Vec<(Flow<FlowState>, EndReason)>,
) -> Result<(), SinkError> {
    if ended.is_empty() {
        return Ok(());
    }
    end_flows(core, ended)
}

#[inline(never)]
fn end_flows(
    core: &mut Core<'_>,
    ended: &mut Vec<(Flow<FlowState>, EndReason)>,
) -> Result<(), SinkError> {
    let mut result = Ok(());
    for (mut flow, reason) in ended.drain(..) {
        if result.is_ok() {
            result = core.end_flow(&mut flow, reason);
            if result.is_ok()
                && let Some(ending) = &mut core.ending
            {
                // Its record is built and written on the formatter thread (engine/finish.rs).
                ending.push(Ending::Flow(flow, reason));
            }
        }
    }
    result
}

impl Core<'_> {
    /// What is known about a new flow's remote: the databases, and DNS answers seen earlier.
    fn start_flow(&mut self, flow: &mut Flow<FlowState>, ts_ns: i64) {
        let remote = flow.remote.ip;
        flow.ann.geo = self.resolver.lookup(remote);
        flow.ann.judged =
            !flow.internal && (geoip::is_public(remote) || flow.ann.geo != GeoInfo::default());
        let named = self.dns.lookup(flow.device.ip, remote, ts_ns).cloned();
        if let Some(name) = &named {
            flow.ann.insight.offer_dns(name);
        }
        let in_grace = self
            .first_ts
            .is_some_and(|t0| ts_ns.saturating_sub(t0) < HARDCODED_GRACE_NS);
        flow.ann.dns_named = match (named.is_some(), flow.ann.judged, in_grace) {
            (true, _, _) => Some(true),
            (false, true, false) => Some(false),
            _ => None,
        };
        self.follow_redirect(flow, ts_ns);
    }

    fn write_dns_events(&mut self) -> Result<(), SinkError> {
        for seen in std::mem::take(&mut self.dns.pending) {
            let record = DnsRecord {
                timestamp: Rfc3339(seen.ts_ns),
                event_type: "dns",
                schema: SCHEMA_VERSION,
                device: DeviceRef {
                    ip: seen.device,
                    port: None,
                    mac: None,
                    name: self
                        .policy
                        .device(seen.device, None)
                        .map(|d| d.name.clone()),
                },
                resolver: seen.resolver,
                query: seen.query,
                rcode: seen.rcode,
                answers: seen.addresses,
                cname_chain: seen.cname_chain,
                ttl: seen.ttl,
            };
            for sink in &mut self.sinks {
                sink.emit(Event::Dns(&record))?;
            }
        }
        Ok(())
    }

    /// The built-in re-routing checks: a name served from another country than earlier in this
    /// run, and, with a baseline, countries and names that moved since that run.
    fn check_routes(
        &mut self,
        flow: &mut Flow<FlowState>,
        ts_ns: i64,
        source: (u16, u64),
    ) -> Result<(), SinkError> {
        let Some(country) = flow.ann.geo.country else {
            return Ok(());
        };
        // Who and where, as alerts word them: written only for an alert (this check runs on
        // every fact change of every judged flow, and almost never finds anything).
        let who = |flow: &Flow<FlowState>| {
            flow.ann
                .device_name
                .clone()
                .unwrap_or_else(|| flow.device.ip.to_string())
        };
        // The judged destination (a proxied flow's target), as alerts show it.
        let remote = |flow: &Flow<FlowState>| {
            judged_remote(flow)
                .0
                .map_or_else(|| "address unknown".to_owned(), |ip| ip.to_string())
        };
        let name = flow.ann.insight.hostname.as_ref().map(|h| h.name.clone());
        if let Some(name) = &name
            && let Some(earlier) = self.routes.observe(flow.device.ip, name, country)
        {
            let (who, remote) = (who(flow), remote(flow));
            let reason = format!(
                "{who} reached {name} in {country} ({remote}); earlier in this run it was served from {earlier}"
            );
            self.raise_builtin(flow, NAME_REROUTED, Severity::Medium, reason, ts_ns, source)?;
        }
        let Some(baseline) = &self.baseline else {
            return Ok(());
        };
        let key = Baseline::device_key(flow.ann.device_name.as_deref(), flow.device.ip);
        let mut found = Vec::new();
        if baseline.is_new_country(&key, country) {
            let (who, remote) = (who(flow), remote(flow));
            found.push((
                BASELINE_NEW_COUNTRY,
                format!(
                    "{who} sent data to {remote} in {country}, a country the baseline never saw it send to"
                ),
            ));
        }
        if let Some(name) = &name
            && let Some(before) = baseline.name_moved(&key, name, country)
        {
            let (who, remote) = (who(flow), remote(flow));
            found.push((
                    BASELINE_NAME_MOVED,
                    format!(
                        "{who} reached {name} in {country} ({remote}); in the baseline it was served from {before}"
                    ),
                ));
        }
        for (id, reason) in found {
            self.raise_builtin(flow, id, Severity::High, reason, ts_ns, source)?;
        }
        Ok(())
    }

    fn raise_builtin(
        &mut self,
        flow: &mut Flow<FlowState>,
        id: &'static str,
        severity: Severity,
        reason: String,
        ts_ns: i64,
        source: (u16, u64),
    ) -> Result<(), SinkError> {
        let raised = Raised {
            key: AlertId::Builtin(id),
            id: id.to_owned(),
            severity,
            reason,
            over: None,
        };
        self.raise(flow, raised, ts_ns, source, false)
    }

    /// Evaluates the policy on a flow's current facts and writes the alert it raises, if any.
    fn judge(
        &mut self,
        flow: &mut Flow<FlowState>,
        ts_ns: i64,
        source: (u16, u64),
        ended: bool,
    ) -> Result<(), SinkError> {
        let device = self.policy.device(flow.device.ip, flow.device_mac);
        let totals = self.totals.of(flow);
        let insight = &flow.ann.insight;
        let (remote_ip, remote_port) = judged_remote(flow);
        let via = flow.ann.via.as_ref();
        let subject = Subject {
            device,
            device_ip: flow.device.ip,
            remote_ip: remote_ip.unwrap_or_else(|| unspecified_like(flow.remote.ip)),
            remote_port,
            transport: flow.transport,
            country: flow.ann.geo.country,
            asn: flow.ann.geo.asn,
            as_org: flow.ann.geo.as_org.as_deref(),
            hostname: insight.hostname.as_ref().map(|h| &*h.name),
            queried_name: insight.dns.as_ref().map(|d| &*d.query),
            encrypted: insight.encrypted(ended),
            bytes_out: flow.bytes_out,
            country_bytes_out: totals.0,
            name_bytes_out: totals.1,
            dns_named: flow.ann.dns_named,
            app_proto: insight.protocol(ended),
            via_kind: via.map(|v| v.kind.as_str()),
            via_ip: via.map(|v| v.ip),
            via_country: via.and_then(|v| v.geo.country),
            resolver: flow.ann.resolver.kind,
        };
        let Some(rule_id) = self.policy.evaluate(&subject) else {
            return Ok(());
        };
        let Some(rule) = self.policy.rules().get(rule_id) else {
            return Ok(());
        };
        if rule.action != Action::Alert || flow.ann.fired.contains(&AlertId::Rule(rule_id)) {
            return Ok(());
        }
        // A run-total rule fires once per device and country (or name) in the run.
        if let Some(scope) = rule.total_scope() {
            let what: Arc<str> = match scope {
                TotalScope::Country => subject.country.map(|c| Arc::from(c.as_str())),
                TotalScope::Name => subject.hostname.map(Arc::from),
            }
            .unwrap_or_else(|| Arc::from(""));
            if !self.totals.fired.insert((rule_id, flow.device.ip, what)) {
                return Ok(());
            }
        }
        let reason = rule.reason(&subject);
        let (id, severity) = (rule.id.clone(), rule.severity);
        self.raise(
            flow,
            Raised {
                key: AlertId::Rule(rule_id),
                id,
                severity,
                reason,
                over: None,
            },
            ts_ns,
            source,
            ended,
        )
    }

    /// Writes an alert for a flow: at most once per flow and alert id, and de-duplicated per
    /// (id, device, remote) within the policy's window.
    fn raise(
        &mut self,
        flow: &mut Flow<FlowState>,
        raised: Raised,
        ts_ns: i64,
        source: (u16, u64),
        ended: bool,
    ) -> Result<(), SinkError> {
        if flow.ann.fired.contains(&raised.key) {
            return Ok(());
        }
        flow.ann.fired.push(raised.key);
        self.max_severity = self.max_severity.max(Some(raised.severity));
        let key: DedupKey = match &raised.over {
            Some(over) => (
                raised.key,
                flow.device.ip,
                over.0.ip,
                over.0.hostname.as_deref().map(Arc::from),
            ),
            None => {
                let ip = judged_remote(flow).0;
                let name = flow
                    .ann
                    .target
                    .as_ref()
                    .filter(|t| t.addr.is_none())
                    .and_then(|t| t.host.clone());
                (raised.key, flow.device.ip, ip, name)
            }
        };
        let suppressed = self
            .dedup
            .get(&key)
            .is_some_and(|&last| ts_ns.saturating_sub(last) < self.policy.dedup_window_ns());
        count_alert(
            &mut self.rule_counts,
            &raised.id,
            raised.severity,
            !suppressed,
        );
        match device_agg(&mut self.devices, flow.device.ip, self.caps.devices) {
            Some(agg) => count_alert(&mut agg.alerts, &raised.id, raised.severity, !suppressed),
            None => self.limits.devices.drop_n(1),
        }
        if suppressed {
            flow.ann.suppressed += 1;
            self.counters.alerts_suppressed += 1;
            return Ok(());
        }
        self.counters.alerts += 1;
        if self.dedup.len() >= self.caps.dedup.max(1) {
            self.limits.dedup.drop_n(self.dedup.len() as u64);
            self.dedup.clear();
        }
        self.dedup.insert(key, ts_ns);
        let (remote, via) = match raised.over {
            Some(over) => (over.0, Some(over.1)),
            None => (remote_ref(flow, self.resolver.databases()), via_ref(flow)),
        };
        let alert = Alert {
            timestamp: Rfc3339(ts_ns),
            event_type: "alert",
            schema: SCHEMA_VERSION,
            flow_id: FlowId(flow.id),
            rule: RuleRef {
                id: raised.id,
                severity: raised.severity,
                reason: raised.reason,
            },
            device: device_ref(flow),
            remote,
            via,
            transport: flow.transport,
            app_proto: flow.ann.insight.app_proto.map(|p| p.as_str()),
            encrypted: flow.ann.insight.encrypted(ended),
            bytes_out: flow.bytes_out,
            bytes_in: flow.bytes_in,
            packets_out: flow.packets_out,
            packets_in: flow.packets_in,
            source: SourceRef {
                kind: self.source_kind,
                name: input_name(&self.inputs, source.0),
                packet: source.1,
            },
            resolver: resolver_ref(flow),
        };
        if let Some(ending) = &mut self.ending {
            ending.push(Ending::Alert(alert));
            return Ok(());
        }
        for sink in &mut self.sinks {
            sink.emit(Event::Alert(&alert))?;
        }
        Ok(())
    }

    /// What flow records name by index, borrowed from this run.
    fn record_names(&self) -> RecordNames<'_> {
        RecordNames {
            rule_ids: &self.rule_ids,
            inputs: &self.inputs,
            databases: self.resolver.databases(),
            source_kind: self.source_kind,
        }
    }

    fn end_flow(&mut self, flow: &mut Flow<FlowState>, reason: EndReason) -> Result<(), SinkError> {
        // The last evaluation, with the final facts (a handshake that never completed is now
        // known not to be encrypted).
        if flow.ann.evaluated && flow.ann.judged {
            let before = flow.ann.insight.encrypted(false);
            if before != flow.ann.insight.encrypted(true) {
                self.judge(flow, flow.last_seen_ns, flow.first_packet, true)?;
            }
        }
        self.check_resolver(flow, flow.last_seen_ns, flow.first_packet, true)?;
        self.fold_resolver(flow);
        let device = device_ref(flow);
        let encrypted = flow.ann.insight.encrypted(true);
        self.reassembly_held = self
            .reassembly_held
            .saturating_sub(flow.ann.insight.held_bytes());
        // A device beyond the cap is folded into a scratch aggregate that is thrown away.
        let mut spare = None;
        let agg = match device_agg(&mut self.devices, flow.device.ip, self.caps.devices) {
            Some(agg) => agg,
            None => {
                self.limits.devices.drop_n(1);
                spare.insert(DeviceAgg::default())
            }
        };
        if agg.device.is_none() || agg.device.as_ref().is_some_and(|d| d.mac.is_none()) {
            agg.device = Some(DeviceRef {
                port: None,
                ..device.clone()
            });
        }
        let (bo, bi, po, pi) = (
            flow.bytes_out,
            flow.bytes_in,
            flow.packets_out,
            flow.packets_in,
        );
        if flow.internal {
            agg.internal.add(bo, bi, po, pi);
        } else {
            agg.egress.add(bo, bi, po, pi);
            let code = flow.ann.geo.country;
            let country = match (&code, flow.ann.judged) {
                (Some(c), _) => c.as_str(),
                (None, true) => "unknown",
                (None, false) => "non-public",
            };
            if let Some(asn) = flow.ann.geo.asn {
                if let Some(t) = agg.asns.get_mut(&asn) {
                    t.add(bo, bi, po, pi);
                } else if agg.asns.len() >= self.caps.asns_per_device {
                    self.limits.asns_per_device.drop_n(1);
                } else if self.summary_entries >= self.caps.summary_entries {
                    self.limits.summary_entries.drop_n(1);
                } else {
                    self.summary_entries += 1;
                    agg.asns.entry(asn).or_default().add(bo, bi, po, pi);
                }
            }
            match encrypted {
                Some(true) => agg.encryption.encrypted_bytes_out += bo,
                Some(false) => agg.encryption.plaintext_bytes_out += bo,
                None => agg.encryption.no_payload_bytes_out += bo,
            }
            if let Some(h) = &flow.ann.insight.hostname {
                let known = agg.names.contains_key(&*h.name);
                let listed = known
                    || (agg.names.len() < self.caps.names_per_device
                        && self.summary_entries < self.caps.summary_entries);
                if listed {
                    if !known {
                        self.summary_entries += 1;
                    }
                    // Looked up by reference first: the key is copied only for a new name.
                    let n = match agg.names.get_mut(&*h.name) {
                        Some(n) => n,
                        None => agg.names.entry(h.name.to_string()).or_default(),
                    };
                    if !n.countries.contains(country) {
                        n.countries.insert(country.to_owned());
                    }
                    n.flows += 1;
                    n.bytes_out += bo;
                    // Source names sort in precedence order: dns < http < quic < sni.
                    if n.source.is_empty() || n.source.as_str() < h.source.as_str() {
                        n.source = h.source.as_str().to_owned();
                    }
                } else {
                    agg.names_dropped += 1;
                    if agg.names.len() >= self.caps.names_per_device {
                        self.limits.names_per_device.drop_n(1);
                    } else {
                        self.limits.summary_entries.drop_n(1);
                    }
                }
            }
            // A proxied flow's hard-coded address is its target's.
            let hard_ip = judged_remote(flow).0.unwrap_or(flow.remote.ip);
            if flow.ann.dns_named == Some(false)
                && flow.packets_out > 0
                && !agg.hardcoded_set.contains(&hard_ip)
            {
                if agg.hardcoded.len() >= self.caps.hardcoded_per_device {
                    self.limits.hardcoded_per_device.drop_n(1);
                } else if self.summary_entries >= self.caps.summary_entries {
                    self.limits.summary_entries.drop_n(1);
                } else {
                    self.summary_entries += 1;
                    agg.hardcoded.push(hard_ip);
                    agg.hardcoded_set.insert(hard_ip);
                }
            }
            match agg.countries.get_mut(country) {
                Some(t) => t.add(bo, bi, po, pi),
                None => agg
                    .countries
                    .entry(country.to_owned())
                    .or_default()
                    .add(bo, bi, po, pi),
            }
        }
        if flow.ann.insight.tls_failures > 0 {
            self.counters.tls_hello_failures += 1;
        }
        if self.ending.is_some() || !self.sinks.iter().any(|s| s.wants_flows()) {
            // Ending on two threads, the formatter writes the record (see `end_flows`).
            return Ok(());
        }
        let record = flow_record(flow, reason, &self.record_names());
        for sink in &mut self.sinks {
            sink.emit(Event::Flow(&record))?;
        }
        Ok(())
    }
}

/// The judged destination of a flow, as events name it.
fn remote_ref(flow: &Flow<FlowState>, databases: &[DatabaseInfo]) -> RemoteRef {
    let geo = &flow.ann.geo;
    let insight = &flow.ann.insight;
    let (ip, port) = judged_remote(flow);
    RemoteRef {
        ip,
        port,
        country: geo.country,
        registered_country: geo.registered_country,
        asn: geo.asn,
        as_org: geo.as_org.clone(),
        hostname: insight.hostname.as_ref().map(|h| h.name.clone()),
        hostname_source: insight.hostname.as_ref().map(|h| h.source.as_str()),
        dns_query: insight.dns.as_ref().map(|d| d.query.clone()),
        geo_source: geo
            .country_source
            .and_then(|i| databases.get(usize::from(i)))
            .map(|d| d.name.clone()),
    }
}

/// What flow records name by index: the policy's rule ids, the inputs, the databases. Borrowed from
/// the engine, or on the formatter thread from copies of its own.
struct RecordNames<'a> {
    rule_ids: &'a [String],
    inputs: &'a [InputSummary],
    databases: &'a [DatabaseInfo],
    source_kind: &'static str,
}

/// The record of a flow that ended, once its last evaluation is done.
fn flow_record(flow: &Flow<FlowState>, reason: EndReason, names: &RecordNames<'_>) -> FlowRecord {
    let device = device_ref(flow);
    let remote = remote_ref(flow, names.databases);
    let encrypted = flow.ann.insight.encrypted(true);
    let (bo, bi, po, pi) = (
        flow.bytes_out,
        flow.bytes_in,
        flow.packets_out,
        flow.packets_in,
    );
    let tcp = flow.transport == Transport::Tcp;
    let insight = &flow.ann.insight;
    FlowRecord {
        timestamp: Rfc3339(flow.last_seen_ns),
        event_type: "flow",
        schema: SCHEMA_VERSION,
        flow_id: FlowId(flow.id),
        start: Rfc3339(flow.first_seen_ns),
        end: Rfc3339(flow.last_seen_ns),
        end_reason: reason.as_str(),
        device,
        remote,
        via: via_ref(flow),
        transport: flow.transport,
        internal: flow.internal,
        app_proto: insight.app_proto.map(|p| p.as_str()),
        encrypted,
        tls_version: insight.tls_version.map(|v| v.as_str()),
        alpn: insight.alpn.clone(),
        dns_named: flow.ann.dns_named,
        bytes_out: bo,
        bytes_in: bi,
        packets_out: po,
        packets_in: pi,
        payload_bytes_out: flow.payload_out,
        payload_bytes_in: flow.payload_in,
        tcp_flags_out: tcp.then_some(TcpFlags(flow.tcp_flags_out)),
        tcp_flags_in: tcp.then_some(TcpFlags(flow.tcp_flags_in)),
        vlan: flow.vlan,
        alerts: flow
            .ann
            .fired
            .iter()
            .filter_map(|a| match a {
                AlertId::Rule(r) => names.rule_ids.get(*r).cloned(),
                AlertId::Builtin(id) => Some((*id).to_owned()),
                AlertId::Redirect(r) => names.rule_ids.get(*r).cloned(),
            })
            .collect(),
        alerts_suppressed: flow.ann.suppressed,
        source: SourceRef {
            kind: names.source_kind,
            name: input_name(names.inputs, flow.first_packet.0),
            packet: flow.first_packet.1,
        },
        redirect: flow.ann.redirect.as_deref().map(RedirectHop::to_ref),
        resolver: resolver_ref(flow),
    }
}

fn input_name(inputs: &[InputSummary], source: u16) -> String {
    inputs
        .get(usize::from(source))
        .map(|i| i.name.clone())
        .unwrap_or_default()
}

fn count_alert(
    counts: &mut BTreeMap<String, RuleCount>,
    id: &str,
    severity: Severity,
    written: bool,
) {
    let c = counts.entry(id.to_owned()).or_insert_with(|| RuleCount {
        severity: severity.to_string(),
        ..RuleCount::default()
    });
    if written {
        c.alerts += 1;
    } else {
        c.suppressed += 1;
    }
}

fn via_ref(flow: &Flow<FlowState>) -> Option<ViaRef> {
    flow.ann.via.as_ref().map(Via::to_ref)
}

/// The destination a flow is judged on and reported as `remote`: the flow's remote, or for a
/// proxied flow the target named to the proxy (its address `None` when only a name is known).
fn judged_remote(flow: &Flow<FlowState>) -> (Option<IpAddr>, Option<u16>) {
    match flow.ann.target.as_deref() {
        Some(t) => (t.addr, Some(t.port)),
        None => (
            Some(flow.remote.ip),
            flow.transport.has_ports().then_some(flow.remote.port),
        ),
    }
}

/// The resolver a flow's queries go to: the proxied target when the flow went through a proxy
/// and its address is known, else the remote; its port (0 for transports without ports).
fn resolver_endpoint(flow: &Flow<FlowState>) -> (IpAddr, u16) {
    match judged_remote(flow) {
        (Some(ip), port) => (ip, port.unwrap_or(0)),
        (None, _) => (flow.remote.ip, 0),
    }
}

/// The unspecified address of `ip`'s family: what a policy sees as the address of a target
/// known only by name.
fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

fn device_ref(flow: &Flow<FlowState>) -> DeviceRef {
    DeviceRef {
        ip: flow.device.ip,
        port: flow.transport.has_ports().then_some(flow.device.port),
        mac: flow.device_mac,
        name: flow.ann.device_name.clone(),
    }
}

/// Resolvers: which flows carry a device's DNS queries (see `crate::resolvers`), the built-in
/// `[resolvers]` alerts, and the per-device list in the summary.
impl Core<'_> {
    /// Feeds one packet to the flow's resolver detection; true when it found the kind.
    fn observe_resolver(
        &mut self,
        flow: &mut Flow<FlowState>,
        packet: &Packet<'_>,
        outbound: bool,
    ) -> bool {
        let endpoint = resolver_endpoint(flow);
        let policy = &self.policy;
        let ann = &mut flow.ann;
        ann.resolver.observe(
            &ann.insight,
            packet.transport,
            endpoint,
            outbound,
            packet.payload,
            |h| policy.resolvers().is_doh_name(h),
        )
    }

    /// Raises `resolver-not-allowed` or `resolver-foreign` on a resolver flow the device sent
    /// to, once per flow (and de-duplicated per device and resolver like every alert). While
    /// the allow list has names and an encrypted resolver flow has none yet, the check waits
    /// for the name (at the latest, the flow's end).
    fn check_resolver(
        &mut self,
        flow: &mut Flow<FlowState>,
        ts_ns: i64,
        source: (u16, u64),
        ended: bool,
    ) -> Result<(), SinkError> {
        let Some(kind) = flow.ann.resolver.kind else {
            return Ok(());
        };
        if !flow.ann.evaluated || flow.packets_out == 0 {
            return Ok(());
        }
        let host = flow.ann.insight.hostname.as_ref().map(|h| h.name.clone());
        if !ended
            && host.is_none()
            && kind != ResolverKind::Dns
            && self.policy.resolvers().allows_by_name()
        {
            return Ok(());
        }
        let country = flow.ann.geo.country;
        let (remote, _) = resolver_endpoint(flow);
        let Some(verdict) = self
            .policy
            .resolver_verdict(remote, host.as_deref(), country)
        else {
            return Ok(());
        };
        let who = flow
            .ann
            .device_name
            .clone()
            .unwrap_or_else(|| flow.device.ip.to_string());
        let resolver = match &host {
            Some(h) => format!("{h} ({remote})"),
            None => remote.to_string(),
        };
        let reason = if verdict.id == crate::policy::RESOLVER_NOT_ALLOWED {
            format!(
                "{who} sent DNS queries ({kind}) to resolver {resolver}, which the allowed resolvers do not include"
            )
        } else {
            let c = country.map(|c| c.to_string()).unwrap_or_default();
            format!(
                "{who} sent DNS queries ({kind}) to resolver {resolver} in {c}, outside the home countries"
            )
        };
        self.raise_builtin(flow, verdict.id, verdict.severity, reason, ts_ns, source)
    }

    /// Adds an ended resolver flow to its device's resolver list (bounded; what does not fit is
    /// counted).
    fn fold_resolver(&mut self, flow: &Flow<FlowState>) {
        let Some(kind) = flow.ann.resolver.kind else {
            return;
        };
        if flow.packets_out == 0 {
            return;
        }
        let Some(agg) = device_agg(&mut self.devices, flow.device.ip, self.caps.devices) else {
            // The device is past `--max-devices`: its flow end is counted there (`end_flow`).
            return;
        };
        let (ip, _) = resolver_endpoint(flow);
        let key = (ip, kind);
        if agg.resolvers.len() >= SUMMARY_RESOLVERS_MAX && !agg.resolvers.contains_key(&key) {
            agg.resolvers_dropped += 1;
            return;
        }
        let geo = &flow.ann.geo;
        let r = agg.resolvers.entry(key).or_insert_with(|| ResolverSummary {
            ip,
            kind: kind.as_str(),
            country: geo.country,
            asn: geo.asn,
            hostname: None,
            flows: 0,
            queries: 0,
            bytes_out: 0,
            first_seen: Rfc3339(flow.first_seen_ns),
            last_seen: Rfc3339(flow.last_seen_ns),
        });
        if r.hostname.is_none() {
            r.hostname = flow
                .ann
                .insight
                .hostname
                .as_ref()
                .map(|h| h.name.to_string());
        }
        r.flows += 1;
        r.queries = r.queries.saturating_add(flow.ann.resolver.queries);
        r.bytes_out = r.bytes_out.saturating_add(flow.bytes_out);
        r.first_seen = Rfc3339(r.first_seen.0.min(flow.first_seen_ns));
        r.last_seen = Rfc3339(r.last_seen.0.max(flow.last_seen_ns));
    }
}

fn resolver_ref(flow: &Flow<FlowState>) -> Option<ResolverRef> {
    let r = &flow.ann.resolver;
    r.kind.map(|k| ResolverRef {
        kind: k.as_str(),
        queries: r.queries,
    })
}

/// Live mode: the engine's running counters, read between frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Frames handed to [`Engine::process`].
    pub frames: u64,
    /// Frames decoded as IP packets.
    pub packets: u64,
    /// Flows held now.
    pub flows_active: u64,
    /// Flows created since the start.
    pub flows: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Alerts de-duplicated.
    pub alerts_suppressed: u64,
    /// Times the GeoIP databases were reloaded.
    pub geoip_reloads: u64,
    /// Every cap and what it dropped so far.
    pub limits: Limits,
}

/// Live mode: wall-clock expiry and running counters.
impl Engine<'_> {
    /// Ends the flows idle past the timeout at `now_ns` (wall-clock time in live mode, so flows
    /// end while no packet arrives) and writes their records.
    pub fn tick(&mut self, now_ns: i64) -> Result<(), SinkError> {
        self.flows.expire(now_ns, &mut self.ended);
        flush_ended(&mut self.core, &mut self.ended)
    }

    /// The running counters.
    pub fn live_stats(&self) -> LiveStats {
        LiveStats {
            frames: self.core.counters.frames,
            packets: self.decoder.stats().packets,
            flows_active: u64::try_from(self.flows.len()).unwrap_or(u64::MAX),
            flows: self.flows.stats().created,
            alerts: self.core.counters.alerts,
            alerts_suppressed: self.core.counters.alerts_suppressed,
            geoip_reloads: self.core.counters.geoip_reloads,
            limits: self.limits(),
        }
    }

    /// Switches to freshly opened databases (live: SIGHUP, or a database file replaced on
    /// disk). The policy's overrides are installed on them; flows that already exist keep the
    /// answers they got, new flows get the new databases'. Counted in `geoip_reloads`.
    pub fn replace_resolver(&mut self, mut resolver: Resolver) {
        // Keep the outgoing cache's drops in `limits.geoip_cache`.
        let forgotten = self.core.resolver.cache_clears();
        self.core
            .limits
            .geoip_cache
            .drop_n(forgotten.saturating_mul(geoip::GEOIP_CACHE_MAX_ENTRIES as u64));
        resolver.set_overrides(self.core.policy.overrides().to_vec());
        self.core.resolver = resolver;
        self.core.counters.geoip_reloads += 1;
    }
}

/// Proxies and redirects: the destination a proxied flow is judged on, and redirect targets
/// judged as subjects of their own.
impl Core<'_> {
    /// Applies what the payload just revealed: a proxy target, a redirect.
    fn reroute(
        &mut self,
        flow: &mut Flow<FlowState>,
        ts_ns: i64,
        source: (u16, u64),
    ) -> Result<(), SinkError> {
        if !flow.ann.proxy_done
            && let Some(t) = flow.ann.insight.proxy.clone()
        {
            flow.ann.proxy_done = true;
            self.apply_proxy(flow, *t, ts_ns);
        }
        if !flow.ann.redirect_done
            && let Some(r) = flow.ann.insight.redirect.clone()
        {
            flow.ann.redirect_done = true;
            self.judge_redirect(flow, *r, ts_ns, source)?;
        }
        // A name learned now (an HTTP Host) may be a redirect target.
        self.follow_redirect(flow, ts_ns);
        Ok(())
    }

    /// A flow to where a server redirected the device shortly before: that server is its via
    /// (unless a tunnel or proxy already is).
    fn follow_redirect(&mut self, flow: &mut Flow<FlowState>, ts_ns: i64) {
        if flow.ann.via.is_some() || self.redirects.is_empty() {
            return;
        }
        let device = flow.device.ip;
        let insight = &flow.ann.insight;
        let names = [
            insight.hostname.as_ref().map(|h| h.name.clone()),
            insight.dns.as_ref().map(|d| d.query.clone()),
            Some(Arc::from(flow.remote.ip.to_string())),
        ];
        for name in names.into_iter().flatten() {
            if let Some((via, at)) = self.redirects.get(&(device, name))
                && ts_ns.saturating_sub(*at) <= REDIRECT_FOLLOW_NS
                && via.ip != flow.remote.ip
            {
                flow.ann.via = Some(via.clone());
                return;
            }
        }
    }

    /// Remembers a redirect target for the flows that follow it (bounded).
    fn remember_redirect(&mut self, device: IpAddr, target: Arc<str>, server: Via, ts_ns: i64) {
        let key = (device, target);
        if self.redirects.len() >= REDIRECTS_PENDING_MAX && !self.redirects.contains_key(&key) {
            let before = self.redirects.len();
            self.redirects
                .retain(|_, (_, at)| ts_ns.saturating_sub(*at) <= REDIRECT_FOLLOW_NS);
            if self.redirects.len() >= REDIRECTS_PENDING_MAX {
                self.redirects.clear();
            }
            self.counters.redirects_forgotten += (before - self.redirects.len()) as u64;
        }
        self.redirects.insert(key, (server, ts_ns));
    }

    /// An address named by literal or by name: the literal, else the newest address a DNS
    /// answer in the capture gave the device for the name.
    fn resolve_named(
        &self,
        device: IpAddr,
        addr: Option<IpAddr>,
        host: Option<&str>,
        ts_ns: i64,
    ) -> Option<IpAddr> {
        addr.or_else(|| host.and_then(|h| self.dns.lookup_name(device, h, ts_ns).last().copied()))
    }

    /// Whether a destination gets judged: public or covered by an override, not local; one
    /// known only by name is judged (on its name, with an unknown country).
    fn judgeable(&self, addr: Option<IpAddr>, geo: &GeoInfo) -> bool {
        match addr {
            Some(a) => {
                !self.policy.is_local(a) && (geoip::is_public(a) || *geo != GeoInfo::default())
            }
            None => true,
        }
    }

    /// The flow is proxied: the target the client named becomes the judged destination (its
    /// country, ASN, name) and the proxy becomes `via`.
    fn apply_proxy(
        &mut self,
        flow: &mut Flow<FlowState>,
        t: crate::names::proxy::ProxyTarget,
        ts_ns: i64,
    ) {
        let device = flow.device.ip;
        let addr = self.resolve_named(device, t.addr, t.host.as_deref(), ts_ns);
        if !t.tunnel && !self.absolute_form_proxied(flow, &t, ts_ns) {
            return;
        }
        let proxy_geo = std::mem::take(&mut flow.ann.geo);
        // A proxy met inside a tunnel: the proxy is the hop reported (the nearer re-routing).
        flow.ann.via = Some(Via {
            kind: ViaKind::Proxy(t.kind),
            ip: flow.remote.ip,
            port: Some(flow.remote.port),
            geo: proxy_geo,
        });
        flow.ann.geo = addr.map(|a| self.resolver.lookup(a)).unwrap_or_default();
        flow.ann.judged = self.judgeable(addr, &flow.ann.geo);
        if flow.ann.judged {
            // Through a proxy on the local network, the traffic still leaves.
            flow.internal = false;
        }
        // What DNS said about the proxy's address no longer names the destination.
        let insight = &mut flow.ann.insight;
        if insight
            .hostname
            .as_ref()
            .is_some_and(|h| h.source == crate::names::attribution::HostnameSource::Dns)
        {
            insight.hostname = None;
        }
        insight.dns = None;
        let named = addr.and_then(|a| self.dns.lookup(device, a, ts_ns).cloned());
        if let Some(n) = &named {
            insight.offer_dns(n);
        }
        let in_grace = self
            .first_ts
            .is_some_and(|t0| ts_ns.saturating_sub(t0) < HARDCODED_GRACE_NS);
        // A name given to the proxy is resolved by the proxy: whether DNS named it is moot.
        flow.ann.dns_named = match (named.is_some(), t.addr.is_some(), flow.ann.judged, in_grace) {
            (true, _, _, _) => Some(true),
            (false, true, true, false) => Some(false),
            _ => None,
        };
        flow.ann.target = Some(Box::new(Target {
            addr,
            port: t.port,
            host: t.host.as_deref().map(Arc::from),
        }));
    }

    /// Whether an absolute-form request went to a proxy rather than to the origin server itself
    /// (which some clients address that way): the target's address is known (a literal, or a
    /// DNS answer in the capture) and is not the remote's; or, with the target's address
    /// unknown, DNS named the remote with another name than the target.
    fn absolute_form_proxied(
        &self,
        flow: &Flow<FlowState>,
        t: &crate::names::proxy::ProxyTarget,
        ts_ns: i64,
    ) -> bool {
        let remote = flow.remote.ip;
        if let Some(a) = t.addr {
            return a != remote;
        }
        let Some(host) = t.host.as_deref() else {
            return false;
        };
        let known = self.dns.lookup_name(flow.device.ip, host, ts_ns);
        if !known.is_empty() {
            return !known.contains(&remote);
        }
        flow.ann
            .insight
            .dns
            .as_ref()
            .is_some_and(|d| &*d.query != host && !d.cname_chain.iter().any(|c| &**c == host))
    }

    /// A server redirected the device: records the hop on the flow and judges the target as its
    /// own subject, with the redirecting server as `via` (kind `redirect`).
    fn judge_redirect(
        &mut self,
        flow: &mut Flow<FlowState>,
        r: crate::names::redirect::Redirect,
        ts_ns: i64,
        source: (u16, u64),
    ) -> Result<(), SinkError> {
        let device = flow.device.ip;
        let host: Option<Arc<str>> = r.host.as_deref().map(Arc::from);
        // A redirect to the same host (http → https, another path) is no re-routing.
        let (server_ip, server_port) = judged_remote(flow);
        let insight = &flow.ann.insight;
        let same_host = match (&host, r.addr) {
            (Some(h), _) => {
                insight.hostname.as_ref().is_some_and(|n| n.name == *h)
                    || insight.dns.as_ref().is_some_and(|d| d.query == *h)
            }
            (None, Some(a)) => server_ip == Some(a),
            (None, None) => true,
        };
        if same_host {
            return Ok(());
        }
        let addr = self.resolve_named(device, r.addr, host.as_deref(), ts_ns);
        let geo = addr.map(|a| self.resolver.lookup(a)).unwrap_or_default();
        let hop = RedirectHop {
            status: r.status,
            location: r.location,
            host: host.clone(),
            port: r.port,
            addr,
            geo: geo.clone(),
        };
        flow.ann.redirect = Some(Box::new(hop));
        // The server that answered: the flow's judged destination.
        let server = Via {
            kind: ViaKind::Redirect,
            ip: server_ip.unwrap_or(flow.remote.ip),
            port: server_port,
            geo: flow.ann.geo.clone(),
        };
        let target = host
            .clone()
            .or_else(|| r.addr.map(|a| Arc::from(a.to_string())));
        if let Some(target) = target {
            self.remember_redirect(device, target, server.clone(), ts_ns);
        }
        if !flow.ann.evaluated || !self.judgeable(addr, &geo) {
            return Ok(());
        }
        let device_policy = self.policy.device(flow.device.ip, flow.device_mac);
        // Nothing was sent to the target yet: no payload, protocol or resolver flow is known.
        let subject = Subject {
            device: device_policy,
            country: geo.country,
            asn: geo.asn,
            as_org: geo.as_org.as_deref(),
            hostname: host.as_deref(),
            via_kind: Some(server.kind.as_str()),
            via_ip: Some(server.ip),
            via_country: server.geo.country,
            ..Subject::bare(
                device,
                addr.unwrap_or_else(|| unspecified_like(flow.remote.ip)),
                r.port,
                Transport::Tcp,
            )
        };
        let Some(rule_id) = self.policy.evaluate(&subject) else {
            return Ok(());
        };
        let Some(rule) = self.policy.rules().get(rule_id) else {
            return Ok(());
        };
        if rule.action != Action::Alert || rule.total_scope().is_some() {
            return Ok(());
        }
        let reason = rule.reason(&subject);
        let (id, severity) = (rule.id.clone(), rule.severity);
        let remote = RemoteRef {
            ip: addr,
            port: r.port,
            country: geo.country,
            registered_country: geo.registered_country,
            asn: geo.asn,
            as_org: geo.as_org.clone(),
            hostname: host.clone(),
            hostname_source: host.as_ref().map(|_| "redirect"),
            dns_query: None,
            geo_source: geo
                .country_source
                .and_then(|i| self.resolver.databases().get(usize::from(i)))
                .map(|d| d.name.clone()),
        };
        let raised = Raised {
            key: AlertId::Redirect(rule_id),
            id,
            severity,
            reason,
            over: Some(Box::new((remote, server.to_ref()))),
        };
        self.raise(flow, raised, ts_ns, source, false)
    }
}

/// Caps: what the run's bounded structures hold at most and what they dropped.
impl Engine<'_> {
    /// Every cap in force and what it dropped so far (the summary's `limits`).
    pub fn limits(&self) -> Limits {
        let core = &self.core;
        let caps = &core.caps;
        let d = self.decoder.stats();
        let f = self.flows.stats();
        let dns = &core.dns;
        let with = |cap: usize, dropped: u64| Limit {
            dropped,
            ..Limit::new(cap)
        };
        let l = &core.limits;
        Limits {
            flows: with(core.max_flows, f.evicted),
            dns_cache: with(caps.dns_cache.max(2), dns.evicted),
            dns_names: with(caps.dns_cache.max(2), dns.names_evicted),
            fragments: with(caps.fragments.max(2), d.fragments_evicted),
            devices: with(caps.devices, l.devices.dropped),
            names_per_device: with(caps.names_per_device, l.names_per_device.dropped),
            asns_per_device: with(caps.asns_per_device, l.asns_per_device.dropped),
            hardcoded_per_device: with(caps.hardcoded_per_device, l.hardcoded_per_device.dropped),
            dedup: with(caps.dedup.max(1), l.dedup.dropped),
            routes: with(caps.routes, core.routes.untracked),
            run_totals: with(caps.run_totals.max(1), core.totals.dropped),
            reassembly_bytes: with(caps.reassembly_bytes, l.reassembly_bytes.dropped),
            dns_answers: with(crate::names::dns::DNS_ANSWERS_MAX, dns.answers_dropped),
            dns_questions: with(crate::names::dns::DNS_QUESTIONS_MAX, dns.questions_dropped),
            dns_cname_chain: with(crate::names::dns::DNS_CNAME_CHAIN_MAX, dns.chains_cut),
            dns_events: with(
                crate::names::attribution::DNS_EVENTS_PENDING_MAX,
                dns.events_dropped,
            ),
            summary_entries: with(caps.summary_entries, l.summary_entries.dropped),
            geoip_cache: with(
                geoip::GEOIP_CACHE_MAX_ENTRIES,
                core.resolver
                    .cache_clears()
                    .saturating_mul(geoip::GEOIP_CACHE_MAX_ENTRIES as u64)
                    .saturating_add(l.geoip_cache.dropped),
            ),
        }
    }
}

impl Core<'_> {
    /// Accounts for what a flow's reassembly buffers hold after a packet (`before`: what they
    /// held before it). Past the budget, the flow that grew lets go of its buffers (counted).
    fn charge_reassembly(&mut self, flow: &mut Flow<FlowState>, before: usize) {
        let after = flow.ann.insight.held_bytes();
        if after == before {
            return;
        }
        self.reassembly_held = self.reassembly_held.saturating_sub(before) + after;
        if after > before && self.reassembly_held > self.caps.reassembly_bytes {
            flow.ann.insight.shed();
            self.reassembly_held =
                self.reassembly_held.saturating_sub(after) + flow.ann.insight.held_bytes();
            self.limits.reassembly_bytes.drop_n(1);
        }
    }
}

/// The summary aggregate of a device: found, or made when fewer than `cap` devices are held.
fn device_agg(
    devices: &mut BTreeMap<IpAddr, DeviceAgg>,
    ip: IpAddr,
    cap: usize,
) -> Option<&mut DeviceAgg> {
    if devices.len() >= cap && !devices.contains_key(&ip) {
        return None;
    }
    Some(devices.entry(ip).or_default())
}

#[cfg(test)]
mod flood_size_tests {
    use super::*;

    /// What one held flow costs before its buffers (536 bytes when written; the flow table adds
    /// its index entry, ~50 bytes): `--max-flows` times this is most of a run's memory under a
    /// scan (docs/robustness.md, "Floods"). A guard against a field that grows every flow.
    #[test]
    fn a_held_flow_stays_small() {
        let size = std::mem::size_of::<Flow<FlowState>>();
        assert!(size <= 768, "Flow<FlowState> is {size} bytes");
    }
}
