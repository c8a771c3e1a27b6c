//! Writes a deterministic synthetic capture for benchmarks (scripts/bench.sh, BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release --example gen_bench -- --packets 1000000 --flows 20000 --seed 1 --out bench.pcap
//! cargo run --release --example gen_bench -- --scan --packets 1000000 --seed 1 --out scan.pcap
//! ```
//!
//! The default mode models a busy home or lab network: a few hundred local devices
//! (192.168.0.0/16 and fd00::/8, ~10% of flows over IPv6, ~5% of flows 802.1Q-tagged) talking to
//! remote public addresses drawn Zipf-like from a pool spread over many RIR /8s (so the embedded
//! database places them in many countries, and the GeoIP cache sees realistic reuse). Flows are
//! TCP (handshake, a TLS ClientHello with an SNI as the first payload on port 443, then data and
//! ACKs, then FIN) and UDP (DNS queries with their answers, QUIC-like and NTP datagrams). The frame
//! size mix (as generated, seed 1) is about 32% ACK-sized (60–66 bytes), 40% full 1514-byte
//! segments and the rest 100–600 bytes (DNS, ClientHellos, small data): a mean of ~710 bytes.
//! Timestamps increase; flows interleave.
//!
//! `--scan`: N one-packet flows: SYNs from one device to N distinct remote addresses.
//!
//! Everything comes from a seeded splitmix64, so the same arguments give the same bytes. Nothing
//! is ever sent to the addresses: this only writes a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use egresswatch::capture::write::{PcapWriter, TsResolution};
use egresswatch::capture::{Endian, LinkType};
use egresswatch::craft;
use egresswatch::decode::Mac;

/// 2026-01-15T10:00:00Z.
const T0: i64 = 1_768_471_200_000_000_000;
const GATEWAY: Mac = Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x01]);
const DEVICES: u32 = 300;
const POOL_V4: usize = 6_000;
const POOL_V6: usize = 1_000;
/// Flows in progress at once (interleaved packet by packet).
const CONCURRENT: usize = 2_000;

/// First octets of remote IPv4 addresses: /8s allocated to all five RIRs (ARIN, RIPE, APNIC,
/// LACNIC, AFRINIC), so the pool spreads over many countries.
const SLASH8: &[u8] = &[
    1, 2, 3, 4, 5, 8, 12, 13, 14, 18, 20, 23, 24, 27, 31, 34, 36, 37, 39, 41, 42, 43, 45, 46, 47,
    49, 50, 52, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78,
    79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 101, 102,
    103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121,
    122, 123, 124, 125, 126, 128, 129, 130, 131, 132, 133, 134, 136, 137, 138, 139, 140, 141, 142,
    143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161,
    162, 163, 164, 165, 166, 167, 168, 170, 171, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182,
    183, 184, 185, 186, 187, 188, 189, 190, 191, 193, 194, 195, 196, 197, 199, 200, 201, 202, 203,
    204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 216, 217, 218, 219, 220, 221, 222, 223,
];

/// First 16 bits of remote IPv6 addresses (RIR blocks of 2000::/3 in use).
const SLASH16_V6: &[u16] = &[
    0x2001, 0x2400, 0x2401, 0x2402, 0x2403, 0x2404, 0x2405, 0x2406, 0x2407, 0x2408, 0x2409, 0x240e,
    0x2600, 0x2601, 0x2602, 0x2603, 0x2604, 0x2605, 0x2606, 0x2607, 0x2620, 0x2800, 0x2801, 0x2803,
    0x2804, 0x2a00, 0x2a01, 0x2a02, 0x2a03, 0x2a04, 0x2a05, 0x2a06, 0x2a07, 0x2a09, 0x2a0a, 0x2a0b,
    0x2a0c, 0x2a0d, 0x2a0e, 0x2a10, 0x2c0f,
];

