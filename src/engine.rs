//! The engine: wires frames through decode → flow → geoip → policy → events → sinks.
//!
//! The only module that knows the whole order. It owns the per-flow state the later stages need
//! (what the databases said about the remote, which rules fired), the alert de-duplication, and
//! the running summary. Time is packet time throughout, so a replay is deterministic.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::capture::Frame;
use crate::decode::Decoder;
use crate::event::{
    Alert, DeviceRef, DeviceSummary, Event, FlowRecord, InputSummary, RemoteRef, Rfc3339,
    RuleCount, RuleRef, RunCounters, SCHEMA_VERSION, SourceRef, Summary, Traffic, flow_id_hex,
    tcp_flag_letters,
};
use crate::flow::{EndReason, Flow, FlowConfig, FlowTable, Sides};
use crate::geoip::{self, GeoInfo, Resolver};
use crate::policy::{Action, Policy, RuleId, Severity, Subject};
use crate::sink::{Sink, SinkError};

/// Remembered (rule, device, remote) triples for de-duplication, at most.
pub const DEDUP_MAX_ENTRIES: usize = 65_536;

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
    evaluated: bool,
    fired: Vec<RuleId>,
    suppressed: u64,
}

#[derive(Default)]
struct DeviceAgg {
    device: Option<DeviceRef>,
    egress: Traffic,
    countries: BTreeMap<String, Traffic>,
    asns: BTreeMap<u32, Traffic>,
    internal: Traffic,
    alerts: BTreeMap<String, RuleCount>,
}

/// The result of a run.
pub struct Report {
    pub summary: Summary,
    /// The most severe alert raised (written or de-duplicated), if any.
    pub max_severity: Option<Severity>,
}

