use std::net::SocketAddr;

use super::*;
use crate::capture::{Frame, LinkType};
use crate::craft;
use crate::decode::{Decoder, Packet};

const SEC: i64 = 1_000_000_000;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sides() -> Sides {
    Sides {
        local_networks: vec![
            "192.168.0.0/16".parse().unwrap(),
            "fc00::/7".parse().unwrap(),
        ],
        device_networks: vec![],
        device_macs: vec![],
    }
}

fn table(max_flows: usize) -> FlowTable<()> {
    FlowTable::new(FlowConfig {
        max_flows,
        idle_timeout_ns: 10 * SEC,
        sides: sides(),
    })
}

fn with_packet<R>(ip: &[u8], f: impl FnOnce(&Packet<'_>) -> R) -> R {
    let frame = Frame {
        ts_ns: 0,
        link_type: LinkType::RAW,
        data: ip,
        wire_len: ip.len() as u32,
        source: 0,
        index: 1,
    };
    let p = Decoder::new().decode(&frame).unwrap();
    f(&p)
}

#[test]
fn both_directions_share_a_flow_and_the_local_side_is_the_device() {
    let mut t = table(10);
    let mut ended = Vec::new();
    // The remote speaks first (a scan of the device): the device is still the local side.
    let inbound = craft::tcp(sa("203.0.113.7:443"), sa("192.168.1.50:5000"), 0x12, b"hi");
    let outbound = craft::tcp(
        sa("192.168.1.50:5000"),
        sa("203.0.113.7:443"),
        0x10,
        b"hello",
    );
    with_packet(&inbound, |p| {
        let u = t.update(p, SEC, (0, 1), &mut ended);
        assert!(u.is_new);
        assert!(!u.outbound);
        assert_eq!(
            u.flow.device.ip,
            "192.168.1.50".parse::<std::net::IpAddr>().unwrap()
        );
    });
    with_packet(&outbound, |p| {
        let u = t.update(p, 2 * SEC, (0, 2), &mut ended);
        assert!(!u.is_new);
        assert!(u.outbound);
        assert_eq!((u.flow.packets_in, u.flow.packets_out), (1, 1));
        assert_eq!((u.flow.bytes_in, u.flow.bytes_out), (42, 45));
        assert_eq!((u.flow.payload_in, u.flow.payload_out), (2, 5));
        assert!(!u.flow.internal);
    });
    assert_eq!(t.len(), 1);
    assert!(ended.is_empty());
}

#[test]
fn idle_flows_expire_by_packet_time() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let a = craft::udp(sa("192.168.1.50:1"), sa("203.0.113.1:53"), b"");
    let b = craft::udp(sa("192.168.1.50:2"), sa("203.0.113.1:53"), b"");
    with_packet(&a, |p| {
        t.update(p, 0, (0, 1), &mut ended);
    });
    with_packet(&b, |p| {
        t.update(p, 5 * SEC, (0, 2), &mut ended);
    });
    t.expire(11 * SEC, &mut ended);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, EndReason::Idle);
    assert_eq!(ended[0].0.device.port, 1);
    assert_eq!(t.stats().expired, 1);
}

#[test]
fn a_full_table_evicts_the_least_recently_active() {
    let mut t = table(2);
    let mut ended = Vec::new();
    for (i, port) in [1u16, 2, 1, 3].iter().enumerate() {
        let ip = craft::udp(
            sa(&format!("192.168.1.50:{port}")),
            sa("203.0.113.1:53"),
            b"",
        );
        with_packet(&ip, |p| {
            t.update(p, i as i64, (0, i as u64), &mut ended);
        });
    }
    assert_eq!(t.len(), 2);
    assert_eq!(ended.len(), 1);
    assert_eq!(
        ended[0].0.device.port, 2,
        "port 1 was touched again, so 2 goes"
    );
    assert_eq!(ended[0].1, EndReason::Evicted);
    assert_eq!(t.stats().evicted, 1);
    t.drain(&mut ended);
    assert_eq!(ended.len(), 3);
    assert!(t.is_empty());
}

#[test]
fn a_new_syn_after_close_starts_a_new_flow() {
    let mut t = table(10);
    let mut ended = Vec::new();
    let pkts = [
        craft::tcp(sa("192.168.1.50:4000"), sa("203.0.113.1:80"), 0x02, b""),
        craft::tcp(sa("203.0.113.1:80"), sa("192.168.1.50:4000"), 0x14, b""),
        craft::tcp(sa("192.168.1.50:4000"), sa("203.0.113.1:80"), 0x02, b""),
    ];
    for (i, ip) in pkts.iter().enumerate() {
        with_packet(ip, |p| {
            let u = t.update(p, i as i64 * SEC, (0, i as u64 + 1), &mut ended);
            assert_eq!(u.is_new, i != 1);
        });
    }
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, EndReason::Reused);
}

#[test]
fn direction_rules() {
    let mut s = sides();
    let ip = |x: &str| x.parse::<std::net::IpAddr>().unwrap();
    // One local side: it is the device, whoever sent first.
    assert_eq!(
        s.classify(ip("8.8.8.8"), ip("192.168.1.2"), None),
        (false, false)
    );
    // Both local: internal, the sender is the device.
    assert_eq!(
        s.classify(ip("192.168.1.3"), ip("192.168.1.2"), None),
        (true, true)
    );
    // Neither local: the sender is the device.
    assert_eq!(
        s.classify(ip("8.8.8.8"), ip("1.1.1.1"), None),
        (true, false)
    );
    // A named device wins even with a public address.
    s.device_networks.push("1.1.1.1/32".parse().unwrap());
    assert_eq!(
        s.classify(ip("8.8.8.8"), ip("1.1.1.1"), None),
        (false, false)
    );
    // A device named by MAC is the sender whose MAC matches.
    let m = crate::decode::Mac([2, 0, 0, 0, 0, 9]);
    s.device_macs.push(m);
    assert_eq!(
        s.classify(ip("9.9.9.9"), ip("8.8.8.8"), Some(m)),
        (true, false)
    );
}

