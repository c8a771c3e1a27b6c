//! Writes examples/demo.pcap: a small, deterministic capture of a lab network where a camera and
//! a phone talk to servers in several countries, including China.
//!
//! ```sh
//! cargo run --example make_demo            # rewrites examples/demo.pcap
//! ```
//!
//! The remote addresses are real public addresses whose country the embedded database knows
//! (checked with `egresswatch lookup`); nothing is ever sent to them: this only writes a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType};
use egresswatch::craft::{self, tcp_flags::*};
use egresswatch::decode::Mac;

const CAMERA: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x50]);
const PHONE: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x60]);
const GATEWAY: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
/// 2026-01-15T10:00:00Z.
const T0: i64 = 1_768_471_200_000_000_000;
const MS: i64 = 1_000_000;

struct Demo {
    frames: Vec<(i64, Vec<u8>)>,
}

impl Demo {
    fn out(&mut self, t: i64, mac: Mac, ip: Vec<u8>) {
        self.frames
            .push((t, craft::ethernet(mac, GATEWAY, &[], &ip)));
    }

    fn back(&mut self, t: i64, mac: Mac, ip: Vec<u8>) {
        self.frames
            .push((t, craft::ethernet(GATEWAY, mac, &[], &ip)));
    }

    /// A TCP session: handshake, `up` bytes sent, `down` bytes received, close.
    fn session(&mut self, t: i64, mac: Mac, dev: &str, remote: &str, up: usize, down: usize) {
        let (d, r): (SocketAddr, SocketAddr) = (dev.parse().unwrap(), remote.parse().unwrap());
        self.out(t, mac, craft::tcp(d, r, SYN, b""));
        self.back(t + 30 * MS, mac, craft::tcp(r, d, SYN | ACK, b""));
        self.out(t + 31 * MS, mac, craft::tcp(d, r, ACK, b""));
        let mut at = t + 32 * MS;
        for chunk in vec![0x17u8; up].chunks(1400) {
            self.out(at, mac, craft::tcp(d, r, PSH | ACK, chunk));
            at += MS;
        }
        for chunk in vec![0x17u8; down].chunks(1400) {
            self.back(at + 30 * MS, mac, craft::tcp(r, d, PSH | ACK, chunk));
            at += MS;
        }
        self.out(at + 40 * MS, mac, craft::tcp(d, r, FIN | ACK, b""));
        self.back(at + 70 * MS, mac, craft::tcp(r, d, FIN | ACK, b""));
        self.out(at + 71 * MS, mac, craft::tcp(d, r, ACK, b""));
    }

    fn udp(&mut self, t: i64, mac: Mac, dev: &str, remote: &str, up: &[u8], down: &[u8]) {
        let (d, r): (SocketAddr, SocketAddr) = (dev.parse().unwrap(), remote.parse().unwrap());
        self.out(t, mac, craft::udp(d, r, up));
        if !down.is_empty() {
            self.back(t + 25 * MS, mac, craft::udp(r, d, down));
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut demo = Demo { frames: Vec::new() };
    let cam = "192.168.1.50";
    let phone = "192.168.1.60";
    // The camera: time from a public NTP pool (US), then a cloud upload to China (Tencent), then
    // a heartbeat to the same service a minute later, and a firmware check over IPv6 (China).
    demo.udp(
        T0,
        CAMERA,
        &format!("{cam}:123"),
        "8.8.8.8:123",
        &[0x23; 48],
        &[0x24; 48],
    );
    demo.session(
        T0 + 500 * MS,
        CAMERA,
        &format!("{cam}:50100"),
        "203.205.151.162:443",
        24_000,
        3_000,
    );
    demo.session(
        T0 + 65_000 * MS,
        CAMERA,
        &format!("{cam}:50101"),
        "203.205.151.162:443",
        600,
        400,
    );
    demo.session(
        T0 + 70_000 * MS,
        CAMERA,
        "[fd00:1::50]:50102",
        "[2400:da00::6666]:443",
        2_000,
        9_000,
    );
    // The camera also calls an HTTP DNS service in China.
    demo.session(
        T0 + 80_000 * MS,
        CAMERA,
        &format!("{cam}:50103"),
        "203.107.1.65:80",
        400,
        900,
    );
    // The phone: Germany and the US.
    demo.session(
        T0 + 1_000 * MS,
        PHONE,
        &format!("{phone}:40001"),
        "3.127.176.74:443",
        5_000,
        60_000,
    );
    demo.session(
        T0 + 2_000 * MS,
        PHONE,
        &format!("{phone}:40002"),
        "151.101.1.69:443",
        1_500,
        20_000,
    );
    // Local traffic that never leaves: the camera's web UI and SSDP multicast.
    demo.session(
        T0 + 3_000 * MS,
        PHONE,
        &format!("{phone}:40003"),
        "192.168.1.50:80",
        300,
        4_000,
    );
    demo.udp(
        T0 + 4_000 * MS,
        CAMERA,
        &format!("{cam}:1900"),
        "239.255.255.250:1900",
        b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n",
        b"",
    );
    // An inbound scan of the camera from China: seen, but not egress.
    for (i, port) in [23u16, 2323, 8080].iter().enumerate() {
        let src: SocketAddr = "114.114.114.114:61000".parse().unwrap();
        let dst: SocketAddr = format!("{cam}:{port}").parse().unwrap();
        demo.back(
            T0 + 90_000 * MS + i as i64 * MS,
            CAMERA,
            craft::tcp(src, dst, SYN, b""),
        );
    }
    demo.frames.sort_by_key(|(t, _)| *t);

    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/demo.pcap".to_owned());
    let mut w = PcapWriter::new(
        BufWriter::new(File::create(&path)?),
        LinkType::ETHERNET,
        TsResolution::Micro,
        Endian::Little,
    )?;
    for (t, f) in &demo.frames {
        w.write_frame(*t, f, f.len() as u32)?;
    }
    w.into_inner().flush()?;
    eprintln!("wrote {} frames to {path}", demo.frames.len());
    Ok(())
}
