//! Unit tests of the tree and the file layout; round trips through readers are in
//! `tests/geoip_writer.rs`.

use std::net::IpAddr;

use maxminddb::Reader;

use super::*;

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn asn(n: u32) -> Record {
    Record::map([("autonomous_system_number", Record::U32(n))])
}

/// What the `maxminddb` crate reads at `addr`, as the AS number.
fn read_asn(bytes: &[u8], addr: &str) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct As {
        autonomous_system_number: u32,
    }
    let reader = Reader::from_source(bytes).unwrap();
    reader
        .lookup(ip(addr))
        .unwrap()
        .decode::<As>()
        .unwrap()
        .map(|a| a.autonomous_system_number)
}

#[test]
fn empty_database_is_valid_and_answers_nothing() {
    let writer = MmdbWriter::new("empty", IpVersion::V6);
    let bytes = writer.build().unwrap();
    let reader = Reader::from_source(bytes.as_slice()).unwrap();
    assert_eq!(reader.metadata().node_count, 1);
    assert_eq!(read_asn(&bytes, "1.2.3.4"), None);
    assert_eq!(read_asn(&bytes, "2001:db8::1"), None);
}

#[test]
fn metadata_has_every_required_key() {
    let mut writer = MmdbWriter::new("lab-ASN", IpVersion::V6);
    writer
        .build_epoch(1_700_000_000)
        .description("de", "Labor")
        .languages(vec!["en".to_owned()]);
    writer.insert(net("192.0.2.0/24"), asn(1)).unwrap();
    let bytes = writer.build().unwrap();
    let reader = Reader::from_source(bytes.as_slice()).unwrap();
    let m = reader.metadata();
    assert_eq!(m.database_type, "lab-ASN");
    assert_eq!(m.ip_version, 6);
    assert_eq!(m.record_size, 24);
    assert_eq!(m.binary_format_major_version, 2);
    assert_eq!(m.binary_format_minor_version, 0);
    assert_eq!(m.build_epoch, 1_700_000_000);
    assert_eq!(m.languages, ["en"]);
    assert_eq!(m.description.get("de").map(String::as_str), Some("Labor"));
    assert!(m.description.contains_key("en"));
    // ::/96 is 96 nodes, then 24 more down to 192.0.2.0/24.
    assert_eq!(m.node_count, 96 + 24);
}

#[test]
fn later_inserts_win_for_the_part_they_cover() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    writer.insert(net("10.0.0.0/8"), asn(1)).unwrap();
    writer.insert(net("10.1.0.0/16"), asn(2)).unwrap();
    writer.insert(net("10.1.2.0/24"), asn(3)).unwrap();
    let bytes = writer.build().unwrap();
    assert_eq!(read_asn(&bytes, "10.0.0.1"), Some(1));
    assert_eq!(read_asn(&bytes, "10.255.255.255"), Some(1));
    assert_eq!(read_asn(&bytes, "10.1.0.0"), Some(2));
    assert_eq!(read_asn(&bytes, "10.1.2.255"), Some(3));
    assert_eq!(read_asn(&bytes, "10.1.3.0"), Some(2));
    assert_eq!(read_asn(&bytes, "11.0.0.0"), None);

    // A larger network inserted later replaces everything under it.
    writer.insert(net("10.0.0.0/15"), asn(4)).unwrap();
    let bytes = writer.build().unwrap();
    assert_eq!(read_asn(&bytes, "10.1.2.3"), Some(4));
    assert_eq!(read_asn(&bytes, "10.2.0.0"), Some(1));

    writer.remove(net("10.0.0.0/16")).unwrap();
    let bytes = writer.build().unwrap();
    assert_eq!(read_asn(&bytes, "10.0.5.5"), None);
    assert_eq!(read_asn(&bytes, "10.1.5.5"), Some(4));
}

