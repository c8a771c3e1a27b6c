//! Tests of the resolver against the embedded database and the MaxMind test databases in
//! `../shared/mmdb` (skipped with a note when that folder is absent).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::database::Database;
use super::*;

const SHARED_MMDB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/mmdb");

/// The shared test databases, or `None` (with a note) when they are not there.
fn shared() -> Option<PathBuf> {
    let dir = PathBuf::from(SHARED_MMDB);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {SHARED_MMDB} is missing; skipping this test");
        None
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cc(code: &str) -> Option<CountryCode> {
    CountryCode::new(code)
}

fn country(resolver: &mut Resolver, addr: &str) -> Option<CountryCode> {
    resolver.lookup(ip(addr)).country
}

fn open_one(path: &Path) -> Resolver {
    Resolver::open(&[path.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn embedded_database_opens_fast() {
    let started = Instant::now();
    let resolver = Resolver::embedded().unwrap();
    let elapsed = started.elapsed();
    eprintln!("embedded database opened in {elapsed:?}");
    // The budget from start-up to first packet is 50 ms in release builds; allow for debug builds
    // and a busy machine here.
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    let info = resolver.databases().first().unwrap();
    assert_eq!(info.name, EMBEDDED_DATABASE_NAME);
    assert_eq!(info.database_type, "country ipvAll");
    assert_eq!(info.ip_version, Some(6));
    assert!(info.build_epoch > 1_700_000_000);
}

#[test]
fn embedded_databases_pass_the_checks_files_get() {
    for (name, bytes) in EMBEDDED_DATABASES {
        let database = Database::from_static(name, bytes).unwrap();
        let started = Instant::now();
        let walk = database.check().unwrap();
        eprintln!("walk of {name}: {walk:?} in {:?}", started.elapsed());
        assert!(!walk.truncated, "the walk must cover {name}");
        assert_eq!(walk.known, walk.records, "{name}");
    }
}

#[test]
fn embedded_databases_are_listed_in_order() {
    let resolver = Resolver::embedded().unwrap();
    let names: Vec<&str> = resolver
        .databases()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            EMBEDDED_DATABASE_NAME,
            EMBEDDED_ASN_DATABASE_NAME,
            EMBEDDED_REGISTERED_DATABASE_NAME
        ]
    );
    let asn = &resolver.databases()[1];
    assert_eq!(asn.database_type, "ip-location-db-asn");
    // ip-location-db asn 2.3.2026061719: 2026-06-17T19:00:00Z (see geoip/README.md).
    assert_eq!(asn.build_epoch, 1_781_722_800);
}

#[test]
fn embedded_asn_and_registered_country_known_answers() {
    let mut resolver = Resolver::embedded().unwrap();
    let alibaba = resolver.lookup(ip("8.209.73.197"));
    assert_eq!(alibaba.asn, Some(45_102));
    assert_eq!(
        alibaba.as_org.as_deref(),
        Some("Alibaba (US) Technology Co., Ltd.")
    );
    assert_eq!(alibaba.asn_source, Some(1));
    // The RIR data registers this block in SG, not US where the holder is incorporated.
    assert_eq!(alibaba.registered_country, cc("SG"));
    assert_eq!(alibaba.registered_country_source, Some(2));
    let cloudflare = resolver.lookup(ip("1.1.1.1"));
    assert_eq!(cloudflare.asn, Some(13_335));
    let google6 = resolver.lookup(ip("2001:4860:4860::8888"));
    assert_eq!(google6.asn, Some(15_169));
    assert_eq!(google6.registered_country, cc("US"));
    let chinanet = resolver.lookup(ip("114.114.114.114"));
    assert!(chinanet.asn.is_some());
    assert_eq!(resolver.lookup(ip("10.0.0.1")), GeoInfo::default());
}

#[test]
fn overlays_come_after_overrides_and_before_databases() {
    let mut resolver = Resolver::embedded().unwrap();
    let lab = Overlay::parse(
        "lab.csv",
        "cidr,country,asn,org,label\n8.209.73.0/24,DE,64512,Lab proxy,mitm\n10.9.0.0/16,NL,,,\n8.8.8.0/24,,64513,,\n",
    )
    .unwrap();
    let second = Overlay::parse("second.csv", "8.209.73.197,FR,,,second\n").unwrap();
    resolver.set_overlays(vec![lab, second]);
    let names =
        |r: &Resolver| -> Vec<String> { r.databases().iter().map(|d| d.name.clone()).collect() };
    assert_eq!(
        names(&resolver)[..2],
        ["overlay:lab.csv", "overlay:second.csv"]
    );
    let proxy = resolver.lookup(ip("8.209.73.197"));
    assert_eq!((proxy.country, proxy.asn), (cc("DE"), Some(64_512)));
    assert_eq!((proxy.country_source, proxy.asn_source), (Some(0), Some(0)));
    assert_eq!(proxy.label.as_deref(), Some("mitm"));
    // The databases still answer what the overlay does not give.
    assert_eq!(proxy.registered_country, cc("SG"));
    // Private addresses get overlay answers too, and nothing from the databases.
    let private = resolver.lookup(ip("10.9.1.1"));
    assert_eq!((private.country, private.asn), (cc("NL"), None));
    // An overlay that gives only the ASN leaves the country to the databases.
    let google = resolver.lookup(ip("8.8.8.8"));
    assert_eq!((google.country, google.asn), (cc("US"), Some(64_513)));
    assert_eq!(google.country_source, Some(2));
    assert_eq!(google.label, None);

    // Policy overrides win over overlays; the overlays stay after them.
    resolver.set_overrides(vec![GeoOverride {
        net: "8.209.73.0/24".parse().unwrap(),
        country: cc("JP"),
        asn: None,
        as_org: None,
    }]);
    assert_eq!(
        names(&resolver)[..3],
        [OVERRIDES_NAME, "overlay:lab.csv", "overlay:second.csv"]
    );
    let proxy = resolver.lookup(ip("8.209.73.197"));
    assert_eq!((proxy.country, proxy.asn), (cc("JP"), Some(64_512)));
    assert_eq!((proxy.country_source, proxy.asn_source), (Some(0), Some(1)));
    // Replacing the overlays keeps the overrides first.
    resolver.set_overlays(Vec::new());
    assert_eq!(names(&resolver).len(), 4);
    assert_eq!(resolver.lookup(ip("8.209.73.197")).asn, Some(45_102));
    let counts = resolver.network_counts().unwrap();
    assert_eq!(counts.len(), 4);
    assert_eq!(counts[0].networks, 1);
    assert!(
        counts[1..]
            .iter()
            .all(|c| c.networks > 100_000 && !c.truncated)
    );
}

#[test]
fn stale_databases_by_build_date() {
    let resolver = Resolver::embedded().unwrap();
    let asn = resolver
        .databases()
        .iter()
        .find(|db| db.name == EMBEDDED_ASN_DATABASE_NAME)
        .unwrap();
    let built = asn.build_epoch;
    let day = 86_400;
    assert!(
        stale_databases(resolver.databases(), built + 180 * day, 180)
            .iter()
            .all(|(db, _)| db.name != EMBEDDED_ASN_DATABASE_NAME)
    );
    let stale = stale_databases(resolver.databases(), built + 181 * day, 180);
    assert!(
        stale
            .iter()
            .any(|(db, age)| db.name == EMBEDDED_ASN_DATABASE_NAME && *age == 181)
    );
    // A build date in the future is age 0; overrides and overlays have no age.
    assert_eq!(asn.age_days(built - day), Some(0));
    assert_eq!(DatabaseInfo::overrides().age_days(built), None);
}

#[test]
fn embedded_database_known_answers() {
    let mut resolver = Resolver::embedded().unwrap();
    assert_eq!(country(&mut resolver, "8.8.8.8"), cc("US"));
    assert_eq!(country(&mut resolver, "114.114.114.114"), cc("CN"));
    // Alibaba Cloud Frankfurt: geolocated in DE, announced by AS45102 "Alibaba (US) Technology",
    // its block registered in SG.
    assert_eq!(country(&mut resolver, "8.209.73.197"), cc("DE"));
    let alibaba = resolver.lookup(ip("8.209.73.197"));
    assert_eq!(alibaba.asn, Some(45_102));
    assert_eq!(alibaba.registered_country, cc("SG"));
    // IPv6: CERNET (CN), and Google Frankfurt (DE; its block is registered in IE).
    assert_eq!(country(&mut resolver, "2001:da8::1"), cc("CN"));
    assert_eq!(country(&mut resolver, "2a00:1450:4001:80b::200e"), cc("DE"));
    assert_eq!(country(&mut resolver, "::ffff:8.8.8.8"), cc("US"));
    let google = resolver.lookup(ip("8.8.8.8"));
    assert_eq!(google.country_source, Some(0));
    assert_eq!((google.asn, google.asn_source), (Some(15_169), Some(1)));
    assert_eq!(resolver.lookup(ip("10.0.0.1")), GeoInfo::default());
    assert_eq!(resolver.lookup(ip("198.18.0.5")), GeoInfo::default());
    assert_eq!(resolver.lookup(ip("fe80::1")), GeoInfo::default());
    assert_eq!(resolver.lookup_errors(), 0);
}

#[test]
fn overrides_win_for_any_address() {
    let mut resolver = Resolver::embedded().unwrap();
    resolver.set_overrides(vec![
        GeoOverride {
            net: "198.18.0.0/15".parse().unwrap(),
            country: cc("DE"),
            asn: Some(64_500),
            as_org: Some("Lab".to_owned()),
        },
        GeoOverride {
            net: "198.18.7.0/24".parse().unwrap(),
            country: cc("FR"),
            asn: None,
            as_org: None,
        },
        GeoOverride {
            net: "2001:db8::/32".parse().unwrap(),
            country: cc("JP"),
            asn: None,
            as_org: None,
        },
        GeoOverride {
            net: "8.8.8.0/24".parse().unwrap(),
            country: cc("SE"),
            asn: None,
            as_org: None,
        },
    ]);
    let names: Vec<&str> = resolver
        .databases()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            OVERRIDES_NAME,
            EMBEDDED_DATABASE_NAME,
            EMBEDDED_ASN_DATABASE_NAME,
            EMBEDDED_REGISTERED_DATABASE_NAME
        ]
    );
    assert_eq!(
        resolver.databases().first().unwrap().database_type,
        OVERRIDES_DATABASE_TYPE
    );

    let lab = resolver.lookup(ip("198.18.0.5"));
    assert_eq!((lab.country, lab.country_source), (cc("DE"), Some(0)));
    assert_eq!(
        (lab.asn, lab.as_org.as_deref()),
        (Some(64_500), Some("Lab"))
    );
    assert_eq!(lab.asn_source, Some(0));
    assert_eq!(country(&mut resolver, "198.18.7.9"), cc("FR"));
    assert_eq!(country(&mut resolver, "2001:db8::5"), cc("JP"));
    assert_eq!(country(&mut resolver, "8.8.8.8"), cc("SE"));
    let other = resolver.lookup(ip("114.114.114.114"));
    assert_eq!((other.country, other.country_source), (cc("CN"), Some(1)));
    assert_eq!(country(&mut resolver, "10.0.0.1"), None);

    // Replacing the overrides drops the old answers from the cache.
    resolver.set_overrides(Vec::new());
    assert_eq!(resolver.databases().len(), EMBEDDED_DATABASES.len());
    assert_eq!(country(&mut resolver, "198.18.0.5"), None);
    let google = resolver.lookup(ip("8.8.8.8"));
    assert_eq!((google.country, google.country_source), (cc("US"), Some(0)));
}

