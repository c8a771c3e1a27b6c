//! The MaxMind DB writer read back by three readers: egresswatch's resolver, the `maxminddb`
//! crate and libmaxminddb's `mmdblookup` (Debian package `mmdb-bin`; the test prints a note and
//! passes when it is not installed). Also `egresswatch geoip build` and `geoip info` end to end.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use egresswatch::geoip::writer::csv::{self, Columns, CsvOptions, CsvStats, Layout};
use egresswatch::geoip::writer::{IpVersion, MmdbWriter, Record};
use egresswatch::geoip::{CountryCode, Resolver, is_public};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// SplitMix64: a small seeded generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn u128(&mut self) -> u128 {
        u128::from(self.next()) << 64 | u128::from(self.next())
    }
}

/// An inclusive range in the writer's IPv6 key space (IPv4 at `::a.b.c.d`), with its AS number.
#[derive(Clone, Copy, Debug)]
struct Range {
    v4: bool,
    start: u128,
    end: u128,
    asn: u32,
}

fn address(v4: bool, key: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(key as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(key))
    }
}

fn asn_record(asn: u32) -> Record {
    Record::map([
        ("autonomous_system_number", Record::U32(asn)),
        (
            "autonomous_system_organization",
            Record::String(format!("Org {}", asn % 5)),
        ),
    ])
}

/// Random ranges: IPv4 anywhere, IPv6 mostly in 2002::/16 (6to4) and 2001:db8::/32, some
/// anywhere; sizes from one address to huge, so they overlap and nest.
fn random_ranges(rng: &mut Rng, count: usize) -> Vec<Range> {
    (0..count)
        .map(|i| {
            let asn = u32::try_from(i).unwrap() % 40 + 1;
            let kind = rng.below(10);
            let (v4, bits, base, prefix_bits) = match kind {
                0..=4 => (true, 32u32, 0u128, 0u32),
                5..=6 => (false, 128, 0x2002u128 << 112, 16),
                7..=8 => (false, 128, 0x2001_0db8u128 << 96, 32),
                _ => (false, 128, 0, 0),
            };
            let free = bits - prefix_bits;
            let span_bits = u32::try_from(rng.below(u64::from(free.min(40)) + 1)).unwrap();
            let mask = if free == 128 {
                u128::MAX
            } else {
                (1u128 << free) - 1
            };
            let start = base | (rng.u128() & mask);
            let span = rng.u128() & ((1u128 << span_bits) - 1);
            let limit = base | mask;
            let end = start.saturating_add(span).min(limit);
            Range {
                v4,
                start,
                end,
                asn,
            }
        })
        .collect()
}

fn insert_range(writer: &mut MmdbWriter, range: &Range) {
    let bits = if range.v4 { 32 } else { 128 };
    let cidrs = csv::range_to_cidrs(range.start, range.end, bits).unwrap();
    let nets: Vec<IpNet> = cidrs
        .into_iter()
        .map(|(base, prefix)| {
            if range.v4 {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base as u32), prefix).unwrap())
            } else {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base), prefix).unwrap())
            }
        })
        .collect();
    writer.insert_all(&nets, asn_record(range.asn)).unwrap();
}

/// The reference answer: the last range that covers the address (later inserts win).
fn expected(ranges: &[Range], ip: IpAddr) -> Option<u32> {
    let key = match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    ranges
        .iter()
        .rev()
        .find(|r| r.start <= key && key <= r.end)
        .map(|r| r.asn)
}

/// Addresses worth asking: each range's start, end, one before and one past, and random ones.
fn probes(rng: &mut Rng, ranges: &[Range], random: usize) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for r in ranges {
        let max = if r.v4 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        out.push(address(r.v4, r.start));
        out.push(address(r.v4, r.end));
        if r.end < max {
            out.push(address(r.v4, r.end + 1));
        }
        if r.start > 0 {
            out.push(address(r.v4, r.start - 1));
        }
        let inside = r.start + rng.u128() % (r.end - r.start).saturating_add(1).max(1);
        out.push(address(r.v4, inside));
    }
    for _ in 0..random {
        out.push(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)));
        out.push(IpAddr::V6(Ipv6Addr::from(rng.u128())));
        out.push(IpAddr::V6(Ipv6Addr::from(
            0x2002u128 << 112 | rng.u128() >> 16,
        )));
    }
    out
}

