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
use crate::decode::{Decoder, Transport, Tunnel};
use crate::event::{
    Alert, DeviceRef, DeviceSummary, DnsRecord, EncryptionBytes, Event, FlowRecord, InputSummary,
    NameSummary, RemoteRef, Rfc3339, RuleCount, RuleRef, RunCounters, SCHEMA_VERSION, SourceRef,
    Summary, Traffic, ViaRef, flow_id_hex, tcp_flag_letters,
};
use crate::flow::{EndReason, Flow, FlowConfig, FlowTable, Sides};
use crate::geoip::{self, CountryCode, GeoInfo, Resolver};
use crate::names::attribution::{FlowInsight, PassiveDns};
use crate::policy::{Action, Policy, RuleId, Severity, Subject, TotalScope};
use crate::routes::{
    BASELINE_NAME_MOVED, BASELINE_NEW_COUNTRY, Baseline, NAME_REROUTED, RouteMemory,
};
use crate::sink::{Sink, SinkError};

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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_flows: crate::flow::FLOWS_MAX_DEFAULT,
            idle_timeout_ns: crate::flow::IDLE_TIMEOUT_DEFAULT_NS,
        }
    }
}

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
    /// The tunnel that carried the flow's first packet, with what the databases say about its
    /// far endpoint.
    via: Option<(Tunnel, IpAddr, GeoInfo)>,
    fired: Vec<AlertId>,
    suppressed: u64,
}