/// Public resolvers the devices send DNS to.
const RESOLVERS: &[[u8; 4]] = &[
    [8, 8, 8, 8],
    [1, 1, 1, 1],
    [9, 9, 9, 9],
    [208, 67, 222, 222],
    [114, 114, 114, 114],
    [77, 88, 8, 8],
];

const NAMES: &[&str] = &[
    "www.example.com",
    "api.telemetry-cloud.net",
    "cdn.static-assets.org",
    "update.firmware-vendor.cn",
    "push.mobile-services.com",
    "time.ntp-pool.org",
    "video.stream-edge.net",
    "login.accounts-provider.com",
    "metrics.iot-platform.io",
    "images.shop-frontend.de",
    "mail.webmail-host.fr",
    "s3.object-storage.eu",
];

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for a workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for chunk in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        b
    }
}

/// A Zipf(s = 1) draw over `0..n` by inverse CDF.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / k as f64;
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf(cdf)
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.0.partition_point(|c| *c < u).min(self.0.len() - 1)
    }
}

fn random_v4(rng: &mut Rng) -> Ipv4Addr {
    let first = SLASH8[rng.below(SLASH8.len() as u64) as usize];
    let rest: [u8; 3] = rng.bytes();
    Ipv4Addr::new(first, rest[0], rest[1], rest[2].clamp(1, 254))
}

