//! Heap allocations on the per-packet hot path, counted by a global allocator in this test binary.
//!
//! A capture is built in memory: first one packet for each of a few hundred flows (warm-up: the
//! flows are created, looked up in the GeoIP database and judged by the policy), then many
//! packets on those same flows. Only the second part is counted: reading a frame, decoding it and
//! accounting it to an existing flow should not allocate. Prints the figure (see BENCHMARKS.md);
//! asserts only a loose bound, never a timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType, Replay};
use egresswatch::craft::{self, tcp_flags::*};
use egresswatch::decode::Mac;
use egresswatch::engine::{Engine, Settings};
use egresswatch::event::Event;
use egresswatch::geoip::Resolver;
use egresswatch::policy::Policy;
use egresswatch::sink::{Sink, SinkError};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Drops every event.
struct Null;

impl Sink for Null {
    fn emit(&mut self, _: Event<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

const FLOWS: u32 = 300;
const STEADY_PACKETS: u32 = 30_000;
const T0: i64 = 1_768_471_200_000_000_000;
const GATEWAY: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
/// First octets of public /8s spread over the RIRs (so the remotes get countries, CN included).
const SLASH8: [u8; 10] = [3, 13, 31, 46, 58, 77, 101, 151, 185, 203];

fn capture() -> Vec<u8> {
    let mut w = PcapWriter::new(
        Vec::new(),
        LinkType::ETHERNET,
        TsResolution::Micro,
        Endian::Little,
    )
    .expect("pcap header");
    let flow = |i: u32| {
        let device = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10 + (i % 100) as u8)),
            40_000 + i as u16,
        );
        let remote = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                SLASH8[(i % 10) as usize],
                (i * 7) as u8,
                (i * 13) as u8,
                1 + (i % 200) as u8,
            )),
            443,
        );
        let mac = Mac([0x02, 0, 0x5e, 0, 0, (i % 100) as u8]);
        (mac, device, remote)
    };
    let mut t = T0;
    for i in 0..FLOWS {
        let (mac, d, r) = flow(i);
        t += 100_000;
        let f = craft::ethernet(mac, GATEWAY, &[], &craft::tcp(d, r, SYN, b""));
        w.write_frame(t, &f, f.len() as u32).expect("write");
    }
    let data = [0x17u8; 1400];
    for k in 0..STEADY_PACKETS {
        let (mac, d, r) = flow(k.wrapping_mul(2_654_435_761) % FLOWS);
        t += 100_000;
        let f = match k % 3 {
            0 => craft::ethernet(mac, GATEWAY, &[], &craft::tcp(d, r, ACK, b"")),
            1 => craft::ethernet(GATEWAY, mac, &[], &craft::tcp(r, d, PSH | ACK, &data)),
            _ => craft::ethernet(
                mac,
                GATEWAY,
                &[],
                &craft::tcp(d, r, PSH | ACK, &data[..200]),
            ),
        };
        w.write_frame(t, &f, f.len() as u32).expect("write");
    }
    w.into_inner()
}

#[test]
fn existing_flows_allocate_at_most_rarely() {
    let bytes = capture();
    let mut replay =
        Replay::from_reader("alloc.pcap".to_owned(), Box::new(Cursor::new(bytes))).expect("open");
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Null)];
    let mut engine = Engine::new(
        Policy::embedded_default(),
        Resolver::embedded().expect("embedded database"),
        &Settings::default(),
        replay.input_names().to_vec(),
        sinks,
    );
    let mut seen = 0u32;
    let mut warm_up = 0;
    COUNTING.store(true, Ordering::Relaxed);
    while let Some(frame) = replay.next_frame().expect("frame") {
        engine.process(&frame).expect("process");
        seen += 1;
        if seen == FLOWS {
            warm_up = ALLOCS.swap(0, Ordering::Relaxed);
        }
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let report = engine.finish().expect("finish");
    assert_eq!(report.summary.counters.flows, u64::from(FLOWS));
    assert_eq!(seen, FLOWS + STEADY_PACKETS);
    let per_packet = allocs as f64 / f64::from(STEADY_PACKETS);
    // The counter works: creating flows (GeoIP cache entries, device names) does allocate.
    assert!(warm_up > 0, "no allocation counted during warm-up");
    println!("allocations while creating {FLOWS} flows: {warm_up}");
    println!(
        "allocations on existing flows: {allocs} over {STEADY_PACKETS} packets ({per_packet:.4} per packet)"
    );
    assert!(
        per_packet < 1.0,
        "{per_packet} allocations per packet on existing flows"
    );
}
