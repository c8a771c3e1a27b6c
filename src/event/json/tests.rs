//! [`ToJson`] must write exactly what serde_json writes for the derived `Serialize` impls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::event::{InputSummary, RunCounters};
use crate::limits::Limits;

fn ours<T: ToJson + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    value.write_json(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

fn serde<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("serializes")
}

// --- Strategies ---

/// Strings with what JSON must escape: quotes, backslashes, every control character, DEL,
/// non-ASCII of every UTF-8 length.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z0-9.-]{0,24}",
        "[\\x00-\\x1f\\x7f\"\\\\a\u{e9}\u{2028}\u{1F600}]{0,16}",
        any::<String>(),
    ]
    .boxed()
}

/// The names shared with the flow's state.
fn shared_text() -> BoxedStrategy<std::sync::Arc<str>> {
    text().prop_map(std::sync::Arc::from).boxed()
}

/// The `&'static str` fields (kinds, protocols): literals, with one that needs escaping.
fn label() -> BoxedStrategy<&'static str> {
    select(vec![
        "tcp",
        "sni",
        "doh",
        "http-proxy",
        "",
        "a\"b\\c\n\u{1}",
        "é",
    ])
    .boxed()
}

fn ipv6() -> BoxedStrategy<Ipv6Addr> {
    // Zero groups often, so every shape of `::` shows up; and the IPv4-mapped forms.
    let group = prop_oneof![Just(0u16), Just(0xffff), Just(1), any::<u16>()];
    prop_oneof![
        proptest::array::uniform8(group).prop_map(Ipv6Addr::from),
        any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_ipv6_mapped()),
        any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_ipv6_compatible()),
        any::<u128>().prop_map(Ipv6Addr::from),
    ]
    .boxed()
}

fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        ipv6().prop_map(IpAddr::V6),
    ]
    .boxed()
}

fn country() -> BoxedStrategy<CountryCode> {
    "[A-Za-z]{2}"
        .prop_map(|c| CountryCode::new(&c).expect("two letters"))
        .boxed()
}

fn time() -> BoxedStrategy<Rfc3339> {
    prop_oneof![
        any::<i64>(),
        0i64..4_000_000_000_000_000_000,
        (0i64..4_000_000_000).prop_map(|s| s * 1_000_000_000),
    ]
    .prop_map(Rfc3339)
    .boxed()
}

fn severity() -> BoxedStrategy<Severity> {
    select(vec![
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ])
    .boxed()
}

/// Counts at the edges as often as in between.
fn count() -> BoxedStrategy<u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0u64..1000].boxed()
}

prop_compose! {
    fn device_ref()(ip in ip(), port in of(any::<u16>()), mac in of(any::<[u8; 6]>().prop_map(Mac)),
                    name in of(text())) -> DeviceRef {
        DeviceRef { ip, port, mac, name }
    }
}

prop_compose! {
    fn remote_ref()(ip in of(ip()), port in of(any::<u16>()), country in of(country()),
                    registered_country in of(country()), asn in of(any::<u32>()),
                    as_org in of(shared_text()), hostname in of(shared_text()),
                    hostname_source in of(label()), dns_query in of(shared_text()),
                    geo_source in of(text())) -> RemoteRef {
        RemoteRef { ip, port, country, registered_country, asn, as_org, hostname,
                    hostname_source, dns_query, geo_source }
    }
}

prop_compose! {
    fn via_ref()(kind in label(), ip in ip(), country in of(country()), asn in of(any::<u32>()),
                 depth in of(any::<u8>()), port in of(any::<u16>())) -> ViaRef {
        ViaRef { kind, ip, country, asn, depth, port }
    }
}

prop_compose! {
    fn redirect_ref()(status in any::<u16>(), location in text(), host in of(text()),
                      port in of(any::<u16>()), ip in of(ip()), country in of(country()),
                      asn in of(any::<u32>())) -> RedirectRef {
        RedirectRef { status, location, host, port, ip, country, asn }
    }
}

prop_compose! {
    fn source_ref()(kind in label(), name in text(), packet in count()) -> SourceRef {
        SourceRef { kind, name, packet }
    }
}

prop_compose! {
    fn resolver_ref()(kind in label(), queries in count()) -> ResolverRef {
        ResolverRef { kind, queries }
    }
}