#[test]
fn cache_counts_hits_misses_and_clears() {
    let mut resolver = Resolver::embedded().unwrap();
    resolver.lookup(ip("8.8.8.8"));
    resolver.lookup(ip("8.8.8.8"));
    resolver.lookup(ip("::ffff:8.8.8.8"));
    resolver.lookup(ip("1.1.1.1"));
    assert_eq!((resolver.cache_hits(), resolver.cache_misses()), (2, 2));
    assert_eq!(resolver.cache_clears(), 0);
    // Fill the cache with non-public addresses (no database work) until it is emptied once.
    let extra = u32::try_from(GEOIP_CACHE_MAX_ENTRIES).unwrap();
    for n in 0..extra {
        resolver.lookup(IpAddr::V4((0x0A00_0000 | n).into()));
    }
    assert_eq!(resolver.cache_clears(), 1);
    assert!(resolver.cache.len() <= GEOIP_CACHE_MAX_ENTRIES);
    assert_eq!(resolver.stats().cache_misses, 2 + u64::from(extra));
}

/// The expected record for `addr` in a source-data JSON: the longest network containing it.
fn expected(
    entries: &[(ipnet::IpNet, serde_json::Value)],
    addr: IpAddr,
) -> Option<&serde_json::Value> {
    entries
        .iter()
        .filter(|(net, _)| net.contains(&addr))
        .max_by_key(|(net, _)| net.prefix_len())
        .map(|(_, value)| value)
}