fn write_db(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What the `maxminddb` crate reads at `ip`.
fn maxminddb_asn(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct As {
        autonomous_system_number: u32,
    }
    reader
        .lookup(ip)
        .unwrap()
        .decode::<As>()
        .unwrap()
        .map(|a| a.autonomous_system_number)
}

#[test]
fn random_ranges_round_trip_through_both_readers() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [1u64, 2, 3, 4] {
        let mut rng = Rng(seed);
        let ranges = random_ranges(&mut rng, 300);
        let mut writer = MmdbWriter::new("egresswatch-test-ASN", IpVersion::V6);
        for range in &ranges {
            insert_range(&mut writer, range);
        }
        let bytes = writer.build().unwrap();
        let path = write_db(dir.path(), &format!("random-{seed}.mmdb"), &bytes);
        let reader = maxminddb::Reader::from_source(bytes).unwrap();
        let mut resolver = Resolver::open(std::slice::from_ref(&path)).unwrap();
        let addresses = probes(&mut rng, &ranges, 500);
        let mut public_checked = 0;
        for &ip in &addresses {
            let want = expected(&ranges, ip);
            assert_eq!(
                maxminddb_asn(&reader, ip),
                want,
                "seed {seed}: maxminddb at {ip}"
            );
            if is_public(ip) {
                let info = resolver.lookup(ip);
                assert_eq!(info.asn, want, "seed {seed}: resolver at {ip}");
                let org = want.map(|n| format!("Org {}", n % 5));
                assert_eq!(info.as_org.as_deref(), org.as_deref(), "seed {seed}: {ip}");
                public_checked += 1;
            }
        }
        assert!(public_checked > addresses.len() / 2, "{public_checked}");
        assert_eq!(resolver.lookup_errors(), 0);
    }
}

#[test]
fn ipv4_only_database_round_trips() {
    let mut rng = Rng(99);
    let ranges: Vec<Range> = random_ranges(&mut rng, 400)
        .into_iter()
        .filter(|r| r.v4)
        .collect();
    let mut writer = MmdbWriter::new("egresswatch-test-ASN", IpVersion::V4);
    for range in &ranges {
        insert_range(&mut writer, range);
    }
    let reader = maxminddb::Reader::from_source(writer.build().unwrap()).unwrap();
    assert_eq!(reader.metadata().ip_version, 4);
    for ip in probes(&mut rng, &ranges, 300)
        .into_iter()
        .filter(IpAddr::is_ipv4)
    {
        assert_eq!(maxminddb_asn(&reader, ip), expected(&ranges, ip), "{ip}");
    }
}

fn build_csv(text: &str, layout: Layout) -> Vec<u8> {
    let mut writer = MmdbWriter::new(layout.default_database_type(), IpVersion::V6);
    let options = CsvOptions {
        layout,
        columns: Columns::defaults(),
    };
    let mut stats = CsvStats::default();
    csv::read(
        "test.csv",
        text.as_bytes(),
        &options,
        &mut writer,
        &mut stats,
    )
    .unwrap();
    writer.build().unwrap()
}

