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

/// What a TCP session carries first.
#[derive(Clone, Copy)]
enum App<'a> {
    Tls(&'a str),
    Http(&'a str),
}

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

    /// A TCP session: handshake, then either a TLS exchange naming `sni` (ClientHello,
    /// ServerHello, application data both ways) or a plaintext HTTP request for `host`, then
    /// `up` bytes sent, `down` bytes received, close.
    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        t: i64,
        mac: Mac,
        dev: &str,
        remote: &str,
        app: App,
        up: usize,
        down: usize,
    ) {
        let (d, r): (SocketAddr, SocketAddr) = (dev.parse().unwrap(), remote.parse().unwrap());
        self.out(t, mac, craft::tcp(d, r, SYN, b""));
        self.back(t + 30 * MS, mac, craft::tcp(r, d, SYN | ACK, b""));
        self.out(t + 31 * MS, mac, craft::tcp(d, r, ACK, b""));
        let mut at = t + 32 * MS;
        let (first_up, first_down, chunk_up, chunk_down) = match app {
            App::Tls(sni) => (
                craft::tls_client_hello(sni, 512),
                craft::tls_server_hello(),
                craft::tls_application_data(1380),
                craft::tls_application_data(1380),
            ),
            App::Http(host) => (
                format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .into_bytes(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
                vec![0x42; 1380],
                vec![0x43; 1380],
            ),
        };
        self.out(at, mac, craft::tcp(d, r, PSH | ACK, &first_up));
        self.back(at + 30 * MS, mac, craft::tcp(r, d, PSH | ACK, &first_down));
        at += 31 * MS;
        for _ in 0..up.div_ceil(1385) {
            self.out(at, mac, craft::tcp(d, r, PSH | ACK, &chunk_up));
            at += MS;
        }
        for _ in 0..down.div_ceil(1385) {
            self.back(at + 30 * MS, mac, craft::tcp(r, d, PSH | ACK, &chunk_down));
            at += MS;
        }
        self.out(at + 40 * MS, mac, craft::tcp(d, r, FIN | ACK, b""));
        self.back(at + 70 * MS, mac, craft::tcp(r, d, FIN | ACK, b""));
        self.out(at + 71 * MS, mac, craft::tcp(d, r, ACK, b""));
    }

    /// The device asks the lab resolver for `name` and gets `addr`.
    fn dns(&mut self, t: i64, mac: Mac, dev_ip: &str, name: &str, addr: &str) {
        let d: SocketAddr = format!("{dev_ip}:53000").parse().unwrap();
        let resolver: SocketAddr = "192.168.1.1:53".parse().unwrap();
        let addr: std::net::IpAddr = addr.parse().unwrap();
        self.out(t, mac, craft::udp(d, resolver, name.as_bytes()));
        let answer = craft::dns_response(0x4242, name, &[], &[addr], 300);
        self.back(t + 2 * MS, mac, craft::udp(resolver, d, &answer));
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
    // The camera: time from a public NTP server (US), then its cloud upload to China (Tencent),
    // named by a DNS answer and by TLS SNI; a heartbeat a minute later; a firmware check over
    // IPv6 (China); and a plaintext HTTP call to an HTTP-DNS service in China.
    demo.udp(
        T0,
        CAMERA,
        &format!("{cam}:123"),
        "8.8.8.8:123",
        &[0x23; 48],
        &[0x24; 48],
    );
    demo.dns(
        T0 + 400 * MS,
        CAMERA,
        cam,
        "upload.camcloud.example",
        "203.205.151.162",
    );
    demo.session(
        T0 + 500 * MS,
        CAMERA,
        &format!("{cam}:50100"),
        "203.205.151.162:443",
        App::Tls("upload.camcloud.example"),
        24_000,
        3_000,
    );
    demo.session(
        T0 + 65_000 * MS,
        CAMERA,
        &format!("{cam}:50101"),
        "203.205.151.162:443",
        App::Tls("upload.camcloud.example"),
        600,
        400,
    );
    demo.session(
        T0 + 70_000 * MS,
        CAMERA,
        "[fd00:1::50]:50102",
        "[2400:da00::6666]:443",
        App::Tls("fw.camcloud.example"),
        2_000,
        9_000,
    );
    demo.session(
        T0 + 80_000 * MS,
        CAMERA,
        &format!("{cam}:50103"),
        "203.107.1.65:80",
        App::Http("203.107.1.65"),
        400,
        900,
    );
    // The phone: Germany and the US.
    demo.session(
        T0 + 1_000 * MS,
        PHONE,
        &format!("{phone}:40001"),
        "3.127.176.74:443",
        App::Tls("api.weather.example"),
        5_000,
        60_000,
    );
    demo.session(
        T0 + 2_000 * MS,
        PHONE,
        &format!("{phone}:40002"),
        "151.101.1.69:443",
        App::Tls("news.example"),
        1_500,
        20_000,
    );
    // Local traffic that never leaves: the camera's web UI and SSDP multicast.
    demo.session(
        T0 + 3_000 * MS,
        PHONE,
        &format!("{phone}:40003"),
        "192.168.1.50:80",
        App::Http("192.168.1.50"),
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