/// One run of the pipeline.
pub struct Engine<'s> {
    decoder: Decoder,
    flows: FlowTable<FlowState>,
    resolver: Resolver,
    policy: Policy,
    sinks: Vec<Box<dyn Sink + 's>>,
    inputs: Vec<InputSummary>,
    ended: Vec<(Flow<FlowState>, EndReason)>,
    dedup: HashMap<(RuleId, IpAddr, IpAddr), i64>,
    devices: BTreeMap<IpAddr, DeviceAgg>,
    rule_counts: BTreeMap<String, RuleCount>,
    counters: RunCounters,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    max_severity: Option<Severity>,
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
            resolver,
            policy,
            sinks,
            inputs: input_names
                .into_iter()
                .map(|name| InputSummary {
                    name,
                    frames: 0,
                    error: None,
                })
                .collect(),
            ended: Vec::new(),
            dedup: HashMap::new(),
            devices: BTreeMap::new(),
            rule_counts: BTreeMap::new(),
            counters: RunCounters::default(),
            first_ts: None,
            last_ts: None,
            max_severity: None,
        }
    }

    /// Records that an input failed (damaged, unreadable); the run goes on with the others.
    pub fn input_error(&mut self, source: usize, message: String) {
        if let Some(input) = self.inputs.get_mut(source) {
            input.error = Some(message);
        }
    }

    /// Runs one frame through the pipeline.
    pub fn process(&mut self, frame: &Frame<'_>) -> Result<(), SinkError> {
        self.counters.frames += 1;
        if let Some(input) = self.inputs.get_mut(usize::from(frame.source)) {
            input.frames += 1;
        }
        self.first_ts = Some(self.first_ts.map_or(frame.ts_ns, |t| t.min(frame.ts_ns)));
        self.last_ts = Some(self.last_ts.map_or(frame.ts_ns, |t| t.max(frame.ts_ns)));
        let Some(packet) = self.decoder.decode(frame) else {
            return Ok(());
        };
        self.flows.expire(frame.ts_ns, &mut self.ended);
        self.flush_ended()?;
        let source = (frame.source, frame.index);
        let update = self
            .flows
            .update(&packet, frame.ts_ns, source, &mut self.ended);
        let flow = update.flow;
        if update.is_new {
            let remote = flow.remote.ip;
            flow.ann.geo = self.resolver.lookup(remote);
            flow.ann.judged =
                !flow.internal && (geoip::is_public(remote) || flow.ann.geo != GeoInfo::default());
        }
        if update.outbound && !flow.ann.evaluated {
            flow.ann.evaluated = true;
            let device = self.policy.device(flow.device.ip, flow.device_mac);
            flow.ann.device_name = device.map(|d| d.name.clone());
            if flow.ann.judged {
                let subject = Subject {
                    device,
                    device_ip: flow.device.ip,
                    remote_ip: flow.remote.ip,
                    remote_port: flow.transport.has_ports().then_some(flow.remote.port),
                    transport: flow.transport,
                    country: flow.ann.geo.country,
                    asn: flow.ann.geo.asn,
                    hostname: None,
                    queried_name: None,
                    encrypted: None,
                    bytes_out: 0,
                    dns_named: None,
                };
                if let Some(rule_id) = self.policy.evaluate(&subject) {
                    let fired = fire(
                        &self.policy,
                        rule_id,
                        &subject,
                        flow,
                        frame.ts_ns,
                        &mut self.dedup,
                    );
                    if let Some(rule) = self.policy.rules().get(rule_id) {
                        let written = matches!(fired, Fired::Written(_));
                        if written || matches!(fired, Fired::Suppressed) {
                            self.max_severity = self.max_severity.max(Some(rule.severity));
                            count_alert(&mut self.rule_counts, &rule.id, rule.severity, written);
                            let agg = self.devices.entry(flow.device.ip).or_default();
                            count_alert(&mut agg.alerts, &rule.id, rule.severity, written);
                            if written {
                                self.counters.alerts += 1;
                            } else {
                                self.counters.alerts_suppressed += 1;
                            }
                        }
                    }
                    if let Fired::Written(mut alert) = fired {
                        alert.source.name = input_name(&self.inputs, frame.source);
                        alert.source.packet = frame.index;
                        alert.remote.geo_source = geo_source_name(&self.resolver, &flow.ann.geo);
                        for sink in &mut self.sinks {
                            sink.emit(Event::Alert(&alert))?;
                        }
                    }
                }
            }
        }
        self.flush_ended()
    }

    fn flush_ended(&mut self) -> Result<(), SinkError> {
        if self.ended.is_empty() {
            return Ok(());
        }
        let ended = std::mem::take(&mut self.ended);
        let mut result = Ok(());
        for (flow, reason) in &ended {
            if result.is_ok() {
                result = self.end_flow(flow, *reason);
            }
        }
        self.ended = ended;
        self.ended.clear();
        result
    }

    fn end_flow(&mut self, flow: &Flow<FlowState>, reason: EndReason) -> Result<(), SinkError> {
        let device = device_ref(flow);
        let remote = self.remote_ref(flow);
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
            agg.countries
                .entry(country)
                .or_default()
                .add(bo, bi, po, pi);
            if let Some(asn) = flow.ann.geo.asn {
                agg.asns.entry(asn).or_default().add(bo, bi, po, pi);
            }
        }
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
            transport: flow.transport,
            internal: flow.internal,
            bytes_out: bo,
            bytes_in: bi,
            packets_out: po,
            packets_in: pi,
            payload_bytes_out: flow.payload_out,
            payload_bytes_in: flow.payload_in,
            tcp_flags_out: (flow.transport == crate::decode::Transport::Tcp)
                .then(|| tcp_flag_letters(flow.tcp_flags_out)),
            tcp_flags_in: (flow.transport == crate::decode::Transport::Tcp)
                .then(|| tcp_flag_letters(flow.tcp_flags_in)),
            vlan: flow.vlan,
            alerts: flow
                .ann
                .fired
                .iter()
                .filter_map(|r| self.policy.rules().get(*r))
                .map(|r| r.id.clone())
                .collect(),
            alerts_suppressed: flow.ann.suppressed,
            source: SourceRef {
                kind: "file",
                name: input_name(&self.inputs, flow.first_packet.0),
                packet: flow.first_packet.1,
            },
        };
        for sink in &mut self.sinks {
            sink.emit(Event::Flow(&record))?;
        }
        Ok(())
    }

    fn remote_ref(&self, flow: &Flow<FlowState>) -> RemoteRef {
        let geo = &flow.ann.geo;
        RemoteRef {
            ip: flow.remote.ip,
            port: flow.transport.has_ports().then_some(flow.remote.port),
            country: geo.country,
            registered_country: geo.registered_country,
            asn: geo.asn,
            as_org: geo.as_org.as_deref().map(str::to_owned),
            geo_source: geo_source_name(&self.resolver, geo),
        }
    }

    /// Ends every flow, writes the flow records and the summary, and flushes the sinks.
    pub fn finish(mut self) -> Result<Report, SinkError> {
        self.flows.drain(&mut self.ended);
        self.flush_ended()?;
        let d = self.decoder.stats();
        let f = self.flows.stats();
        self.counters.packets = d.packets;
        self.counters.not_ip = d.not_ip;
        self.counters.truncated = d.truncated;
        self.counters.malformed = d.malformed;
        self.counters.unsupported_link_types = d.unsupported_link_types.clone();
        self.counters.fragments = d.fragments;
        self.counters.fragments_unmatched = d.fragments_unmatched;
        self.counters.flows = f.created;
        self.counters.flows_evicted = f.evicted;
        self.counters.flows_peak = f.peak;
        self.counters.geoip_lookup_errors = self.resolver.lookup_errors();
        let devices = std::mem::take(&mut self.devices)
            .into_values()
            .filter_map(|agg| {
                Some(DeviceSummary {
                    device: agg.device?,
                    egress: agg.egress,
                    countries: agg.countries,
                    asns: agg.asns,
                    internal: agg.internal,
                    alerts: agg.alerts,
                })
            })
            .collect();
        let summary = Summary {
            timestamp: self.last_ts.map(Rfc3339),
            event_type: "summary",
            schema: SCHEMA_VERSION,
            tool: concat!("egresswatch ", env!("CARGO_PKG_VERSION")).to_owned(),
            policy: self
                .policy
                .name()
                .unwrap_or(self.policy.source())
                .to_owned(),
            first_packet: self.first_ts.map(Rfc3339),
            last_packet: self.last_ts.map(Rfc3339),
            inputs: std::mem::take(&mut self.inputs),
            databases: self.resolver.databases().to_vec(),
            counters: std::mem::take(&mut self.counters),
            alerts: std::mem::take(&mut self.rule_counts),
            devices,
        };
        for sink in &mut self.sinks {
            sink.emit(Event::Summary(&summary))?;
        }
        for sink in &mut self.sinks {
            sink.finish()?;
        }
        Ok(Report {
            summary,
            max_severity: self.max_severity,
        })
    }
}