fn open_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Resolver {
    Resolver::open(&[write_db(dir, name, bytes)]).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_four_layouts_are_read_by_the_resolver() {
    let dir = tempfile::tempdir().unwrap();
    let cc = CountryCode::new;

    let country = build_csv(
        "start,end,country\n1.0.0.0,1.0.0.255,AU\n2001:200::,2001:200:ffff:ffff:ffff:ffff:ffff:ffff,jp\n",
        Layout::Country,
    );
    let mut resolver = open_bytes(dir.path(), "country.mmdb", &country);
    let info = resolver.lookup(ip("1.0.0.1"));
    assert_eq!(
        (info.country, info.registered_country),
        (cc("AU"), cc("AU"))
    );
    assert_eq!((info.asn, info.as_org), (None, None));
    assert_eq!(resolver.lookup(ip("2001:200::1")).country, cc("JP"));
    assert_eq!(resolver.lookup(ip("1.0.1.0")).country, None);

    let asn = build_csv(
        "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n",
        Layout::Asn,
    );
    let mut resolver = open_bytes(dir.path(), "asn.mmdb", &asn);
    let info = resolver.lookup(ip("1.0.0.1"));
    assert_eq!(info.asn, Some(13_335));
    assert_eq!(info.as_org.as_deref(), Some("Cloudflare, Inc."));
    assert_eq!(info.country, None);

    let merged = build_csv("114.114.114.0/24,CN,4134,CHINANET\n", Layout::Merged);
    let mut resolver = open_bytes(dir.path(), "merged.mmdb", &merged);
    let info = resolver.lookup(ip("114.114.114.114"));
    assert_eq!(
        (info.country, info.registered_country),
        (cc("CN"), cc("CN"))
    );
    assert_eq!(
        (info.asn, info.as_org.as_deref()),
        (Some(4134), Some("CHINANET"))
    );

    let ipinfo = build_csv(
        "2a02:cf40::/29,DE,AS64500,Lab GmbH\n81.2.69.0/24,GB,,\n",
        Layout::Ipinfo,
    );
    let mut resolver = open_bytes(dir.path(), "ipinfo.mmdb", &ipinfo);
    let info = resolver.lookup(ip("2a02:cf40::1"));
    assert_eq!(info.country, cc("DE"));
    assert_eq!(
        (info.asn, info.as_org.as_deref()),
        (Some(64_500), Some("Lab GmbH"))
    );
    let info = resolver.lookup(ip("81.2.69.160"));
    assert_eq!((info.country, info.asn), (cc("GB"), None));
}

#[test]
fn overlapping_rows_later_wins_within_and_across_files() {
    let bytes = build_csv(
        "10.0.0.0,10.255.255.255,DE\n10.1.0.0/16,FR\n2002::/16,SE\n2002:a01::/32,NO\n",
        Layout::Country,
    );
    let reader = maxminddb::Reader::from_source(bytes).unwrap();
    let country = |addr: &str| {
        #[derive(serde::Deserialize)]
        struct Iso {
            iso_code: String,
        }
        #[derive(serde::Deserialize)]
        struct C {
            country: Iso,
        }
        reader
            .lookup(ip(addr))
            .unwrap()
            .decode::<C>()
            .unwrap()
            .map(|c| c.country.iso_code)
    };
    assert_eq!(country("10.0.0.1").as_deref(), Some("DE"));
    assert_eq!(country("10.1.2.3").as_deref(), Some("FR"));
    assert_eq!(country("10.2.0.0").as_deref(), Some("DE"));
    assert_eq!(country("2002:a01::1").as_deref(), Some("NO"));
    assert_eq!(country("2002:a02::1").as_deref(), Some("SE"));
    // No 6to4 alias: 2002:a01::/32 is not 10.1.0.0/16.
    assert_eq!(country("::ffff:10.1.0.1"), None);
}

#[test]
fn csv_errors_name_the_line() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    let options = CsvOptions {
        layout: Layout::Asn,
        columns: Columns::defaults(),
    };
    let mut stats = CsvStats::default();
    let text = "start_ip,end_ip,asn,org\n1.0.0.0,1.0.0.255,13335,CF\n1.0.1.0,1.0.0.255,1,X\n";
    let err = csv::read(
        "ranges.csv",
        text.as_bytes(),
        &options,
        &mut writer,
        &mut stats,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "ranges.csv:3: column index 1: the range ends (1.0.0.255) before it starts (1.0.1.0)"
        ),
        "{err}"
    );
    assert_eq!(stats.rows, 1);
}

