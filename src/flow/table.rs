//! The bounded flow table: a slab of flows threaded on a least-recently-active list.
//!
//! Lookup is a hash table of slab indexes (4 bytes an entry, so it stays in cache), found by the
//! canonical 5-tuple's hash and confirmed against the key kept in the slot. Every packet moves its flow
//! to the back of the list, so the front holds the flow idle longest: expiry pops from the front
//! while it is past the idle timeout, and a full table evicts the front. Both are O(1) a flow.
//!
//! The list lives in its own small array ([`Link`], 16 bytes a flow) beside the slab: moving a
//! flow to the back touches three links, not three flows of several cache lines each, and the
//! expiry check reads the front's last-seen time from its link.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

use super::{EndReason, Endpoint, Flow, FlowConfig, FlowStats};
use crate::decode::{Packet, Transport};

const NIL: u32 = u32::MAX;

/// The direction-free 5-tuple: the lower (address, port) first, as plain integers so that
/// building, comparing and hashing a key are a few register operations (this was a tenth of
/// the instructions per packet as `IpAddr` tuples hashed in one 37-byte write).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// The two addresses as IPv6 bits (IPv4 mapped), lower endpoint first: high and low halves.
    lo: [u64; 2],
    hi: [u64; 2],
    /// Lower endpoint's port, higher endpoint's port, the IP protocol number, and whether the
    /// addresses are IPv6 (an IPv6 packet between `::ffff:a.b.c.d` addresses is not the IPv4
    /// flow between `a.b.c.d` addresses).
    rest: u64,
}

/// An address as 128 bits (IPv4 mapped into IPv6), and whether it was IPv6.
#[inline]
fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

impl Key {
    #[inline]
    fn of(p: &Packet<'_>) -> Key {
        let (src, v6) = ip_bits(p.src);
        let (dst, _) = ip_bits(p.dst);
        let a = (src, p.src_port);
        let b = (dst, p.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let halves = |x: u128| [(x >> 64) as u64, x as u64];
        Key {
            lo: halves(lo.0),
            hi: halves(hi.0),
            rest: u64::from(lo.1) << 32
                | u64::from(hi.1) << 16
                | u64::from(p.transport.ip_proto()) << 8
                | u64::from(v6),
        }
    }
}

/// The order flows leave at the end of the input: first packet time, first frame, id.
type DrainKey = (i64, (u16, u64), u64);

struct Slot<A> {
    key: Key,
    /// `key`'s hash, kept for the index to grow without hashing every key again.
    hash: u64,
    flow: Flow<A>,
}

/// A slot's place on the least-recently-active list, and its flow's last packet time.
#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    last_seen_ns: i64,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    last_seen_ns: i64::MIN,
};

/// A bounded table of flows with idle expiry by packet time.
pub struct FlowTable<A> {
    config: FlowConfig,
    /// Seeded per process (foldhash): fast, and a capture cannot choose colliding keys.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Option<Slot<A>>>,
    /// `links[i]` is slot `i`'s place on the list (same length as `slots`).
    links: Vec<Link>,
    /// During an end-of-input drain: the slots still to end, the next one last.
    draining: Vec<u32>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    now_ns: i64,
    stats: FlowStats,
}

/// What [`FlowTable::update`] did with a packet.
pub struct Update<'t, A> {
    pub flow: &'t mut Flow<A>,
    /// The packet went device → remote.
    pub outbound: bool,
    /// The packet started this flow.
    pub is_new: bool,
}

/// FNV-1a, 64-bit: a fixed, dependency-free hash, so flow ids are the same on every run.
fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn flow_id(device: Endpoint, remote: Endpoint, transport: Transport, first_ns: i64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, &ip_bytes(device.ip));
    h = fnv1a(h, &device.port.to_be_bytes());
    h = fnv1a(h, &ip_bytes(remote.ip));
    h = fnv1a(h, &remote.port.to_be_bytes());
    h = fnv1a(h, &[transport.ip_proto()]);
    fnv1a(h, &first_ns.to_be_bytes())
}

impl<A: Default> FlowTable<A> {
    pub fn new(config: FlowConfig) -> FlowTable<A> {
        FlowTable {
            config,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            links: Vec::new(),
            draining: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            now_ns: i64::MIN,
            stats: FlowStats::default(),
        }
    }

    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Flows held now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn link(&mut self, i: u32) -> Option<&mut Link> {
        self.links.get_mut(i as usize)
    }