/// Bytes each device sent over the whole run per country and per name, kept only when a rule
/// uses `country_bytes_out_over` or `name_bytes_out_over`.
#[derive(Default)]
struct RunTotals {
    enabled: bool,
    thresholds: Vec<u64>,
    country: HashMap<(IpAddr, CountryCode), u64>,
    name: HashMap<(IpAddr, Arc<str>), u64>,
    /// (rule, device, country or name) that already fired.
    fired: std::collections::HashSet<(RuleId, IpAddr, Arc<str>)>,
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
        let mut bump = |total: &mut u64| {
            let before = *total;
            *total = total.saturating_add(bytes);
            crossed |= self_crossed(&self.thresholds, before, *total);
        };
        if let Some(c) = flow.ann.geo.country {
            if let Some(t) = bounded_entry(&mut self.country, (device, c)) {
                bump(t);
            }
        }
        if let Some(h) = &flow.ann.insight.hostname {
            if let Some(t) = bounded_entry(&mut self.name, (device, h.name.clone())) {
                bump(t);
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

fn bounded_entry<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K) -> Option<&mut u64> {
    if map.len() >= RUN_TOTALS_MAX_ENTRIES && !map.contains_key(&key) {
        return None;
    }
    Some(map.entry(key).or_insert(0))
}

/// What raised an alert: a policy rule, or one of the engine's built-in checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AlertId {
    Rule(RuleId),
    Builtin(&'static str),
}

/// An alert about to be written.
struct Raised {
    key: AlertId,
    id: String,
    severity: Severity,
    reason: String,
}

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
    sinks: Vec<Box<dyn Sink + 's>>,
    inputs: Vec<InputSummary>,
    dns: PassiveDns,
    dedup: HashMap<(AlertId, IpAddr, IpAddr), i64>,
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
}

/// One run of the pipeline.
pub struct Engine<'s> {
    decoder: Decoder,
    flows: FlowTable<FlowState>,
    ended: Vec<(Flow<FlowState>, EndReason)>,
    core: Core<'s>,
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
            decoder: Decoder::new(),
            flows: FlowTable::new(FlowConfig {
                max_flows: settings.max_flows,
                idle_timeout_ns: settings.idle_timeout_ns,
                sides,
            }),
            ended: Vec::new(),
            core: Core {
                resolver,
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
                dns: PassiveDns::default(),
                dedup: HashMap::new(),
                devices: BTreeMap::new(),
                rule_counts: BTreeMap::new(),
                counters: RunCounters::default(),
                first_ts: None,
                last_ts: None,
                max_severity: None,
                bytes_thresholds,
                routes: RouteMemory::default(),
                baseline: None,
                totals: RunTotals {
                    enabled: needs_totals,
                    thresholds: total_thresholds,
                    ..RunTotals::default()
                },
                source_kind: "file",
            },
        }
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
        let core = &mut self.core;
        core.counters.frames += 1;
        if let Some(input) = core.inputs.get_mut(usize::from(frame.source)) {
            input.frames += 1;
        }
        core.first_ts = Some(core.first_ts.map_or(frame.ts_ns, |t| t.min(frame.ts_ns)));
        core.last_ts = Some(core.last_ts.map_or(frame.ts_ns, |t| t.max(frame.ts_ns)));
        let Some(packet) = self.decoder.decode(frame) else {
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
                flow.ann.via = Some((t, far, core.resolver.lookup(far)));
            }
        }
        let device = flow.device.ip;
        let learned =
            flow.ann
                .insight
                .observe(&packet, update.outbound, device, frame.ts_ns, &mut core.dns);
        if !core.dns.pending.is_empty() {
            core.write_dns_events()?;
        }
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
        if flow.ann.evaluated && flow.ann.judged && (first_out || learned.changed || crossed) {
            core.check_routes(flow, frame.ts_ns, source)?;
            core.judge(flow, frame.ts_ns, source, false)?;
        }
        flush_ended(core, &mut self.ended)
    }

    /// Ends every flow, writes the flow records and the summary, and flushes the sinks.
    pub fn finish(mut self) -> Result<Report, SinkError> {
        self.flows.drain(&mut self.ended);
        flush_ended(&mut self.core, &mut self.ended)?;
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

/// Writes the flows that ended and folds them into the summary.
fn flush_ended(
    core: &mut Core<'_>,
    ended: &mut Vec<(Flow<FlowState>, EndReason)>,
) -> Result<(), SinkError> {
    if ended.is_empty() {
        return Ok(());
    }
    let mut result = Ok(());
    for (mut flow, reason) in ended.drain(..) {
        if result.is_ok() {
            result = core.end_flow(&mut flow, reason);
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
        let who = flow
            .ann
            .device_name
            .clone()
            .unwrap_or_else(|| flow.device.ip.to_string());
        let remote = flow.remote.ip;
        let name = flow.ann.insight.hostname.as_ref().map(|h| h.name.clone());
        if let Some(name) = &name {
            if let Some(earlier) = self.routes.observe(flow.device.ip, name, country) {
                let reason = format!(
                    "{who} reached {name} in {country} ({remote}); earlier in this run it was served from {earlier}"
                );
                self.raise_builtin(flow, NAME_REROUTED, Severity::Medium, reason, ts_ns, source)?;
            }
        }
        let Some(baseline) = &self.baseline else {
            return Ok(());
        };
        let key = Baseline::device_key(flow.ann.device_name.as_deref(), flow.device.ip);
        let mut found = Vec::new();
        if baseline.is_new_country(&key, country) {
            found.push((
                BASELINE_NEW_COUNTRY,
                format!(
                    "{who} sent data to {remote} in {country}, a country the baseline never saw it send to"
                ),
            ));
        }
        if let Some(name) = &name {
            if let Some(before) = baseline.name_moved(&key, name, country) {
                found.push((
                    BASELINE_NAME_MOVED,
                    format!(
                        "{who} reached {name} in {country} ({remote}); in the baseline it was served from {before}"
                    ),
                ));
            }
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
        let subject = Subject {
            device,
            device_ip: flow.device.ip,
            remote_ip: flow.remote.ip,
            remote_port: flow.transport.has_ports().then_some(flow.remote.port),
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
        let key = (raised.key, flow.device.ip, flow.remote.ip);
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
        let agg = self.devices.entry(flow.device.ip).or_default();
        count_alert(&mut agg.alerts, &raised.id, raised.severity, !suppressed);
        if suppressed {
            flow.ann.suppressed += 1;
            self.counters.alerts_suppressed += 1;
            return Ok(());
        }
        self.counters.alerts += 1;
        if self.dedup.len() >= DEDUP_MAX_ENTRIES {
            self.dedup.clear();
        }
        self.dedup.insert(key, ts_ns);
        let alert = Alert {
            timestamp: Rfc3339(ts_ns),
            event_type: "alert",
            schema: SCHEMA_VERSION,
            flow_id: flow_id_hex(flow.id),
            rule: RuleRef {
                id: raised.id,
                severity: raised.severity,
                reason: raised.reason,
            },
            device: device_ref(flow),
            remote: self.remote_ref(flow),
            via: via_ref(flow),
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
        };
        for sink in &mut self.sinks {
            sink.emit(Event::Alert(&alert))?;
        }
        Ok(())
    }

    fn remote_ref(&self, flow: &Flow<FlowState>) -> RemoteRef {
        let geo = &flow.ann.geo;
        let insight = &flow.ann.insight;
        RemoteRef {
            ip: flow.remote.ip,
            port: flow.transport.has_ports().then_some(flow.remote.port),
            country: geo.country,
            registered_country: geo.registered_country,
            asn: geo.asn,
            as_org: geo.as_org.as_deref().map(str::to_owned),
            hostname: insight.hostname.as_ref().map(|h| h.name.to_string()),
            hostname_source: insight.hostname.as_ref().map(|h| h.source.as_str()),
            dns_query: insight.dns.as_ref().map(|d| d.query.to_string()),
            geo_source: geo
                .country_source
                .and_then(|i| self.resolver.databases().get(usize::from(i)))
                .map(|d| d.name.clone()),
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
        let device = device_ref(flow);
        let remote = self.remote_ref(flow);
        let encrypted = flow.ann.insight.encrypted(true);
        let agg = self.devices.entry(flow.device.ip).or_default();
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
            let country = match (flow.ann.geo.country, flow.ann.judged) {
                (Some(c), _) => c.to_string(),
                (None, true) => "unknown".to_owned(),
                (None, false) => "non-public".to_owned(),
            };
            if let Some(asn) = flow.ann.geo.asn {
                agg.asns.entry(asn).or_default().add(bo, bi, po, pi);
            }
            match encrypted {
                Some(true) => agg.encryption.encrypted_bytes_out += bo,
                Some(false) => agg.encryption.plaintext_bytes_out += bo,
                None => agg.encryption.no_payload_bytes_out += bo,
            }
            if let Some(h) = &flow.ann.insight.hostname {
                if agg.names.len() < SUMMARY_NAMES_MAX || agg.names.contains_key(&*h.name) {
                    let n = agg.names.entry(h.name.to_string()).or_default();
                    n.countries.insert(country.clone());
                    n.flows += 1;
                    n.bytes_out += bo;
                    // Source names sort in precedence order: dns < http < quic < sni.
                    if n.source.is_empty() || n.source.as_str() < h.source.as_str() {
                        n.source = h.source.as_str().to_owned();
                    }
                } else {
                    agg.names_dropped += 1;
                }
            }
            if flow.ann.dns_named == Some(false)
                && flow.packets_out > 0
                && agg.hardcoded.len() < SUMMARY_HARDCODED_MAX
                && !agg.hardcoded.contains(&flow.remote.ip)
            {
                agg.hardcoded.push(flow.remote.ip);
            }
            agg.countries
                .entry(country)
                .or_default()
                .add(bo, bi, po, pi);
        }
        if flow.ann.insight.tls_failures > 0 {
            self.counters.tls_hello_failures += 1;
        }
        if !self.sinks.iter().any(|s| s.wants_flows()) {
            return Ok(());
        }
        let tcp = flow.transport == Transport::Tcp;
        let insight = &flow.ann.insight;
        let record = FlowRecord {
            timestamp: Rfc3339(flow.last_seen_ns),
            event_type: "flow",
            schema: SCHEMA_VERSION,
            flow_id: flow_id_hex(flow.id),
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
            alpn: insight.alpn.as_deref().map(str::to_owned),
            dns_named: flow.ann.dns_named,
            bytes_out: bo,
            bytes_in: bi,
            packets_out: po,
            packets_in: pi,
            payload_bytes_out: flow.payload_out,
            payload_bytes_in: flow.payload_in,
            tcp_flags_out: tcp.then(|| tcp_flag_letters(flow.tcp_flags_out)),
            tcp_flags_in: tcp.then(|| tcp_flag_letters(flow.tcp_flags_in)),
            vlan: flow.vlan,
            alerts: flow
                .ann
                .fired
                .iter()
                .filter_map(|a| match a {
                    AlertId::Rule(r) => self.policy.rules().get(*r).map(|r| r.id.clone()),
                    AlertId::Builtin(id) => Some((*id).to_owned()),
                })
                .collect(),
            alerts_suppressed: flow.ann.suppressed,
            source: SourceRef {
                kind: self.source_kind,
                name: input_name(&self.inputs, flow.first_packet.0),
                packet: flow.first_packet.1,
            },
        };
        for sink in &mut self.sinks {
            sink.emit(Event::Flow(&record))?;
        }
        Ok(())
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
    flow.ann.via.as_ref().map(|(t, far, geo)| ViaRef {
        kind: t.kind.as_str(),
        ip: *far,
        country: geo.country,
        asn: geo.asn,
        depth: t.depth,
    })
}

fn device_ref(flow: &Flow<FlowState>) -> DeviceRef {
    DeviceRef {
        ip: flow.device.ip,
        port: flow.transport.has_ports().then_some(flow.device.port),
        mac: flow.device_mac,
        name: flow.ann.device_name.clone(),
    }
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
        }
    }

    /// Switches to freshly opened databases (live: SIGHUP, or a database file replaced on
    /// disk). The policy's overrides are installed on them; flows that already exist keep the
    /// answers they got, new flows get the new databases'. Counted in `geoip_reloads`.
    pub fn replace_resolver(&mut self, mut resolver: Resolver) {
        resolver.set_overrides(self.core.policy.overrides().to_vec());
        self.core.resolver = resolver;
        self.core.counters.geoip_reloads += 1;
    }
}