prop_compose! {
    fn alert()(timestamp in time(), event_type in label(), schema in any::<u32>(),
               flow_id in any::<u64>().prop_map(FlowId),
               rule in (text(), severity(), text())
                   .prop_map(|(id, severity, reason)| RuleRef { id, severity, reason }),
               device in device_ref().boxed(), remote in remote_ref().boxed(), via in of(via_ref().boxed()),
               transport in any::<u8>().prop_map(Transport::from_ip_proto),
               app_proto in of(label()), encrypted in of(any::<bool>()),
               counts in [count(), count(), count(), count()], source in source_ref().boxed(),
               resolver in of(resolver_ref().boxed())) -> Alert {
        Alert { timestamp, event_type, schema, flow_id, rule, device, remote, via, transport,
                app_proto, encrypted, bytes_out: counts[0], bytes_in: counts[1],
                packets_out: counts[2], packets_in: counts[3], source, resolver }
    }
}

prop_compose! {
    fn flow_record()(times in [time(), time(), time()], flow_id in any::<u64>().prop_map(FlowId),
                     labels in (label(), label(), of(label()), of(label())),
                     schema in any::<u32>(), device in device_ref().boxed(), remote in remote_ref().boxed(),
                     via in of(via_ref().boxed()),
                     transport in any::<u8>().prop_map(Transport::from_ip_proto),
                     bools in (any::<bool>(), of(any::<bool>()), of(any::<bool>())),
                     alpn in of(shared_text()),
                     counts in [count(), count(), count(), count(), count(), count(), count()],
                     flags in (of(any::<u8>().prop_map(TcpFlags)), of(any::<u8>().prop_map(TcpFlags))), vlan in of(any::<u16>()),
                     alerts in vec(text(), 0..3), source in source_ref().boxed(),
                     redirect in of(redirect_ref().boxed()), resolver in of(resolver_ref().boxed())) -> FlowRecord {
        FlowRecord {
            timestamp: times[0], event_type: labels.0, schema, flow_id, start: times[1],
            end: times[2], end_reason: labels.1, device, remote, via, transport,
            internal: bools.0, app_proto: labels.2, encrypted: bools.1, tls_version: labels.3,
            alpn, dns_named: bools.2, bytes_out: counts[0], bytes_in: counts[1],
            packets_out: counts[2], packets_in: counts[3], payload_bytes_out: counts[4],
            payload_bytes_in: counts[5], tcp_flags_out: flags.0, tcp_flags_in: flags.1, vlan,
            alerts, alerts_suppressed: counts[6], source, redirect, resolver,
        }
    }
}

prop_compose! {
    fn dns_record()(timestamp in time(), event_type in label(), schema in any::<u32>(),
                    device in device_ref().boxed(), resolver in ip(), query in text(),
                    rcode in any::<u8>(), answers in vec(ip(), 0..4),
                    cname_chain in vec(text(), 0..3), ttl in of(any::<u32>())) -> DnsRecord {
        DnsRecord { timestamp, event_type, schema, device, resolver, query, rcode, answers,
                    cname_chain, ttl }
    }
}

fn traffic() -> BoxedStrategy<Traffic> {
    [count(), count(), count(), count(), count()]
        .prop_map(|c| Traffic {
            flows: c[0],
            bytes_out: c[1],
            bytes_in: c[2],
            packets_out: c[3],
            packets_in: c[4],
        })
        .boxed()
}

fn rule_counts() -> BoxedStrategy<BTreeMap<String, RuleCount>> {
    btree_map(
        text(),
        (text(), count(), count()).prop_map(|(severity, alerts, suppressed)| RuleCount {
            severity,
            alerts,
            suppressed,
        }),
        0..3,
    )
    .boxed()
}

prop_compose! {
    fn resolver_summary()(ip in ip(), kind in label(), country in of(country()),
                          asn in of(any::<u32>()), hostname in of(text()),
                          counts in [count(), count(), count()],
                          seen in [time(), time()]) -> ResolverSummary {
        ResolverSummary { ip, kind, country, asn, hostname, flows: counts[0],
                          queries: counts[1], bytes_out: counts[2], first_seen: seen[0],
                          last_seen: seen[1] }
    }
}

prop_compose! {
    fn device_summary()(device in device_ref().boxed(), egress in traffic(),
                        countries in btree_map(text(), traffic(), 0..3),
                        asns in btree_map(any::<u32>(), traffic(), 0..3),
                        internal in traffic(),
                        encryption in [count(), count(), count()],
                        names in btree_map(text(), (btree_set(text(), 0..3), count(), count(),
                                                    text()), 0..3),
                        dropped in [count(), count()], hardcoded in vec(ip(), 0..3),
                        alerts in rule_counts(), resolvers in vec(resolver_summary().boxed(), 0..2))
                        -> DeviceSummary {
        DeviceSummary {
            device, egress, countries, asns, internal,
            encryption: EncryptionBytes {
                encrypted_bytes_out: encryption[0],
                plaintext_bytes_out: encryption[1],
                no_payload_bytes_out: encryption[2],
            },
            names: names.into_iter().map(|(k, (countries, flows, bytes_out, source))| {
                (k, NameSummary { countries, flows, bytes_out, source })
            }).collect(),
            names_dropped: dropped[0], hardcoded, alerts, resolvers,
            resolvers_dropped: dropped[1],
        }
    }
}