    fn unlink(&mut self, i: u32) {
        let Some(&Link { prev, next, .. }) = self.links.get(i as usize) else {
            return;
        };
        match self.link(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.link(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_back(&mut self, i: u32, last_seen_ns: i64) {
        let tail = self.tail;
        if let Some(l) = self.link(i) {
            *l = Link {
                prev: tail,
                next: NIL,
                last_seen_ns,
            };
        }
        match self.link(tail) {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
    }

    /// Removes slot `i` and hands its flow to `ended`.
    fn remove(&mut self, i: u32, reason: EndReason, ended: &mut Vec<(Flow<A>, EndReason)>) {
        self.unlink(i);
        if let Some(l) = self.link(i) {
            *l = UNLINKED;
        }
        if let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::take) {
            if let Ok(entry) = self.index.find_entry(slot.hash, |&j| j == i) {
                entry.remove();
            }
            self.free.push(i);
            ended.push((slot.flow, reason));
        }
    }

    /// Ends every flow idle past the timeout at packet time `now_ns`.
    pub fn expire(&mut self, now_ns: i64, ended: &mut Vec<(Flow<A>, EndReason)>) {
        self.now_ns = self.now_ns.max(now_ns);
        let deadline = self.now_ns.saturating_sub(self.config.idle_timeout_ns);
        while let Some(front) = self.links.get(self.head as usize) {
            if front.last_seen_ns >= deadline {
                break;
            }
            self.stats.expired += 1;
            self.remove(self.head, EndReason::Idle, ended);
        }
    }

    /// Accounts one packet to its flow, creating the flow if needed. Flows that end on the way
    /// (idle, evicted for room, or a closed TCP flow whose 5-tuple is reused) go to `ended`.
    pub fn update(
        &mut self,
        p: &Packet<'_>,
        ts_ns: i64,
        source: (u16, u64),
        ended: &mut Vec<(Flow<A>, EndReason)>,
    ) -> Update<'_, A> {
        self.expire(ts_ns, ended);
        let key = Key::of(p);
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let mut found = self
            .index
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.key == key)
            })
            .copied();
        // A new connection (a bare SYN) on the 5-tuple of a closed TCP flow starts a new flow.
        if let Some(i) = found {
            let syn_only = p.tcp_flags & 0x12 == 0x02;
            let closed = self
                .slots
                .get(i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.flow.tcp_closed());
            if syn_only && closed {
                self.remove(i, EndReason::Reused, ended);
                found = None;
            }
        }
        let (i, is_new) = match found {
            Some(i) => (i, false),
            None => (self.insert(key, hash, p, ts_ns, source, ended), true),
        };
        let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
            unreachable!("the slot was just filled");
        };
        let flow = &mut slot.flow;
        flow.last_seen_ns = flow.last_seen_ns.max(ts_ns);
        let last_seen_ns = flow.last_seen_ns;
        if !is_new {
            self.unlink(i);
        }
        self.push_back(i, last_seen_ns);
        let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
            unreachable!("the slot was just filled");
        };
        let flow = &mut slot.flow;
        let outbound = flow.device.ip == p.src && flow.device.port == p.src_port;
        let bytes = u64::from(p.ip_len);
        let payload = u64::from(p.payload_len);
        if outbound {
            flow.packets_out += 1;
            flow.bytes_out += bytes;
            flow.payload_out += payload;
            flow.tcp_flags_out |= p.tcp_flags;
            if flow.device_mac.is_none() {
                flow.device_mac = p.src_mac;
            }
        } else {
            flow.packets_in += 1;
            flow.bytes_in += bytes;
            flow.payload_in += payload;
            flow.tcp_flags_in |= p.tcp_flags;
            if flow.device_mac.is_none() {
                flow.device_mac = p.dst_mac;
            }
        }
        Update {
            flow,
            outbound,
            is_new,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        key: Key,
        hash: u64,
        p: &Packet<'_>,
        ts_ns: i64,
        source: (u16, u64),
        ended: &mut Vec<(Flow<A>, EndReason)>,
    ) -> u32 {
        if self.index.len() >= self.config.max_flows.max(1) {
            self.stats.evicted += 1;
            self.remove(self.head, EndReason::Evicted, ended);
        }
        let (sender_is_device, internal) = self.config.sides.classify(p.src, p.dst, p.src_mac);
        let src = Endpoint {
            ip: p.src,
            port: p.src_port,
        };
        let dst = Endpoint {
            ip: p.dst,
            port: p.dst_port,
        };
        let (device, remote) = if sender_is_device {
            (src, dst)
        } else {
            (dst, src)
        };
        let flow = Flow {
            id: flow_id(device, remote, p.transport, ts_ns),
            device,
            remote,
            transport: p.transport,
            internal,
            device_mac: None,
            vlan: p.vlan,
            first_seen_ns: ts_ns,
            last_seen_ns: ts_ns,
            bytes_out: 0,
            bytes_in: 0,
            packets_out: 0,
            packets_in: 0,
            payload_out: 0,
            payload_in: 0,
            tcp_flags_out: 0,
            tcp_flags_in: 0,
            first_packet: source,
            ann: A::default(),
        };
        let slot = Slot { key, hash, flow };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = Some(slot);
                }
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.links.push(UNLINKED);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, i, |&j| {
            slots
                .get(j as usize)
                .and_then(Option::as_ref)
                .map_or(0, |s| s.hash)
        });
        self.stats.created += 1;
        self.stats.peak = self.stats.peak.max(self.index.len() as u64);
        i
    }

    /// Ends every flow (the input is over), oldest first by first packet, for stable output.
    pub fn drain(&mut self, ended: &mut Vec<(Flow<A>, EndReason)>) {
        while self.drain_some(ended, usize::MAX) {}
    }

    /// [`FlowTable::drain`] a part at a time: ends at most `max` flows (in the same order) and
    /// says whether any is left. The caller can hand each part on before the next, so the
    /// flows never all sit in one list. No packet may be accounted until the drain is done.
    pub fn drain_some(&mut self, ended: &mut Vec<(Flow<A>, EndReason)>, max: usize) -> bool {
        if self.draining.is_empty() {
            // Sort small (key, slot) pairs rather than the flows themselves (hundreds of bytes
            // each, moved many times by a sort); each flow then moves once. Reversed, so that
            // the next flow is popped from the end.
            let mut order: Vec<(DrainKey, u32)> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let f = &s.as_ref()?.flow;
                    Some(((f.first_seen_ns, f.first_packet, f.id), i as u32))
                })
                .collect();
            order.sort_unstable_by(|a, b| b.cmp(a));
            self.draining = order.into_iter().map(|(_, i)| i).collect();
        }
        for _ in 0..max {
            let Some(i) = self.draining.pop() else {
                break;
            };
            if let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::take) {
                ended.push((slot.flow, EndReason::EndOfInput));
            }
        }
        if !self.draining.is_empty() {
            return true;
        }
        self.draining = Vec::new();
        self.slots.clear();
        self.index.clear();
        self.links.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        false
    }
}