#[test]
fn whole_space_and_host_routes() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    writer.insert(net("::/0"), asn(1)).unwrap();
    writer.insert(net("255.255.255.255/32"), asn(2)).unwrap();
    writer
        .insert(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), asn(3))
        .unwrap();
    let bytes = writer.build().unwrap();
    assert_eq!(read_asn(&bytes, "1.1.1.1"), Some(1));
    assert_eq!(read_asn(&bytes, "255.255.255.255"), Some(2));
    assert_eq!(read_asn(&bytes, "255.255.255.254"), Some(1));
    assert_eq!(
        read_asn(&bytes, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        Some(3)
    );
    assert_eq!(
        read_asn(&bytes, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
        Some(1)
    );
    assert_eq!(read_asn(&bytes, "2002::1"), Some(1));
}

#[test]
fn no_aliases_so_6to4_and_mapped_space_are_plain_ipv6() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    writer.insert(net("1.2.3.0/24"), asn(1)).unwrap();
    writer.insert(net("2002::/16"), asn(2)).unwrap();
    writer.insert(net("2002:102:300::/40"), asn(3)).unwrap();
    writer.insert(net("::ffff:0:0/96"), asn(4)).unwrap();
    let bytes = writer.build().unwrap();
    assert_eq!(read_asn(&bytes, "1.2.3.4"), Some(1));
    assert_eq!(read_asn(&bytes, "2002:102:304::"), Some(3));
    assert_eq!(read_asn(&bytes, "2002:ffff::"), Some(2));
    assert_eq!(read_asn(&bytes, "::ffff:1.2.3.4"), Some(4));
    assert_eq!(read_asn(&bytes, "9.9.9.9"), None);
}

#[test]
fn identical_records_are_stored_once_and_siblings_merge() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    writer.insert(net("10.0.0.0/9"), asn(7)).unwrap();
    writer.insert(net("10.128.0.0/9"), asn(7)).unwrap();
    assert_eq!(writer.record_count(), 1);
    let (bytes, stats) = writer.build_with_stats().unwrap();
    assert_eq!(stats.records, 1);
    // The two /9 halves merge into one /8: 96 + 8 nodes.
    assert_eq!(stats.node_count, 96 + 8);
    let reader = Reader::from_source(bytes.as_slice()).unwrap();
    let network = reader.lookup(ip("10.200.0.1")).unwrap().network().unwrap();
    assert_eq!(network.to_string(), "10.0.0.0/8");
}

#[test]
fn ipv4_databases_refuse_ipv6() {
    let mut writer = MmdbWriter::new("t", IpVersion::V4);
    writer.insert(net("192.0.2.0/24"), asn(1)).unwrap();
    assert!(matches!(
        writer.insert(net("2001:db8::/32"), asn(1)),
        Err(WriterError::Ipv6InIpv4Database { .. })
    ));
    let bytes = writer.build().unwrap();
    let reader = Reader::from_source(bytes.as_slice()).unwrap();
    assert_eq!(reader.metadata().ip_version, 4);
    assert_eq!(reader.metadata().node_count, 24);
    assert_eq!(read_asn(&bytes, "192.0.2.200"), Some(1));
    assert_eq!(read_asn(&bytes, "192.0.3.0"), None);
}

#[test]
fn record_size_grows_with_the_data() {
    // Data pointers are node_count + 16 + offset: 17 MiB of data overflows 24-bit records.
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    let big = |n: u32| {
        Record::map([
            ("autonomous_system_number", Record::U32(n)),
            (
                "autonomous_system_organization",
                Record::String(format!("{n}{}", "x".repeat(1 << 20))),
            ),
        ])
    };
    for i in 0..17u32 {
        let v6 = ipnet::Ipv6Net::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 0),
            48,
        )
        .unwrap();
        writer.insert(IpNet::V6(v6), big(i)).unwrap();
    }
    let (bytes, stats) = writer.build_with_stats().unwrap();
    assert_eq!(stats.record_size, 28);
    assert_eq!(stats.records, 17);
    assert_eq!(read_asn(&bytes, "2001:db8::1"), Some(0));
    assert_eq!(read_asn(&bytes, "2001:db8:10::1"), Some(16));
    assert_eq!(read_asn(&bytes, "2001:db8:11::1"), None);
}

#[test]
fn node_layouts_match_the_spec() {
    let mut out = Vec::new();
    write_node(&mut out, 24, 0x0012_3456, 0x0065_4321);
    assert_eq!(out, [0x12, 0x34, 0x56, 0x65, 0x43, 0x21]);
    out.clear();
    write_node(&mut out, 28, 0x0A12_3456, 0x0B65_4321);
    assert_eq!(out, [0x12, 0x34, 0x56, 0xAB, 0x65, 0x43, 0x21]);
    out.clear();
    write_node(&mut out, 32, 0x0102_0304, 0x0506_0708);
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn reference_get_follows_the_tree() {
    let mut writer = MmdbWriter::new("t", IpVersion::V6);
    writer.insert(net("2001:db8::/32"), asn(5)).unwrap();
    assert_eq!(writer.get(ip("2001:db8::1")), Some(&asn(5)));
    assert_eq!(writer.get(ip("2001:db9::1")), None);
    assert_eq!(writer.get(ip("1.1.1.1")), None);
}