fn random_v6(rng: &mut Rng) -> Ipv6Addr {
    let first = SLASH16_V6[rng.below(SLASH16_V6.len() as u64) as usize];
    let mut b: [u8; 16] = rng.bytes();
    b[0..2].copy_from_slice(&first.to_be_bytes());
    b[2] &= 0x0f; // stay in the first /20 of the block: allocations start there
    Ipv6Addr::from(b)
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A TCP segment with real sequence numbers and a timestamp option (12 bytes, as Linux sends).
fn tcp(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut options = [1u8, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]; // NOP, NOP, timestamps
    options[4..8].copy_from_slice(&seq.rotate_left(7).to_be_bytes());
    options[8..12].copy_from_slice(&ack.rotate_left(3).to_be_bytes());
    craft::tcp_segment(src, dst, seq, ack, flags, &options, payload)
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A DNS query (`answers` empty) or its response with these A/AAAA answers.
fn dns(id: u16, name: &str, v6: bool, answers: &[IpAddr]) -> Vec<u8> {
    let response = !answers.is_empty();
    let mut m = Vec::with_capacity(64 + 28 * answers.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(if response {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(&mut m, name);
    let qtype: u16 = if v6 { 28 } else { 1 };
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for a in answers {
        m.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        let rdata = ip_octets(*a);
        let t: u16 = if rdata.len() == 16 { 28 } else { 1 };
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0x01, 0x2c]); // IN, TTL 300
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A TLS 1.3 ClientHello (RFC 8446 §4.1.2) in a TLS record, with the usual browser extensions
/// and an SNI, padded to 512 bytes of handshake like common clients (RFC 7685).
fn client_hello(rng: &mut Rng, sni: &str) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&rng.bytes::<32>());
    body.push(32);
    body.extend_from_slice(&rng.bytes::<32>());
    let suites: [u16; 15] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut exts = Vec::new();
    let mut sni_body = Vec::new();
    sni_body.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    sni_body.push(0); // host_name
    sni_body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sni_body.extend_from_slice(sni.as_bytes());
    ext(&mut exts, 0x0000, &sni_body);
    ext(&mut exts, 0x0017, &[]); // extended master secret
    ext(&mut exts, 0xff01, &[0]); // renegotiation info
    ext(
        &mut exts,
        0x000a,
        &[0, 8, 0, 0x1d, 0, 0x17, 0, 0x18, 0, 0x19],
    ); // groups
    ext(&mut exts, 0x000b, &[1, 0]); // ec point formats
    ext(&mut exts, 0x0023, &[]); // session ticket
    ext(
        &mut exts,
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    ); // ALPN
    ext(&mut exts, 0x0005, &[1, 0, 0, 0, 0]); // status request
    ext(
        &mut exts,
        0x000d,
        &[0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1],
    ); // signature algorithms
    let mut key_share = vec![0, 36, 0, 0x1d, 0, 32];
    key_share.extend_from_slice(&rng.bytes::<32>());
    ext(&mut exts, 0x0033, &key_share);
    ext(&mut exts, 0x002d, &[1, 1]); // psk key exchange modes
    ext(&mut exts, 0x002b, &[4, 3, 4, 3, 3]); // supported versions: 1.3, 1.2
    // Padding so that the handshake message is 512 bytes.
    let so_far = 4 + body.len() + 2 + exts.len() + 4;
    ext(&mut exts, 0x0015, &vec![0; 512usize.saturating_sub(so_far)]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// TCP to 443 (TLS) or 80.
    Tcp,
    /// A DNS query and its answer.
    Dns,
    /// UDP datagrams (QUIC on 443, NTP on 123).
    Udp,
}

struct FlowSpec {
    kind: Kind,
    mac: Mac,
    vlan: Option<u16>,
    device: SocketAddr,
    remote: SocketAddr,
    sni: &'static str,
    budget: u32,
    sent: u32,
    seq_out: u32,
    seq_in: u32,
}

/// Payload length of the next data packet: 36% ACK-sized (empty), 44% full segments, the
/// rest 100–600 bytes of frame.
fn data_len(rng: &mut Rng, full: usize, overhead: usize) -> usize {
    let u = rng.unit();
    if u < 0.36 {
        0
    } else if u < 0.80 {
        full
    } else {
        (rng.range(100, 600) as usize)
            .saturating_sub(overhead)
            .max(1)
    }
}

struct Out {
    w: PcapWriter<BufWriter<File>>,
    packets: u64,
    bytes: u64,
    v6: u64,
    tagged: u64,
    small: u64,
    full: u64,
}

impl Out {
    fn frame(&mut self, t: i64, src: Mac, dst: Mac, vlan: Option<u16>, ip: &[u8]) {
        let tags: &[u16] = match &vlan {
            Some(v) => std::slice::from_ref(v),
            None => &[],
        };
        let mut f = craft::ethernet(src, dst, tags, ip);
        // Ethernet pads frames to 60 bytes (without FCS).
        if f.len() < 60 {
            f.resize(60, 0);
        }
        self.packets += 1;
        self.bytes += f.len() as u64;
        self.v6 += u64::from(ip[0] >> 4 == 6);
        self.tagged += u64::from(vlan.is_some());
        self.small += u64::from(f.len() <= 70);
        self.full += u64::from(f.len() >= 1514);
        if let Err(e) = self.w.write_frame(t, &f, f.len() as u32) {
            eprintln!("gen_bench: write failed: {e}");
            std::process::exit(2);
        }
    }
}

/// Writes the next packet of `f` at time `t`.
fn next_packet(rng: &mut Rng, out: &mut Out, f: &mut FlowSpec, t: i64, pool: &Pool) {
    use craft::tcp_flags::*;
    let (d, r) = (f.device, f.remote);
    let n = f.sent;
    f.sent += 1;
    let last = f.sent == f.budget;
    let v6 = d.is_ipv6();
    let ip_hdr = if v6 { 40 } else { 20 };
    let vlan_hdr = if f.vlan.is_some() { 4 } else { 0 };
    match f.kind {
        Kind::Dns => {
            let id = (f.seq_out as u16).wrapping_add((n / 2) as u16);
            let name = f.sni;
            let aaaa = n % 4 >= 2;
            let payload = if n.is_multiple_of(2) {
                dns(id, name, aaaa, &[])
            } else {
                let k = rng.range(1, 4) as usize;
                let answers: Vec<IpAddr> = (0..k)
                    .map(|_| if aaaa { pool.v6(rng) } else { pool.v4(rng) })
                    .collect();
                dns(id, name, aaaa, &answers)
            };
            if n.is_multiple_of(2) {
                out.frame(t, f.mac, GATEWAY, f.vlan, &craft::udp(d, r, &payload));
            } else {
                out.frame(t, GATEWAY, f.mac, f.vlan, &craft::udp(r, d, &payload));
            }
        }
        Kind::Udp => {
            let outbound = n == 0 || rng.chance(0.4);
            let overhead = 14 + vlan_hdr + ip_hdr + 8;
            let len = if r.port() == 123 {
                48
            } else if n == 0 {
                1200
            } else {
                match data_len(rng, 1514 - overhead, overhead) {
                    0 => 30, // a QUIC ACK-only packet
                    l => l,
                }
            };
            let payload = vec![if r.port() == 123 { 0x23 } else { 0xc3 }; len];
            if outbound {
                out.frame(t, f.mac, GATEWAY, f.vlan, &craft::udp(d, r, &payload));
            } else {
                out.frame(t, GATEWAY, f.mac, f.vlan, &craft::udp(r, d, &payload));
            }
        }
        Kind::Tcp => {
            let overhead = 14 + vlan_hdr + ip_hdr + 32;
            // (outbound, flags, payload)
            let (outbound, flags, payload): (bool, u8, Vec<u8>) = match n {
                0 => (true, SYN, Vec::new()),
                1 => (false, SYN | ACK, Vec::new()),
                2 => (true, ACK, Vec::new()),
                3 if r.port() == 443 => (true, PSH | ACK, client_hello(rng, f.sni)),
                3 => (
                    true,
                    PSH | ACK,
                    format!(
                        "GET /v1/status HTTP/1.1\r\nHost: {}\r\nUser-Agent: device/1.0\r\nAccept: */*\r\n\r\n",
                        f.sni
                    )
                    .into_bytes(),
                ),
                _ if last => (true, FIN | ACK, Vec::new()),
                _ => {
                    // Mostly downloads: data comes in, ACKs go out; some uploads.
                    let len = data_len(rng, 1514 - overhead, overhead);
                    let outbound = if len == 0 {
                        rng.chance(0.8)
                    } else {
                        rng.chance(0.25)
                    };
                    let flags = if len > 0 { PSH | ACK } else { ACK };
                    (outbound, flags, vec![0x17; len])
                }
            };
            let (seq, ack) = if outbound {
                (f.seq_out, f.seq_in)
            } else {
                (f.seq_in, f.seq_out)
            };
            let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
            if outbound {
                f.seq_out = f.seq_out.wrapping_add(advance);
                out.frame(
                    t,
                    f.mac,
                    GATEWAY,
                    f.vlan,
                    &tcp(d, r, seq, ack, flags, &payload),
                );
            } else {
                f.seq_in = f.seq_in.wrapping_add(advance);
                out.frame(
                    t,
                    GATEWAY,
                    f.mac,
                    f.vlan,
                    &tcp(r, d, seq, ack, flags, &payload),
                );
            }
        }
    }
}

struct Pool {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    zipf4: Zipf,
    zipf6: Zipf,
}

impl Pool {
    fn new(rng: &mut Rng) -> Pool {
        Pool {
            v4: (0..POOL_V4).map(|_| random_v4(rng)).collect(),
            v6: (0..POOL_V6).map(|_| random_v6(rng)).collect(),
            zipf4: Zipf::new(POOL_V4),
            zipf6: Zipf::new(POOL_V6),
        }
    }

    fn v4(&self, rng: &mut Rng) -> IpAddr {
        IpAddr::V4(self.v4[self.zipf4.draw(rng)])
    }

    fn v6(&self, rng: &mut Rng) -> IpAddr {
        IpAddr::V6(self.v6[self.zipf6.draw(rng)])
    }
}

fn device_mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, 0x5e, b[1], b[2], b[3]])
}

fn device_v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        192,
        168,
        1 + (i / 200) as u8,
        10 + (i % 200) as u8,
    ))
}

