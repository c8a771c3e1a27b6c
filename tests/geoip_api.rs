//! The GeoIP resolver as the engine uses it: through the public API only.

use std::net::IpAddr;
use std::path::PathBuf;

use egresswatch::geoip::{CountryCode, GeoOverride, Resolver, is_public};

const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/mmdb/test-data");

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn embedded_resolver_with_lab_overrides() {
    let mut resolver = Resolver::embedded().unwrap();
    resolver.set_overrides(vec![GeoOverride {
        net: "198.18.0.0/15".parse().unwrap(),
        country: CountryCode::new("NL"),
        asn: Some(64_512),
        as_org: Some("Test lab".to_owned()),
    }]);
    assert!(!is_public(ip("198.18.0.5")));
    let lab = resolver.lookup(ip("198.18.0.5"));
    assert_eq!(lab.country, CountryCode::new("NL"));
    let source = usize::from(lab.country_source.unwrap());
    assert_eq!(resolver.databases()[source].name, "overrides");

    let google = resolver.lookup(ip("8.8.8.8"));
    assert_eq!(google.country, CountryCode::new("US"));
    let source = usize::from(google.country_source.unwrap());
    assert!(resolver.databases()[source].name.starts_with("embedded:"));

    assert_eq!(resolver.lookup(ip("192.168.1.1")).country, None);
    assert_eq!(resolver.lookup_errors(), 0);
}

#[test]
fn files_open_in_order() {
    let dir = PathBuf::from(TEST_DATA);
    if !dir.is_dir() {
        eprintln!("note: {TEST_DATA} is missing; skipping this test");
        return;
    }
    let mut resolver = Resolver::open(&[
        dir.join("GeoIP2-City-Test.mmdb"),
        dir.join("GeoLite2-ASN-Test.mmdb"),
    ])
    .unwrap();
    let info = resolver.lookup(ip("89.160.20.130"));
    assert_eq!(info.country, CountryCode::new("SE"));
    assert_eq!(info.asn, Some(29_518));
    assert_eq!((info.country_source, info.asn_source), (Some(0), Some(1)));

    let error = Resolver::open(&[dir.join("GeoIP2-Domain-Test.mmdb")])
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("GeoIP2-Domain"), "{error}");
}