fn mmdblookup_asn(db: &Path, ip: IpAddr) -> Option<u32> {
    let out = Command::new("mmdblookup")
        .arg("--file")
        .arg(db)
        .arg("--ip")
        .arg(ip.to_string())
        .arg("autonomous_system_number")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Could not find an entry") || text.trim().is_empty() {
        assert!(
            !stderr.contains("error") || stderr.contains("Could not find"),
            "{stderr}"
        );
        return None;
    }
    let value = text.split_whitespace().next().unwrap_or("");
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("mmdblookup said {text:?} {stderr:?}")),
    )
}

#[test]
fn libmaxminddb_reads_the_same_answers() {
    if Command::new("mmdblookup")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: mmdblookup (Debian package mmdb-bin) is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let ranges = random_ranges(&mut rng, 200);
    let mut writer = MmdbWriter::new("egresswatch-test-ASN", IpVersion::V6);
    for range in &ranges {
        insert_range(&mut writer, range);
    }
    let path = write_db(dir.path(), "mmdblookup.mmdb", &writer.build().unwrap());
    // mmdblookup starts once per address: keep the sample small.
    let addresses: Vec<IpAddr> = probes(&mut rng, &ranges, 30)
        .into_iter()
        .step_by(7)
        .collect();
    for &ip in &addresses {
        assert_eq!(mmdblookup_asn(&path, ip), expected(&ranges, ip), "{ip}");
    }
    // The organisation string through pointers, and the metadata, as libmaxminddb sees them.
    let out = Command::new("mmdblookup")
        .arg("--file")
        .arg(&path)
        .arg("--ip")
        .arg("2002::")
        .arg("--verbose")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Type:          egresswatch-test-ASN"),
        "{text}"
    );
    assert!(text.contains("Binary format: 2.0"), "{text}");
}

#[test]
fn geoip_build_and_lookup_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("asn.csv");
    std::fs::write(
        &input,
        "start_ip,end_ip,asn,org\n\
         1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
         2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n",
    )
    .unwrap();
    let out = dir.path().join("asn.mmdb");
    let run = common::run(&[
        "geoip".as_ref(),
        "build".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--layout".as_ref(),
        "asn".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2 rows"), "{}", run.stdout);

    let lookup = common::run(&[
        "lookup".as_ref(),
        "--geoip-db".as_ref(),
        out.as_os_str(),
        "1.0.0.1".as_ref(),
        "2001:4860:4860::8888".as_ref(),
    ]);
    assert_eq!(lookup.code, 0, "{}", lookup.stderr);
    let answers = lookup.json();
    assert_eq!(answers[0]["asn"], 13335);
    assert_eq!(answers[0]["as_org"], "Cloudflare, Inc.");
    assert_eq!(answers[1]["asn"], 15169);

    let info = common::run(&[
        "geoip".as_ref(),
        "info".as_ref(),
        "--geoip-db".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(info.code, 0, "{}", info.stderr);
    let lines = info.json();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["database_type"], "egresswatch-ASN");
    assert_eq!(lines[0]["ip_version"], 6);
    assert_eq!(lines[0]["record_size"], 24);
    assert!(lines[0]["build_date"].as_str().unwrap().ends_with('Z'));

    let text = common::run(&["geoip", "info"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("embedded:"), "{}", text.stdout);
    assert!(text.stdout.contains("build date:"), "{}", text.stdout);
}

#[test]
fn geoip_build_reports_bad_rows_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("countries.csv");
    std::fs::write(&input, "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,China\n").unwrap();
    let out = dir.path().join("c.mmdb");
    let run = common::run(&[
        "geoip".as_ref(),
        "build".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--layout".as_ref(),
        "country".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("countries.csv:2: column index 2: \"China\" is not a two-letter"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "no database is written on error");
}
