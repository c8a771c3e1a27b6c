//! The cap flags shared by `replay` and `live` (docs/robustness.md, "Caps").

use clap::Args;

use egresswatch::limits::{self, Caps};

/// Caps on what the input can make a run hold or write; what each drops is counted in the
/// summary's `limits` (and in live `stats` events).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Caps (what each drops is counted in `limits`)")]
pub struct LimitArgs {
    /// Most flows held at once; the least recently active flow is evicted (and counted) beyond.
    #[arg(long, value_name = "N", default_value_t = egresswatch::flow::FLOWS_MAX_DEFAULT)]
    pub max_flows: usize,
    /// Device/address pairs the passive DNS cache holds (at least 2); the oldest answers are
    /// evicted first.
    #[arg(long, value_name = "N", default_value_t = limits::DNS_CACHE_DEFAULT)]
    pub max_dns_cache: usize,
    /// First IP fragments remembered for the ports of later fragments (at least 2).
    #[arg(long, value_name = "N", default_value_t = limits::FRAGMENTS_DEFAULT)]
    pub max_fragments: usize,
    /// Devices listed in the summary; later devices' flows and alerts are counted only.
    #[arg(long, value_name = "N", default_value_t = limits::DEVICES_DEFAULT)]
    pub max_devices: usize,
    /// Names listed per device in the summary.
    #[arg(long, value_name = "N", default_value_t = limits::NAMES_PER_DEVICE_DEFAULT)]
    pub max_names_per_device: usize,
    /// Autonomous systems listed per device in the summary.
    #[arg(long, value_name = "N", default_value_t = limits::ASNS_PER_DEVICE_DEFAULT)]
    pub max_asns_per_device: usize,
    /// Hard-coded addresses listed per device in the summary.
    #[arg(long, value_name = "N", default_value_t = limits::HARDCODED_PER_DEVICE_DEFAULT)]
    pub max_hardcoded_per_device: usize,
    /// (alert, device, remote) triples remembered for de-duplication; when full it is emptied.
    #[arg(long, value_name = "N", default_value_t = limits::DEDUP_DEFAULT)]
    pub max_dedup: usize,
    /// (device, name) pairs remembered for the name-rerouted check.
    #[arg(long, value_name = "N", default_value_t = limits::ROUTES_DEFAULT)]
    pub max_routes: usize,
    /// (device, country) and (device, name) run totals kept, each (run-total rules).
    #[arg(long, value_name = "N", default_value_t = limits::RUN_TOTALS_DEFAULT)]
    pub max_run_totals: usize,
    /// Bytes all flows together may hold while reassembling ClientHellos, QUIC CRYPTO data,
    /// DNS-over-TCP messages and HTTP request heads; past it, the flow that grew stops
    /// reassembling.
    #[arg(long, value_name = "BYTES", default_value_t = limits::REASSEMBLY_BYTES_DEFAULT)]
    pub max_reassembly_bytes: usize,
    /// Names, ASNs and hard-coded addresses listed in the summary over all devices together.
    #[arg(long, value_name = "N", default_value_t = limits::SUMMARY_ENTRIES_DEFAULT)]
    pub max_summary_entries: usize,
}

impl LimitArgs {
    pub fn caps(&self) -> Caps {
        Caps {
            dns_cache: self.max_dns_cache.max(2),
            fragments: self.max_fragments.max(2),
            devices: self.max_devices,
            names_per_device: self.max_names_per_device,
            asns_per_device: self.max_asns_per_device,
            hardcoded_per_device: self.max_hardcoded_per_device,
            dedup: self.max_dedup.max(1),
            routes: self.max_routes,
            run_totals: self.max_run_totals.max(1),
            reassembly_bytes: self.max_reassembly_bytes,
            summary_entries: self.max_summary_entries,
        }
    }
}