fn device_v6(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xbe, 0, 1, 0, 0, 0, 0x100 + i as u16))
}

fn normal(rng: &mut Rng, packets: u64, flows: u64, out: &mut Out) {
    let pool = Pool::new(rng);
    let flows = flows.clamp(1, packets.max(1));
    // Kinds first: DNS flows are 2 or 4 packets; the other flows share the rest by weight.
    let mut specs: Vec<FlowSpec> = Vec::with_capacity(flows as usize);
    let mut fixed = 0u64;
    for i in 0..flows {
        let dev = (i % u64::from(DEVICES)) as u32;
        let v6 = rng.chance(0.10);
        let u = rng.unit();
        let kind = if u < 0.20 {
            Kind::Dns
        } else if u < 0.30 {
            Kind::Udp
        } else {
            Kind::Tcp
        };
        let device_ip = if v6 { device_v6(dev) } else { device_v4(dev) };
        // (device, local port) is unique per flow, so every flow has its own 5-tuple.
        let port = 1024 + ((i / u64::from(DEVICES)) % 64_000) as u16;
        let remote_ip = match (kind, v6) {
            (Kind::Dns, false) => {
                IpAddr::V4(RESOLVERS[rng.below(RESOLVERS.len() as u64) as usize].into())
            }
            (_, false) => pool.v4(rng),
            (_, true) => pool.v6(rng),
        };
        let remote_port = match kind {
            Kind::Dns => 53,
            Kind::Udp if rng.chance(0.2) => 123,
            Kind::Udp => 443,
            Kind::Tcp if rng.chance(0.85) => 443,
            Kind::Tcp => 80,
        };
        let budget = if kind == Kind::Dns {
            if rng.chance(0.5) { 2 } else { 4 }
        } else if remote_port == 123 {
            2
        } else {
            0
        };
        fixed += u64::from(budget);
        specs.push(FlowSpec {
            kind,
            mac: device_mac(dev),
            vlan: rng.chance(0.05).then_some(100 + (dev % 8) as u16),
            device: SocketAddr::new(device_ip, port),
            remote: SocketAddr::new(remote_ip, remote_port),
            sni: NAMES[rng.below(NAMES.len() as u64) as usize],
            budget,
            sent: 0,
            seq_out: rng.next() as u32,
            seq_in: rng.next() as u32,
        });
    }
    // Spread the remaining packets over the other flows: a minimum each (a TCP flow is a
    // handshake, a first payload and a FIN), then by random weights for a heavy-ish tail.
    let open: Vec<usize> = (0..specs.len()).filter(|&i| specs[i].budget == 0).collect();
    let min_of = |k: Kind| if k == Kind::Tcp { 5 } else { 1 };
    let minimum: u64 = open.iter().map(|&i| min_of(specs[i].kind)).sum();
    let spare = packets.saturating_sub(fixed + minimum);
    let weights: Vec<f64> = open
        .iter()
        .map(|_| {
            let u = rng.unit().max(1e-9);
            (-u.ln()).powf(1.5) // exponential^1.5: mostly short flows, some long ones
        })
        .collect();
    let total_w: f64 = weights.iter().sum::<f64>().max(1e-9);
    let mut given = 0u64;
    for (k, &i) in open.iter().enumerate() {
        let extra = (weights[k] / total_w * spare as f64) as u64;
        specs[i].budget = (min_of(specs[i].kind) + extra) as u32;
        given += extra;
    }
    // Rounding leftovers go to the first open flows, one each.
    let mut left = spare - given.min(spare);
    for &i in open
        .iter()
        .cycle()
        .take(if open.is_empty() { 0 } else { usize::MAX })
    {
        if left == 0 {
            break;
        }
        specs[i].budget += 1;
        left -= 1;
    }
    // Interleave: CONCURRENT flows in progress, each packet from a random one; a finished flow
    // makes room for the next.
    let mut active: Vec<usize> = Vec::with_capacity(CONCURRENT);
    let mut next_flow = 0usize;
    let mut t = T0;
    while out.packets < packets {
        while active.len() < CONCURRENT && next_flow < specs.len() {
            active.push(next_flow);
            next_flow += 1;
        }
        if active.is_empty() {
            break;
        }
        let slot = rng.below(active.len() as u64) as usize;
        let fi = active[slot];
        t += rng.range(5_000, 75_000) as i64; // 40 µs mean: ~25 k packets/s
        next_packet(rng, out, &mut specs[fi], t, &pool);
        if specs[fi].sent >= specs[fi].budget {
            active.swap_remove(slot);
        }
    }
}