fn input_name(inputs: &[InputSummary], source: u16) -> String {
    inputs
        .get(usize::from(source))
        .map(|i| i.name.clone())
        .unwrap_or_default()
}

fn geo_source_name(resolver: &Resolver, geo: &GeoInfo) -> Option<String> {
    geo.country_source
        .and_then(|i| resolver.databases().get(usize::from(i)))
        .map(|d| d.name.clone())
}

/// What applying a rule to a flow gave.
enum Fired {
    /// Not an alert: an allow rule, or the rule already fired on this flow.
    No,
    /// An identical alert was written within the de-duplication window.
    Suppressed,
    Written(Box<Alert>),
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

fn device_ref(flow: &Flow<FlowState>) -> DeviceRef {
    DeviceRef {
        ip: flow.device.ip,
        port: flow.transport.has_ports().then_some(flow.device.port),
        mac: flow.device_mac,
        name: flow.ann.device_name.clone(),
    }
}

/// Applies a matching rule to a flow: at most once per flow, and de-duplicated per (rule,
/// device, remote) within the policy's window. Returns the alert to write, if any.
fn fire(
    policy: &Policy,
    rule_id: RuleId,
    subject: &Subject<'_>,
    flow: &mut Flow<FlowState>,
    ts_ns: i64,
    dedup: &mut HashMap<(RuleId, IpAddr, IpAddr), i64>,
) -> Fired {
    let Some(rule) = policy.rules().get(rule_id) else {
        return Fired::No;
    };
    if rule.action != Action::Alert || flow.ann.fired.contains(&rule_id) {
        return Fired::No;
    }
    flow.ann.fired.push(rule_id);
    let key = (rule_id, flow.device.ip, flow.remote.ip);
    if let Some(&last) = dedup.get(&key) {
        if ts_ns.saturating_sub(last) < policy.dedup_window_ns() {
            flow.ann.suppressed += 1;
            return Fired::Suppressed;
        }
    }
    if dedup.len() >= DEDUP_MAX_ENTRIES {
        dedup.clear();
    }
    dedup.insert(key, ts_ns);
    let geo = &flow.ann.geo;
    Fired::Written(Box::new(Alert {
        timestamp: Rfc3339(ts_ns),
        event_type: "alert",
        schema: SCHEMA_VERSION,
        flow_id: flow_id_hex(flow.id),
        rule: RuleRef {
            id: rule.id.clone(),
            severity: rule.severity,
            reason: rule.reason(subject),
        },
        device: device_ref(flow),
        remote: RemoteRef {
            ip: flow.remote.ip,
            port: flow.transport.has_ports().then_some(flow.remote.port),
            country: geo.country,
            registered_country: geo.registered_country,
            asn: geo.asn,
            as_org: geo.as_org.as_deref().map(str::to_owned),
            geo_source: None,
        },
        transport: flow.transport,
        bytes_out: flow.bytes_out,
        bytes_in: flow.bytes_in,
        packets_out: flow.packets_out,
        packets_in: flow.packets_in,
        source: SourceRef {
            kind: "file",
            name: String::new(),
            packet: 0,
        },
    }))
}