fn source_data(dir: &Path, name: &str) -> Vec<(ipnet::IpNet, serde_json::Value)> {
    let text = std::fs::read_to_string(dir.join("source-data").join(name)).unwrap();
    let list: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&text).unwrap();
    list.into_iter()
        .flat_map(|entry| entry.into_iter())
        .map(|(net, value)| (net.parse().unwrap(), value))
        .collect()
}

/// Up to 20 public networks with `pointer` set, spread over the file; for each, the database's
/// answer for the network's first address is compared with the JSON's.
fn check_against_source(
    database: &str,
    json: &str,
    pointer: &str,
    answer: impl Fn(&GeoInfo) -> Option<String>,
) {
    let Some(dir) = shared() else { return };
    let entries = source_data(&dir, json);
    let mut resolver = open_one(&dir.join("test-data").join(database));
    let candidates: Vec<&(ipnet::IpNet, serde_json::Value)> = entries
        .iter()
        .filter(|(net, value)| value.pointer(pointer).is_some() && is_public(net.network()))
        .collect();
    assert!(
        candidates.len() >= 5,
        "{json}: too few networks with {pointer}"
    );
    let step = candidates.len().div_ceil(20);
    let mut checked = 0;
    for (net, _) in candidates.iter().step_by(step) {
        let addr = net.network();
        let want = expected(&entries, addr)
            .and_then(|value| value.pointer(pointer))
            .map(|value| match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        let got = answer(&resolver.lookup(addr));
        assert_eq!(got, want, "{database}: {addr} ({net}) {pointer}");
        checked += 1;
    }
    assert!(checked >= 5);
    assert_eq!(resolver.lookup_errors(), 0);
}

fn country_text(info: &GeoInfo) -> Option<String> {
    info.country.map(|c| c.to_string())
}

fn registered_text(info: &GeoInfo) -> Option<String> {
    info.registered_country.map(|c| c.to_string())
}

#[test]
fn geoip2_country_test_database() {
    let (db, json) = ("GeoIP2-Country-Test.mmdb", "GeoIP2-Country-Test.json");
    check_against_source(db, json, "/country/iso_code", country_text);
    check_against_source(db, json, "/registered_country/iso_code", registered_text);
}

#[test]
fn geolite2_country_test_database() {
    let (db, json) = ("GeoLite2-Country-Test.mmdb", "GeoLite2-Country-Test.json");
    check_against_source(db, json, "/country/iso_code", country_text);
    check_against_source(db, json, "/registered_country/iso_code", registered_text);
}

#[test]
fn geoip2_city_test_database() {
    let (db, json) = ("GeoIP2-City-Test.mmdb", "GeoIP2-City-Test.json");
    check_against_source(db, json, "/country/iso_code", country_text);
    check_against_source(db, json, "/registered_country/iso_code", registered_text);
}

#[test]
fn geolite2_asn_test_database() {
    let (db, json) = ("GeoLite2-ASN-Test.mmdb", "GeoLite2-ASN-Test.json");
    check_against_source(db, json, "/autonomous_system_number", |info| {
        info.asn.map(|n| n.to_string())
    });
    check_against_source(db, json, "/autonomous_system_organization", |info| {
        info.as_org.as_deref().map(str::to_owned)
    });
}

#[test]
fn country_and_asn_databases_merge() {
    let Some(dir) = shared() else { return };
    let test_data = dir.join("test-data");
    let mut resolver = Resolver::open(&[
        test_data.join("GeoLite2-Country-Test.mmdb"),
        test_data.join("GeoLite2-ASN-Test.mmdb"),
    ])
    .unwrap();
    let types: Vec<&str> = resolver
        .databases()
        .iter()
        .map(|d| d.database_type.as_str())
        .collect();
    assert_eq!(types, ["GeoLite2-Country", "GeoLite2-ASN"]);

    // 89.160.20.128/25 is SE in the country data, AS 29518 "Bredband2 AB" in the ASN data.
    let both = resolver.lookup(ip("89.160.20.130"));
    assert_eq!((both.country, both.country_source), (cc("SE"), Some(0)));
    assert_eq!((both.asn, both.asn_source), (Some(29_518), Some(1)));
    assert_eq!(both.as_org.as_deref(), Some("Bredband2 AB"));
    // 216.160.83.56/29: US, AS 209 without an organisation: the ASN group comes whole from the
    // ASN database.
    let no_org = resolver.lookup(ip("216.160.83.57"));
    assert_eq!((no_org.country, no_org.asn), (cc("US"), Some(209)));
    assert_eq!((no_org.as_org, no_org.asn_source), (None, Some(1)));
    // 1.0.0.0/24 is only in the ASN data.
    let asn_only = resolver.lookup(ip("1.0.0.1"));
    assert_eq!((asn_only.country, asn_only.country_source), (None, None));
    assert_eq!((asn_only.asn, asn_only.asn_source), (Some(15_169), Some(1)));
    // Organisation names are shared, not copied per look-up.
    let again = resolver.lookup(ip("1.0.0.200"));
    assert!(std::sync::Arc::ptr_eq(
        asn_only.as_org.as_ref().unwrap(),
        again.as_org.as_ref().unwrap()
    ));
}

/// Addresses looked up in every damaged database that opens (or is forced open).
const STRESS_ADDRESSES: &[&str] = &[
    "1.1.1.1",
    "1.1.1.3",
    "1.1.1.32",
    "2.125.160.216",
    "8.8.8.8",
    "81.2.69.160",
    "89.160.20.128",
    "216.160.83.56",
    "255.255.255.255",
    "2001:220::1",
    "2001:4860:4860::8888",
    "2a02:cf40::1",
    "::ffff:1.1.1.1",
    "ffff::1",
];

fn stress(resolver: &mut Resolver) {
    for addr in STRESS_ADDRESSES {
        let _ = resolver.lookup(ip(addr));
    }
}

/// Every file of bad-data and the broken test databases: `open` refuses it with a clear message,
/// or opens it, in which case look-ups must neither panic nor hang.
#[test]
fn damaged_databases_are_refused_or_harmless() {
    let Some(dir) = shared() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("bad-data"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    for broken in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ] {
        files.push(dir.join("test-data").join(broken));
    }
    files.sort();
    let mut opened = Vec::new();
    for file in &files {
        match Resolver::open(std::slice::from_ref(file)) {
            Ok(mut resolver) => {
                stress(&mut resolver);
                eprintln!(
                    "OPENED {} (lookup errors: {})",
                    file.display(),
                    resolver.lookup_errors()
                );
                opened.push(file.file_name().unwrap().to_string_lossy().into_owned());
            }
            Err(e) => {
                let message = e.to_string();
                eprintln!("refused: {message}");
                assert!(message.contains(&file.display().to_string()), "{message}");
            }
        }
        // Forced open, without the checks: look-ups still must not panic.
        let leaked: &'static [u8] = Box::leak(std::fs::read(file).unwrap().into_boxed_slice());
        if let Ok(database) = Database::from_static("forced", leaked) {
            stress(&mut Resolver::with_databases(vec![database]));
        }
    }
    // Today every one is refused; one that opens must have proved harmless above.
    assert!(opened.is_empty(), "opened: {opened:?}");
}

#[test]
fn run_time_lookup_errors_are_counted() {
    let Some(dir) = shared() else { return };
    // Skip the checks at open to reach the broken records at run time.
    let bytes =
        std::fs::read(dir.join("test-data/MaxMind-DB-test-broken-pointers-24.mmdb")).unwrap();
    let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let database = Database::from_static("broken-pointers", leaked).unwrap();
    let mut resolver = Resolver::with_databases(vec![database]);
    for n in 0..=255u8 {
        let _ = resolver.lookup(IpAddr::V4([1, 1, 1, n].into()));
    }
    assert!(resolver.lookup_errors() > 0);
}

#[test]
fn wrong_database_types_are_refused() {
    let Some(dir) = shared() else { return };
    for (file, database_type) in [
        ("GeoIP2-Domain-Test.mmdb", "GeoIP2-Domain"),
        ("GeoIP2-Connection-Type-Test.mmdb", "GeoIP2-Connection-Type"),
        ("GeoIP2-Anonymous-IP-Test.mmdb", "GeoIP2-Anonymous-IP"),
    ] {
        let path = dir.join("test-data").join(file);
        match Resolver::open(&[path]) {
            Err(e @ GeoipError::WrongType { .. }) => {
                let message = e.to_string();
                assert!(message.contains(database_type), "{message}");
                assert!(message.contains("country.iso_code"), "{message}");
            }
            Err(e) => panic!("{file}: {e}"),
            Ok(_) => panic!("{file} opened"),
        }
    }
}

#[test]
fn other_layouts_open() {
    let Some(dir) = shared() else { return };
    for file in [
        "GeoIP2-City-Shield-Test.mmdb",
        "GeoIP2-Enterprise-Test.mmdb",
        "GeoIP2-ISP-Test.mmdb",
        "GeoLite2-City-Test.mmdb",
        "GeoIP2-Precision-Enterprise-Test.mmdb",
    ] {
        let mut resolver = open_one(&dir.join("test-data").join(file));
        stress(&mut resolver);
        assert_eq!(resolver.lookup_errors(), 0, "{file}");
    }
}

#[test]
fn unreadable_and_foreign_files_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let error = Resolver::open(&[temp.path().to_path_buf()]).err().unwrap();
    assert!(
        matches!(error, GeoipError::Read { .. }),
        "a directory: {error}"
    );
    let missing = temp.path().join("missing.mmdb");
    let error = Resolver::open(std::slice::from_ref(&missing))
        .err()
        .unwrap();
    assert!(matches!(error, GeoipError::Read { .. }), "{error}");
    assert!(error.to_string().contains("missing.mmdb"));

    for (name, content) in [
        ("empty.mmdb", &b""[..]),
        ("text.mmdb", &b"network,country_code\n1.0.0.0/24,AU\n"[..]),
        ("gzip.mmdb", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0][..]),
    ] {
        let path = temp.path().join(name);
        std::fs::write(&path, content).unwrap();
        let error = Resolver::open(&[path]).err().unwrap();
        assert!(matches!(error, GeoipError::NotMaxMind { .. }), "{error}");
        assert!(error.to_string().contains(name), "{error}");
    }

    // The embedded database cut short.
    let path = temp.path().join("truncated.mmdb");
    let cut = EMBEDDED_DATABASE
        .get(..EMBEDDED_DATABASE.len() / 2)
        .unwrap();
    std::fs::write(&path, cut).unwrap();
    let error = Resolver::open(&[path]).err().unwrap();
    assert!(matches!(error, GeoipError::NotMaxMind { .. }), "{error}");

    // A metadata tail glued onto the wrong body.
    let path = temp.path().join("spliced.mmdb");
    let tail_start = EMBEDDED_DATABASE.len() - 4096;
    let mut spliced = vec![0xA5; 10_000];
    spliced.extend_from_slice(EMBEDDED_DATABASE.get(tail_start..).unwrap());
    std::fs::write(&path, spliced).unwrap();
    let error = Resolver::open(&[path]).err().unwrap();
    assert!(matches!(error, GeoipError::Corrupt { .. }), "{error}");
}

#[test]
fn resolver_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Resolver>();
}

#[test]
fn too_many_databases_are_refused() {
    let paths = vec![PathBuf::from("x.mmdb"); GEOIP_MAX_DATABASES + 1];
    let error = Resolver::open(&paths).err().unwrap();
    assert!(
        matches!(error, GeoipError::TooManyDatabases { .. }),
        "{error}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any byte flipped in a small database: open refuses it or look-ups stay harmless.
    #[test]
    fn mutated_databases_never_panic(flips in proptest::collection::vec((0usize..100_000, proptest::num::u8::ANY), 1..8)) {
        let Some(dir) = shared() else { return Ok(()) };
        let mut bytes = std::fs::read(dir.join("test-data/GeoIP2-Country-Test.mmdb")).unwrap();
        let len = bytes.len();
        for (at, value) in flips {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= value;
            }
        }
        let temp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(temp.path(), &bytes).unwrap();
        if let Ok(mut resolver) = Resolver::open(&[temp.path().to_path_buf()]) {
            stress(&mut resolver);
        }
        // Also without the checks at open.
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if let Ok(database) = Database::from_static("mutated", leaked) {
            let mut resolver = Resolver::with_databases(vec![database]);
            stress(&mut resolver);
        }
    }
}