fn scan(rng: &mut Rng, packets: u64, out: &mut Out) {
    const PORTS: &[u16] = &[22, 23, 80, 443, 445, 3389, 8080, 8443, 5900, 21];
    let device = SocketAddr::new(device_v4(7), 40_000);
    let mac = device_mac(7);
    let mut t = T0;
    for i in 0..packets {
        // Distinct addresses: the /8 cycles, and within it a bijection of the index spreads the
        // lower 24 bits (an odd multiplier is a permutation modulo 2^24).
        let first = SLASH8[(i % SLASH8.len() as u64) as usize];
        let low = ((i / SLASH8.len() as u64).wrapping_mul(0x9e_3779) & 0xff_ffff) as u32;
        let b = low.to_be_bytes();
        let remote = IpAddr::V4(Ipv4Addr::new(first, b[1], b[2], b[3]));
        let port = PORTS[rng.below(PORTS.len() as u64) as usize];
        let seq = rng.next() as u32;
        let src = SocketAddr::new(device.ip(), device.port().wrapping_add((i % 1000) as u16));
        let ip = tcp(
            src,
            SocketAddr::new(remote, port),
            seq,
            0,
            craft::tcp_flags::SYN,
            &[],
        );
        t += 10_000; // 100 k SYNs/s
        out.frame(t, mac, GATEWAY, None, &ip);
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: gen_bench [--packets N] [--flows M] [--seed S] [--scan] --out FILE\n\
         defaults: 1000000 packets, packets/50 flows, seed 1"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut packets = 1_000_000u64;
    let mut flows = None;
    let mut seed = 1u64;
    let mut scan_mode = false;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
        };
        match a.as_str() {
            "--packets" => match value() {
                Some(v) => packets = v,
                None => return usage(),
            },
            "--flows" => match value() {
                Some(v) => flows = Some(v),
                None => return usage(),
            },
            "--seed" => match value() {
                Some(v) => seed = v,
                None => return usage(),
            },
            "--scan" => scan_mode = true,
            "--out" => path = args.next(),
            _ => return usage(),
        }
    }
    let Some(path) = path else {
        return usage();
    };
    let file = match File::create(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gen_bench: cannot create {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let w = match PcapWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        LinkType::ETHERNET,
        TsResolution::Micro,
        Endian::Little,
    ) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("gen_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = Out {
        w,
        packets: 0,
        bytes: 0,
        v6: 0,
        tagged: 0,
        small: 0,
        full: 0,
    };
    let mut rng = Rng(seed);
    if scan_mode {
        scan(&mut rng, packets, &mut out);
    } else {
        normal(
            &mut rng,
            packets,
            flows.unwrap_or((packets / 50).max(1)),
            &mut out,
        );
    }
    if let Err(e) = out.w.into_inner().flush() {
        eprintln!("gen_bench: write failed: {e}");
        return ExitCode::from(2);
    }
    let n = out.packets.max(1) as f64;
    eprintln!(
        "wrote {} frames to {path}: mean frame {:.0} bytes, {:.1}% <= 70 bytes, {:.1}% full 1514, \
         {:.1}% IPv6, {:.1}% 802.1Q",
        out.packets,
        out.bytes as f64 / n,
        100.0 * out.small as f64 / n,
        100.0 * out.full as f64 / n,
        100.0 * out.v6 as f64 / n,
        100.0 * out.tagged as f64 / n,
    );
    ExitCode::SUCCESS
}
