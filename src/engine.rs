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

use crate::capture::Frame;
use crate::decode::{Decoder, Transport};
use crate::event::{
    Alert, DeviceRef, DeviceSummary, EncryptionBytes, Event, FlowRecord, InputSummary, NameSummary,
    RemoteRef, Rfc3339, RuleCount, RuleRef, RunCounters, SCHEMA_VERSION, SourceRef, Summary,
    Traffic, flow_id_hex, tcp_flag_letters,
};
use crate::flow::{EndReason, Flow, FlowConfig, FlowTable, Sides};
use crate::geoip::{self, GeoInfo, Resolver};
use crate::names::attribution::{FlowInsight, PassiveDns};
use crate::policy::{Action, Policy, RuleId, Severity, Subject};
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
    dedup: HashMap<(RuleId, IpAddr, IpAddr), i64>,
    devices: BTreeMap<IpAddr, DeviceAgg>,
    rule_counts: BTreeMap<String, RuleCount>,
    counters: RunCounters,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    max_severity: Option<Severity>,
    /// `bytes_out_over` thresholds of the policy, sorted: crossing one re-evaluates a flow.
    bytes_thresholds: Vec<u64>,
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
            },
        }
    }

    /// Records that an input failed (damaged, unreadable); the run goes on with the others.
    pub fn input_error(&mut self, source: usize, message: String) {
        if let Some(input) = self.core.inputs.get_mut(source) {
            input.error = Some(message);
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
        }
        let device = flow.device.ip;
        let learned =
            flow.ann
                .insight
                .observe(&packet, update.outbound, device, frame.ts_ns, &mut core.dns);
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
        if flow.ann.evaluated && flow.ann.judged && (first_out || learned.changed || crossed) {
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

    /// Evaluates the policy on a flow's current facts and writes the alert it raises, if any.
    fn judge(
        &mut self,
        flow: &mut Flow<FlowState>,
        ts_ns: i64,
        source: (u16, u64),
        ended: bool,
    ) -> Result<(), SinkError> {
        let device = self.policy.device(flow.device.ip, flow.device_mac);
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
            dns_named: flow.ann.dns_named,
        };
        let Some(rule_id) = self.policy.evaluate(&subject) else {
            return Ok(());
        };
        let Some(rule) = self.policy.rules().get(rule_id) else {
            return Ok(());
        };
        if rule.action != Action::Alert || flow.ann.fired.contains(&rule_id) {
            return Ok(());
        }
        flow.ann.fired.push(rule_id);
        self.max_severity = self.max_severity.max(Some(rule.severity));
        let key = (rule_id, flow.device.ip, flow.remote.ip);
        let suppressed = self
            .dedup
            .get(&key)
            .is_some_and(|&last| ts_ns.saturating_sub(last) < self.policy.dedup_window_ns());
        count_alert(&mut self.rule_counts, &rule.id, rule.severity, !suppressed);
        let agg = self.devices.entry(flow.device.ip).or_default();
        count_alert(&mut agg.alerts, &rule.id, rule.severity, !suppressed);
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
                id: rule.id.clone(),
                severity: rule.severity,
                reason: rule.reason(&subject),
            },
            device: device_ref(flow),
            remote: self.remote_ref(flow),
            transport: flow.transport,
            app_proto: flow.ann.insight.app_proto.map(|p| p.as_str()),
            encrypted: flow.ann.insight.encrypted(ended),
            bytes_out: flow.bytes_out,
            bytes_in: flow.bytes_in,
            packets_out: flow.packets_out,
            packets_in: flow.packets_in,
            source: SourceRef {
                kind: "file",
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

fn device_ref(flow: &Flow<FlowState>) -> DeviceRef {
    DeviceRef {
        ip: flow.device.ip,
        port: flow.transport.has_ports().then_some(flow.device.port),
        mac: flow.device_mac,
        name: flow.ann.device_name.clone(),
    }
}
