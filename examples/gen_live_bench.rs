//! Writes the capture that scripts/live-bench.sh offers to `egresswatch live` with tcpreplay.
//!
//! ```sh
//! cargo run --release --example gen_live_bench -- --packets 1000000 --out live-bench.pcap
//! ```
//!
//! Every address is a test host of the live tests (tests/fixtures/live.toml): the device under
//! test 198.18.0.10 sends UDP datagrams (payloads of 18 to 558 bytes, so frames of 60 to 600
//! bytes, mean ~330) to 4,000 remote addresses from 198.18.2.0 on (198.18.2.0–198.18.17.159), which no policy rule
//! matches, and, evenly spread over the capture, one datagram to each of the 254 hosts of
//! 198.18.1.0/24, which the fixture's override places in CN: 254 alerts, the first packet of each
//! such flow, whose delay the harness measures. Frames go from a locally administered MAC to
//! another (never to the capturing host's), so the receiving namespace's IP stack drops them at
//! once. Deterministic (a fixed splitmix64 seed). Nothing is sent anywhere: this only writes a file.

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType};
use egresswatch::craft;
use egresswatch::decode::Mac;

const DEVICE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const DEVICE_MAC: Mac = Mac([0x02, 0x65, 0x77, 0x00, 0x00, 0x0a]);
const GATEWAY_MAC: Mac = Mac([0x02, 0x65, 0x77, 0x00, 0x00, 0x01]);
/// Remote flows that raise nothing.
const QUIET_FLOWS: u32 = 4_000;
/// Hosts of 198.18.1.0/24 (CN in the fixture): one alert each.
const CN_HOSTS: u64 = 254;
/// 2026-01-15T10:00:00Z; tcpreplay --pps ignores the timestamps anyway.
const T0: i64 = 1_768_471_200_000_000_000;

fn main() -> ExitCode {
    let mut packets: u64 = 1_000_000;
    let mut out = String::from("live-bench.pcap");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--packets", Some(v)) => match v.parse() {
                Ok(n) if n >= CN_HOSTS => packets = n,
                _ => {
                    eprintln!("--packets: a number of at least {CN_HOSTS}");
                    return ExitCode::from(2);
                }
            },
            ("--out", Some(v)) => out = v,
            _ => {
                eprintln!("usage: gen_live_bench [--packets N] [--out FILE]");
                return ExitCode::from(2);
            }
        }
    }
    match write(packets, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(packets: u64, out: &str) -> std::io::Result<()> {
    let file = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut w = PcapWriter::new(file, LinkType::ETHERNET, TsResolution::Nano, Endian::Little)?;
    let mut state: u64 = 0x5eed_1b0b;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let cn_every = packets / CN_HOSTS;
    let payload = [0x5a_u8; 600];
    let mut cn_sent = 0;
    for i in 0..packets {
        let r = next();
        let (dst, src_port) = if cn_sent < CN_HOSTS && i % cn_every == cn_every / 2 {
            cn_sent += 1;
            (
                Ipv4Addr::new(198, 18, 1, u8::try_from(cn_sent).unwrap_or(254)),
                40_000,
            )
        } else {
            let flow = u32::try_from(r % u64::from(QUIET_FLOWS)).unwrap_or(0);
            // 198.18.2.0 onwards.
            let [_, _, c, d] = (0xC612_0200_u32 + flow).to_be_bytes();
            (
                Ipv4Addr::new(198, 18, c, d),
                20_000 + u16::try_from(flow % 20_000).unwrap_or(0),
            )
        };
        let len = 18 + usize::try_from((r >> 32) % 541).unwrap_or(0);
        let packet = craft::udp(
            SocketAddr::new(IpAddr::V4(DEVICE), src_port),
            SocketAddr::new(IpAddr::V4(dst), 9_000),
            &payload[..len],
        );
        let frame = craft::ethernet(DEVICE_MAC, GATEWAY_MAC, &[], &packet);
        let ts = T0 + i64::try_from(i).unwrap_or(0) * 5_000;
        w.write_frame(ts, &frame, u32::try_from(frame.len()).unwrap_or(u32::MAX))?;
    }
    std::io::Write::flush(&mut w.into_inner())
}
