//! Caps on what hostile input can make the engine hold or write, and what each cap dropped.
//!
//! Every structure that grows with the capture (flows, the passive DNS cache, fragment
//! tracking, reassembly buffers, per-device summary lists, de-duplication, route memory, run
//! totals) has a cap here, with its default as a named constant and a CLI flag on `replay` and
//! `live` (see docs/robustness.md, "Caps"). Per-message bounds of the parsers (answers per DNS
//! message, CNAME links, ClientHello bytes) do not grow with the capture: they are fixed
//! constants, but what they drop is counted all the same. Every cap is reported in the summary's
//! `limits` object and in live `stats` events as `{"cap": N, "dropped": M}`.

use serde::Serialize;

/// Default: device/address pairs the passive DNS cache holds.
pub const DNS_CACHE_DEFAULT: usize = crate::names::attribution::DNS_CACHE_MAX_ENTRIES;
/// Default: first fragments remembered (for the ports of later fragments).
pub const FRAGMENTS_DEFAULT: usize = crate::decode::FRAGMENTS_MAX_TRACKED;
/// Default: devices listed in the summary.
pub const DEVICES_DEFAULT: usize = 16_384;
/// Default: names listed per device in the summary.
pub const NAMES_PER_DEVICE_DEFAULT: usize = crate::engine::SUMMARY_NAMES_MAX;
/// Default: autonomous systems listed per device in the summary.
pub const ASNS_PER_DEVICE_DEFAULT: usize = 4_096;
/// Default: hard-coded addresses listed per device in the summary.
pub const HARDCODED_PER_DEVICE_DEFAULT: usize = crate::engine::SUMMARY_HARDCODED_MAX;
/// Default: names, ASNs and hard-coded addresses listed in the summary over all devices (the
/// per-device caps times the device cap would allow billions).
pub const SUMMARY_ENTRIES_DEFAULT: usize = 1 << 20;
/// Default: (alert, device, remote) triples remembered for de-duplication.
pub const DEDUP_DEFAULT: usize = crate::engine::DEDUP_MAX_ENTRIES;
/// Default: (device, name) pairs whose first country is remembered (re-routing checks).
pub const ROUTES_DEFAULT: usize = crate::routes::ROUTES_MAX_ENTRIES;
/// Default: (device, country) and (device, name) run totals kept, each.
pub const RUN_TOTALS_DEFAULT: usize = crate::engine::RUN_TOTALS_MAX_ENTRIES;
/// Default: bytes all flows together may hold in reassembly buffers (TLS ClientHello, QUIC
/// CRYPTO, DNS over TCP, HTTP request heads).
pub const REASSEMBLY_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// The configurable caps of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub dns_cache: usize,
    pub fragments: usize,
    pub devices: usize,
    pub names_per_device: usize,
    pub asns_per_device: usize,
    pub hardcoded_per_device: usize,
    pub dedup: usize,
    pub routes: usize,
    pub run_totals: usize,
    pub reassembly_bytes: usize,
    pub summary_entries: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            dns_cache: DNS_CACHE_DEFAULT,
            fragments: FRAGMENTS_DEFAULT,
            devices: DEVICES_DEFAULT,
            names_per_device: NAMES_PER_DEVICE_DEFAULT,
            asns_per_device: ASNS_PER_DEVICE_DEFAULT,
            hardcoded_per_device: HARDCODED_PER_DEVICE_DEFAULT,
            dedup: DEDUP_DEFAULT,
            routes: ROUTES_DEFAULT,
            run_totals: RUN_TOTALS_DEFAULT,
            reassembly_bytes: REASSEMBLY_BYTES_DEFAULT,
            summary_entries: SUMMARY_ENTRIES_DEFAULT,
        }
    }
}

/// One cap and what it dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The cap in force (entries, or bytes for `reassembly_bytes` and `tls_hello_bytes`).
    pub cap: u64,
    /// What the cap dropped or evicted; the unit is stated per cap in docs/json-format.md.
    pub dropped: u64,
}

impl Limit {
    pub fn new(cap: usize) -> Limit {
        Limit {
            cap: u64::try_from(cap).unwrap_or(u64::MAX),
            dropped: 0,
        }
    }

    /// Counts `n` more dropped.
    pub fn drop_n(&mut self, n: u64) {
        self.dropped = self.dropped.saturating_add(n);
    }
}

/// Every cap of the run, in the summary (`limits`) and in live `stats` events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Flows held at once (`--max-flows`); dropped: flows evicted (least recently active).
    pub flows: Limit,
    /// Passive DNS cache entries (`--max-dns-cache`); dropped: entries evicted.
    pub dns_cache: Limit,
    /// The passive DNS cache's name → addresses side, for proxy and redirect targets named by
    /// host (`--max-dns-cache` too); dropped: (device, name) entries evicted.
    pub dns_names: Limit,
    /// First fragments tracked (`--max-fragments`); dropped: records evicted.
    pub fragments: Limit,
    /// Devices in the summary (`--max-devices`); dropped: flows and alerts of devices not listed.
    pub devices: Limit,
    /// Names per device (`--max-names-per-device`); dropped: flows whose name was not listed.
    pub names_per_device: Limit,
    /// ASNs per device (`--max-asns-per-device`); dropped: flows whose ASN was not listed.
    pub asns_per_device: Limit,
    /// Hard-coded addresses per device (`--max-hardcoded-per-device`); dropped: flows to an
    /// address not listed.
    pub hardcoded_per_device: Limit,
    /// De-duplication entries (`--max-dedup`); dropped: entries forgotten when it was full.
    pub dedup: Limit,
    /// Route memory (`--max-routes`); dropped: (device, name) pairs or reports not remembered.
    pub routes: Limit,
    /// Run totals (`--max-run-totals`); dropped: additions to totals not kept.
    pub run_totals: Limit,
    /// Reassembly bytes over all flows (`--max-reassembly-bytes`); dropped: flows whose
    /// buffers were freed and whose reassembly stopped.
    pub reassembly_bytes: Limit,
    /// Answers kept per DNS message (fixed); dropped: A/AAAA/CNAME records not kept.
    pub dns_answers: Limit,
    /// Questions kept per DNS message (fixed); dropped: questions not kept.
    pub dns_questions: Limit,
    /// CNAME links followed per question (fixed); dropped: chains cut (too long or a loop).
    pub dns_cname_chain: Limit,
    /// `dns` events pending per packet (fixed); dropped: events not written.
    pub dns_events: Limit,
    /// GeoIP answers cached (fixed); dropped: entries forgotten when the full cache was
    /// emptied (each costs one more database look-up, never a wrong answer).
    pub geoip_cache: Limit,
    /// Names, ASNs and hard-coded addresses in the summary over all devices
    /// (`--max-summary-entries`); dropped: flows whose name, ASN or address was not listed
    /// because of it.
    pub summary_entries: Limit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_serialize_as_cap_and_dropped() {
        let mut l = Limits {
            dns_cache: Limit::new(100),
            ..Limits::default()
        };
        l.dns_cache.drop_n(7);
        let v = serde_json::to_value(l).unwrap();
        assert_eq!(v["dns_cache"]["cap"], 100);
        assert_eq!(v["dns_cache"]["dropped"], 7);
        assert_eq!(v["flows"]["dropped"], 0);
    }

    #[test]
    fn defaults_are_the_named_constants() {
        let c = Caps::default();
        assert_eq!(c.dns_cache, DNS_CACHE_DEFAULT);
        assert_eq!(c.reassembly_bytes, REASSEMBLY_BYTES_DEFAULT);
        assert_eq!(c.devices, DEVICES_DEFAULT);
    }
}