prop_compose! {
    fn summary()(times in [of(time()), of(time()), of(time())], event_type in label(),
                 schema in any::<u32>(), tool in text(), policy in text(),
                 inputs in vec((text(), count(), of(text()), of(count())), 0..3),
                 alerts in rule_counts(), devices in vec(device_summary().boxed(), 0..3),
                 frames in count()) -> Summary {
        Summary {
            timestamp: times[0], event_type, schema, tool, policy, first_packet: times[1],
            last_packet: times[2],
            inputs: inputs.into_iter().map(|(name, frames, error, drops)| {
                InputSummary { name, frames, error, drops }
            }).collect(),
            databases: Vec::new(),
            counters: RunCounters { frames, ..RunCounters::default() },
            alerts, devices, limits: Limits::default(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn strings_escape_as_serde_json(s in text()) {
        prop_assert_eq!(ours(s.as_str()), serde(&s));
    }

    #[test]
    fn clean_prefix_stops_at_the_first_byte_to_escape(
        bytes in vec(prop_oneof![any::<u8>(), select(vec![0u8, 0x1f, 0x20, b'"', b'\\', 0x7f, 0x80, 0xff])], 0..40)
    ) {
        let naive = bytes.iter().position(|&b| needs_escape(b)).unwrap_or(bytes.len());
        prop_assert_eq!(clean_prefix(&bytes), naive);
    }

    #[test]
    fn addresses_print_as_std(ip in ip()) {
        prop_assert_eq!(ours(&ip), serde(&ip));
        prop_assert_eq!(ours(&ip), format!("\"{ip}\""));
    }

    #[test]
    fn alerts_write_as_serde_json(a in alert()) {
        prop_assert_eq!(ours(&a), serde(&a));
    }

    #[test]
    fn flow_records_write_as_serde_json(f in flow_record()) {
        prop_assert_eq!(ours(&f), serde(&f));
    }

    #[test]
    fn dns_records_write_as_serde_json(d in dns_record()) {
        prop_assert_eq!(ours(&d), serde(&d));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn summaries_write_as_serde_json(s in summary()) {
        let mut out = Vec::new();
        write_summary(&mut out, &s).expect("writes");
        prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), serde(&s));
    }
}

#[test]
fn every_byte_escapes_as_serde_json() {
    for b in 0..=0x7fu8 {
        let s = char::from(b).to_string();
        assert_eq!(ours(s.as_str()), serde(&s), "byte {b:#04x}");
    }
}

#[test]
fn scalars_at_their_edges() {
    for t in 0..=u8::MAX {
        let t = Transport::from_ip_proto(t);
        assert_eq!(ours(&t), serde(&t));
    }
    for n in [0u64, 9, 10, 99, 100, u64::MAX] {
        assert_eq!(ours(&n), serde(&n));
    }
    for mac in [[0u8; 6], [0xff; 6], [0x02, 0x42, 0xac, 0x11, 0x00, 0x50]] {
        assert_eq!(ours(&Mac(mac)), serde(&Mac(mac)));
    }
    for ip in [
        "::",
        "::1",
        "1::",
        "::ffff:0.0.0.0",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "1:0:0:1::1",
    ] {
        let ip: IpAddr = ip.parse().expect("address");
        assert_eq!(ours(&ip), serde(&ip));
    }
    let set: BTreeSet<String> = ["b\"", "a"].into_iter().map(String::from).collect();
    assert_eq!(ours(&set), serde(&set));
}

proptest! {
    #[test]
    fn flow_ids_print_as_the_formatter_does(id in prop_oneof![any::<u64>(), Just(0), Just(u64::MAX)]) {
        let id = FlowId(id);
        prop_assert_eq!(id.to_string(), format!("{:016x}", id.0));
        prop_assert_eq!(ours(&id), serde(&id));
    }

    #[test]
    fn tcp_flags_write_as_serde_json(flags in any::<u8>()) {
        let flags = TcpFlags(flags);
        prop_assert_eq!(ours(&flags), serde(&flags));
        prop_assert_eq!(ours(&flags), format!("\"{flags}\""));
    }
}

#[test]
fn tcp_flags_in_their_fixed_order() {
    assert_eq!(TcpFlags(0).to_string(), "");
    assert_eq!(TcpFlags(0x02 | 0x10 | 0x01 | 0x08).to_string(), "SAFP");
    assert_eq!(TcpFlags(0xff).to_string(), "SAFRPUEC");
}
