//! Flows: packets grouped by 5-tuple in both directions, with a device side and a remote side.
//!
//! This stage owns the flow key, the bounded flow table, idle expiry driven by packet time (never
//! the wall clock), and the direction rule of DESIGN.md §Direction. It knows nothing of countries
//! or policy: the engine keeps its own per-flow state in the annotation `A`.
//!
//! Guarantees: the table never holds more than `max_flows` flows (the least recently active one
//! is evicted and counted); every flow that enters the table leaves it exactly once, through
//! [`FlowTable::update`], [`FlowTable::expire`] or [`FlowTable::drain`], with its end reason.

mod table;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::decode::{Mac, Transport};

pub use table::FlowTable;

/// Default cap on flows held at once.
pub const FLOWS_MAX_DEFAULT: usize = 262_144;
/// Default idle timeout: a flow with no packet for this long (packet time) ends.
pub const IDLE_TIMEOUT_DEFAULT_NS: i64 = 120_000_000_000;

/// One side of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// 0 for transports without ports.
    pub port: u16,
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// No packet within the idle timeout.
    Idle,
    /// A TCP flow closed (RST, or FIN both ways) and a new connection reused its 5-tuple.
    Reused,
    /// The table was full and this was the least recently active flow.
    Evicted,
    /// The input ended.
    EndOfInput,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
            EndReason::EndOfInput => "end_of_input",
        }
    }
}

/// A bidirectional flow and its counters. "Out" is device → remote.
#[derive(Clone, Debug)]
pub struct Flow<A> {
    /// A stable identifier: the same input gives the same ids.
    pub id: u64,
    pub device: Endpoint,
    pub remote: Endpoint,
    pub transport: Transport,
    /// Both endpoints are in the local networks: internal traffic, not egress.
    pub internal: bool,
    pub device_mac: Option<Mac>,
    pub vlan: Option<u16>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
    /// Transport payload bytes device → remote.
    pub payload_out: u64,
    pub payload_in: u64,
    /// TCP flags seen from the device, OR-ed.
    pub tcp_flags_out: u8,
    /// TCP flags seen from the remote, OR-ed.
    pub tcp_flags_in: u8,
    /// Input index and 1-based frame index of the flow's first packet.
    pub first_packet: (u16, u64),
    /// The engine's own per-flow state.
    pub ann: A,
}

impl<A> Flow<A> {
    /// TCP saw RST, or FIN from both sides.
    pub fn tcp_closed(&self) -> bool {
        const FIN: u8 = 0x01;
        const RST: u8 = 0x04;
        (self.tcp_flags_out | self.tcp_flags_in) & RST != 0
            || (self.tcp_flags_out & FIN != 0 && self.tcp_flags_in & FIN != 0)
    }
}

/// How the table decides which side of a flow is the device.
#[derive(Clone, Debug)]
pub struct Sides {
    /// Addresses in these networks are device side (policy `local_networks`).
    pub local_networks: Vec<IpNet>,
    /// Devices named in the policy by address: always device side.
    pub device_networks: Vec<IpNet>,
    /// Devices named in the policy by MAC: the sender with this MAC is device side.
    pub device_macs: Vec<Mac>,
}

impl Sides {
    fn is_local(&self, ip: IpAddr) -> bool {
        self.local_networks.iter().any(|n| n.contains(&ip))
    }

    fn is_named(&self, ip: IpAddr) -> bool {
        self.device_networks.iter().any(|n| n.contains(&ip))
    }

    /// For the first packet of a flow (`src` → `dst`, sent by `src_mac`): whether the sender is
    /// the device side, and whether the flow is internal.
    ///
    /// In order: a device named by address or MAC; else the one local endpoint; both local is
    /// internal (the sender is the device); neither local: the sender is the device.
    pub fn classify(&self, src: IpAddr, dst: IpAddr, src_mac: Option<Mac>) -> (bool, bool) {
        let src_named =
            self.is_named(src) || src_mac.is_some_and(|m| self.device_macs.contains(&m));
        let dst_named = self.is_named(dst);
        let (src_local, dst_local) = (self.is_local(src), self.is_local(dst));
        let internal = (src_local || src_named) && (dst_local || dst_named);
        let sender_is_device = match (src_named, dst_named) {
            (true, _) => true,
            (false, true) => false,
            (false, false) => src_local || !dst_local,
        };
        (sender_is_device, internal)
    }
}

/// Table limits and timeouts.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    pub max_flows: usize,
    pub idle_timeout_ns: i64,
    pub sides: Sides,
}

/// What the table counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub created: u64,
    pub evicted: u64,
    pub expired: u64,
    /// The most flows held at once.
    pub peak: u64,
}

#[cfg(test)]
mod tests;