#[test]
fn flow_ids_are_stable() {
    let run = || {
        let mut t = table(10);
        let mut ended = Vec::new();
        let ip = craft::udp(sa("192.168.1.50:1"), sa("203.0.113.1:53"), b"");
        with_packet(&ip, |p| t.update(p, 77, (0, 1), &mut ended).flow.id)
    };
    assert_eq!(run(), run());
}

/// A table of at most `cap` flows as a plain list, oldest activity first: the specification the
/// slab and its link array must follow.
struct Model {
    cap: usize,
    now: i64,
    /// (device port, transport is TCP, last seen, flags out | in as (out, in)).
    flows: Vec<(u16, bool, i64, (u8, u8))>,
    ended: Vec<(u16, bool, EndReason)>,
}

impl Model {
    fn closed(flags: (u8, u8)) -> bool {
        (flags.0 | flags.1) & 0x04 != 0 || (flags.0 & 0x01 != 0 && flags.1 & 0x01 != 0)
    }

    fn update(&mut self, port: u16, tcp: bool, outbound: bool, flags: u8, ts: i64) {
        self.now = self.now.max(ts);
        let deadline = self.now - 10 * SEC;
        while self.flows.first().is_some_and(|f| f.2 < deadline) {
            let f = self.flows.remove(0);
            self.ended.push((f.0, f.1, EndReason::Idle));
        }
        let mut at = self.flows.iter().position(|f| f.0 == port && f.1 == tcp);
        if let Some(i) = at
            && tcp
            && flags & 0x12 == 0x02
            && Model::closed(self.flows[i].3)
        {
            let f = self.flows.remove(i);
            self.ended.push((f.0, f.1, EndReason::Reused));
            at = None;
        }
        let mut f = match at {
            Some(i) => self.flows.remove(i),
            None => {
                if self.flows.len() >= self.cap {
                    let f = self.flows.remove(0);
                    self.ended.push((f.0, f.1, EndReason::Evicted));
                }
                (port, tcp, ts, (0, 0))
            }
        };
        f.2 = f.2.max(ts);
        if tcp {
            if outbound {
                f.3.0 |= flags;
            } else {
                f.3.1 |= flags;
            }
        }
        // Most recently active last; a packet older than the flow's last one still moves it.
        self.flows.push(f);
    }
}

proptest::proptest! {
    #[test]
    fn the_table_follows_the_list_model(
        cap in 1usize..5,
        ops in proptest::collection::vec(
            (1u16..7, proptest::bool::ANY, proptest::bool::ANY,
             proptest::sample::select(vec![0x02u8, 0x10, 0x11, 0x04, 0x12]), -3i64..8),
            1..120,
        ),
    ) {
        let mut t = table(cap);
        let mut ended = Vec::new();
        let mut model = Model { cap, now: i64::MIN, flows: Vec::new(), ended: Vec::new() };
        let mut ts = 100 * SEC;
        for (n, (port, tcp, outbound, flags, step)) in ops.into_iter().enumerate() {
            ts += step * SEC;
            let (dev, remote) = (sa(&format!("192.168.1.50:{port}")), sa("203.0.113.1:443"));
            let (src, dst) = if outbound { (dev, remote) } else { (remote, dev) };
            let ip = if tcp {
                craft::tcp(src, dst, flags, b"")
            } else {
                craft::udp(src, dst, b"")
            };
            with_packet(&ip, |p| {
                t.update(p, ts, (0, n as u64), &mut ended);
            });
            model.update(port, tcp, outbound, flags, ts);
            let got: Vec<_> = ended
                .iter()
                .map(|(f, r)| (f.device.port, f.transport == crate::decode::Transport::Tcp, *r))
                .collect();
            proptest::prop_assert_eq!(&got, &model.ended);
            proptest::prop_assert_eq!(t.len(), model.flows.len());
        }
        t.drain(&mut ended);
        proptest::prop_assert_eq!(ended.len(), model.ended.len() + model.flows.len());
    }
}

/// Review (issue 5): the integer key keeps IPv4 and IPv4-mapped IPv6 apart, as the `IpAddr` key
/// did (no test covered the family bit of `Key::rest`).
#[test]
fn ipv4_and_ipv4_mapped_ipv6_are_different_flows() {
    let mut t = table(16);
    let mut ended = Vec::new();
    let v4 = craft::tcp(sa("192.168.1.50:1000"), sa("203.0.113.1:443"), 0x02, b"");
    let v6 = craft::tcp(
        sa("[::ffff:192.168.1.50]:1000"),
        sa("[::ffff:203.0.113.1]:443"),
        0x02,
        b"",
    );
    with_packet(&v4, |p| {
        assert!(t.update(p, SEC, (0, 0), &mut ended).is_new);
    });
    with_packet(&v6, |p| {
        assert!(t.update(p, SEC, (0, 1), &mut ended).is_new);
    });
    with_packet(&v4, |p| {
        assert!(!t.update(p, 2 * SEC, (0, 2), &mut ended).is_new);
    });
    assert_eq!(t.len(), 2);
}
