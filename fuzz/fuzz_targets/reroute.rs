//! The re-routing parsers on hostile bytes: classification by content with the ports that give
//! the VPN and equipment recognisers meaning, the SOCKS handshake tracker fed in arbitrary
//! pieces from both sides, HTTP proxy answers and redirect heads.
#![no_main]

use egresswatch::decode::Transport;
use egresswatch::names::classify;
use egresswatch::names::proxy::{SocksTracker, connect_granted};
use egresswatch::names::redirect::parse_redirect;
use libfuzzer_sys::fuzz_target;

/// Ports the recognisers look at (IKE, NAT-T, NTP, syslog, SNMP, NETCONF, CWMP, MQTT, CoAP,
/// DNS, DoT, SOCKS), picked by the first input byte.
const PORTS: [u16; 14] = [
    500, 4500, 123, 514, 161, 162, 830, 7547, 1883, 5683, 53, 853, 1080, 443,
];

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let port = PORTS[usize::from(head) % PORTS.len()];
    let transport = if head & 0x80 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    for ports in [(50_000, port), (port, 50_000)] {
        std::hint::black_box(classify(rest, transport, ports));
    }
    std::hint::black_box(classify(rest, Transport::Other(50), (0, 0)));

    // The tracker, fed in pieces whose sizes come from the bytes themselves; even pieces from
    // the client, odd ones from the server.
    let mut socks = SocksTracker::default();
    let mut at = 0;
    let mut turn = 0u8;
    while at < rest.len() {
        let len = usize::from(rest[at] % 64) + 1;
        let piece = &rest[at..(at + len).min(rest.len())];
        if turn % 2 == 0 {
            socks.push_client(piece);
        } else {
            socks.push_server(piece);
        }
        std::hint::black_box((socks.is_done(), &socks.target, socks.granted));
        at += len;
        turn = turn.wrapping_add(1);
    }

    std::hint::black_box(connect_granted(rest));
    if let Ok(Some(r)) = parse_redirect(rest) {
        std::hint::black_box(r.has_host());
    }
});
