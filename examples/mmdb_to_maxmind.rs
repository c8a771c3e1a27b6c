//! Converts a MaxMind DB file of any layout egresswatch reads into CSV rows for
//! `egresswatch geoip build`, so tools that read only MaxMind's layout (`country.iso_code`,
//! `autonomous_system_number`: Wireshark/tshark, libmaxminddb's `mmdblookup`) see the answers
//! egresswatch gives. The benchmark harness uses it to give tshark the embedded country data
//! (scripts/bench.sh, BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release --example mmdb_to_maxmind -- --out countries.csv
//! # it prints the build command to run next, e.g.:
//! egresswatch geoip build --input countries.csv --layout country \
//!     --columns country=1,registered_country=2 --build-epoch 1780345978 --out GeoLite2-Country.mmdb
//! # and checks the result against the source, network by network:
//! cargo run --release --example mmdb_to_maxmind -- --verify GeoLite2-Country.mmdb
//! ```
//!
//! Options: `--db FILE.mmdb` (default: the embedded country database, geoip/dbip-country.mmdb),
//! `--layout country` (default: country and registered country) or `merged` (also the AS number
//! and organisation, for a source that has them, e.g. IPinfo's layout), `--out FILE.csv` (default:
//! standard output), `--verify CONVERTED.mmdb` (instead of converting: looks the first and last
//! address of every network of the source up in both files with egresswatch's resolver and counts
//! the addresses whose answers differ; exit 1 if any does).
//!
//! Every network of the source's search tree becomes one `network,country,registered_country,asn,
//! org` row, values read as egresswatch reads them (src/geoip/record.rs): the country from
//! `country.iso_code`, else `country_code`, else a plain `country` string; placeholder codes (`ZZ`,
//! `XX`) and values that are not two letters are left empty, as egresswatch drops them; the AS from
//! `autonomous_system_number`/`_organization`, else `asn` (`"AS123"` or a number)/`as_name`; AS 0
//! is left empty. A network with none of the layout's fields is left out. The tree's IPv4 aliases
//! (`::ffff:0:0/96`, `2002::/16`) are skipped: the writer keeps IPv4 at `::/96`, where MaxMind's
//! readers look IPv4 addresses up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use egresswatch::geoip::{CountryCode, GeoInfo, Resolver};
use ipnet::IpNet;
use maxminddb::{Reader, WithinOptions};
use serde::Deserialize;

/// Codes databases use for "unknown", which egresswatch treats as no answer (src/geoip/record.rs).
const COUNTRY_PLACEHOLDERS: [&str; 2] = ["ZZ", "XX"];

/// AS 0 is reserved and never announced (RFC 7607 §2); databases use it for "no AS".
const AS_RESERVED_NONE: u32 = 0;

/// The header row; `geoip build` skips a first line that does not start with an address.
const HEADER: &str = "network,country,registered_country,asn,org";

/// Which fields the rows carry, named as `geoip build --layout` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Country and registered country.
    Country,
    /// Country, registered country, AS number and organisation.
    Merged,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Country => "country",
            Layout::Merged => "merged",
        }
    }

    /// `geoip build --columns` for the rows this program writes.
    fn columns(self) -> &'static str {
        match self {
            Layout::Country => "country=1,registered_country=2",
            Layout::Merged => "country=1,registered_country=2,asn=3,org=4",
        }
    }
}

/// A record in any layout egresswatch reads; every field optional.
#[derive(Debug, Default, Deserialize)]
struct SourceRecord {
    #[serde(default)]
    country: Option<CountryField>,
    #[serde(default)]
    registered_country: Option<CountryField>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    asn: Option<AsnField>,
    #[serde(default)]
    as_name: Option<String>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(default)]
    autonomous_system_organization: Option<String>,
}

/// `country` is a map with `iso_code` in MaxMind's layouts, a plain code in others.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CountryField {
    Nested {
        #[serde(default)]
        iso_code: Option<String>,
    },
    Plain(String),
}

/// `asn` is `"AS123"` in IPinfo's layout, a number in others.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AsnField {
    Number(u64),
    Text(String),
}

/// One CSV row's values, as egresswatch would read them from the source record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Row {
    country: Option<CountryCode>,
    registered_country: Option<CountryCode>,
    asn: Option<u32>,
    org: Option<String>,
}

fn country_code(text: &str) -> Option<CountryCode> {
    CountryCode::new(text).filter(|code| !COUNTRY_PLACEHOLDERS.contains(&code.as_str()))
}

impl SourceRecord {
    /// The values egresswatch keeps, in its order of preference.
    fn row(&self) -> Row {
        let nested = |field: &Option<CountryField>| match field {
            Some(CountryField::Nested { iso_code }) => iso_code.as_deref().and_then(country_code),
            _ => None,
        };
        let plain = match &self.country {
            Some(CountryField::Plain(code)) => country_code(code),
            _ => None,
        };
        let country = nested(&self.country)
            .or_else(|| self.country_code.as_deref().and_then(country_code))
            .or(plain);
        let (asn, org) = if self.autonomous_system_number.is_some()
            || self.autonomous_system_organization.is_some()
        {
            (
                self.autonomous_system_number,
                self.autonomous_system_organization.as_deref(),
            )
        } else {
            let number = match &self.asn {
                Some(AsnField::Number(n)) => u32::try_from(*n).ok(),
                Some(AsnField::Text(text)) => {
                    let digits = text.trim();
                    let digits = digits
                        .strip_prefix("AS")
                        .or_else(|| digits.strip_prefix("as"))
                        .unwrap_or(digits);
                    digits.parse::<u32>().ok()
                }
                None => None,
            };
            (number, self.as_name.as_deref())
        };
        Row {
            country,
            registered_country: nested(&self.registered_country),
            asn: asn.filter(|&n| n != AS_RESERVED_NONE),
            org: org
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }
}

impl Row {
    /// Whether the row has a value `geoip build --layout layout` reads.
    fn has_value(&self, layout: Layout) -> bool {
        let country = self.country.is_some() || self.registered_country.is_some();
        match layout {
            Layout::Country => country,
            Layout::Merged => country || self.asn.is_some() || self.org.is_some(),
        }
    }

    /// Writes `network,country,registered_country,asn,org` (the AS columns empty for the country
    /// layout) and a newline.
    fn write(&self, out: &mut impl Write, network: IpNet, layout: Layout) -> std::io::Result<()> {
        let code = |c: Option<CountryCode>| c.map(|c| c.to_string()).unwrap_or_default();
        write!(
            out,
            "{network},{},{}",
            code(self.country),
            code(self.registered_country)
        )?;
        match layout {
            Layout::Country => writeln!(out, ",,"),
            Layout::Merged => {
                let asn = self.asn.map(|n| n.to_string()).unwrap_or_default();
                writeln!(
                    out,
                    ",{asn},{}",
                    csv_text(self.org.as_deref().unwrap_or(""))
                )
            }
        }
    }
}

/// A CSV field: quoted, with `"` doubled, when it holds a comma or a quote. Line ends and other
/// control characters become spaces (`geoip build` reads one row per line).
fn csv_text(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.contains([',', '"']) {
        format!("\"{}\"", clean.replace('"', "\"\""))
    } else {
        clean
    }
}

/// What a conversion wrote.
#[derive(Debug, Default, PartialEq, Eq)]
struct Converted {
    /// Networks with data in the source tree.
    networks: u64,
    /// Rows written (networks with a value for the layout).
    rows: u64,
    /// Rows with an AS number or organisation (written only for the merged layout).
    with_as: u64,
}

/// Writes the header and one row per network of `reader` with a value for `layout`.
fn convert<S: AsRef<[u8]>>(
    reader: &Reader<S>,
    layout: Layout,
    out: &mut impl Write,
) -> Result<Converted, String> {
    writeln!(out, "{HEADER}").map_err(|e| e.to_string())?;
    let mut done = Converted::default();
    // Many networks share a record: decode each record once, by its offset in the data section.
    let mut rows: HashMap<usize, Row> = HashMap::new();
    let networks = reader
        .networks(WithinOptions::default())
        .map_err(|e| format!("cannot walk the search tree: {e}"))?;
    for item in networks {
        let found = item.map_err(|e| format!("damaged search tree: {e}"))?;
        let (Some(offset), Ok(network)) = (found.offset(), found.network()) else {
            continue;
        };
        let network = IpNet::new(network.ip(), network.prefix())
            .map_err(|e| format!("network {network}: {e}"))?;
        done.networks += 1;
        let row = match rows.entry(offset) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let record: SourceRecord = found
                    .decode()
                    .map_err(|e| format!("record of {network}: {e}"))?
                    .unwrap_or_default();
                slot.insert(record.row())
            }
        };
        if !row.has_value(layout) {
            continue;
        }
        done.rows += 1;
        if row.asn.is_some() || row.org.is_some() {
            done.with_as += 1;
        }
        row.write(out, network, layout).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(done)
}

/// The first and last address of a network.
fn ends(network: IpNet) -> [IpAddr; 2] {
    [network.network(), network.broadcast()]
}

/// What `--verify` compares: the fields the layout carries.
fn comparable(info: GeoInfo, layout: Layout) -> (Option<CountryCode>, Option<CountryCode>, Row) {
    let row = match layout {
        Layout::Country => Row::default(),
        Layout::Merged => Row {
            asn: info.asn,
            org: info.as_org.map(|s| s.to_string()),
            ..Row::default()
        },
    };
    (info.country, info.registered_country, row)
}

/// Looks the ends of every network of `source` up in both files; returns (addresses compared,
/// addresses whose answers differ).
fn verify(source: &Path, converted: &Path, layout: Layout) -> Result<(u64, u64), String> {
    let open = |path: &Path| {
        Resolver::open(&[path.to_path_buf()]).map_err(|e| format!("{}: {e}", path.display()))
    };
    let (mut want, mut got) = (open(source)?, open(converted)?);
    let reader = Reader::open_readfile(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let (mut compared, mut differ) = (0u64, 0u64);
    let networks = reader
        .networks(WithinOptions::default())
        .map_err(|e| format!("cannot walk the search tree: {e}"))?;
    for item in networks {
        let found = item.map_err(|e| format!("damaged search tree: {e}"))?;
        let Ok(network) = found.network() else {
            continue;
        };
        let Ok(network) = IpNet::new(network.ip(), network.prefix()) else {
            continue;
        };
        for ip in ends(network) {
            compared += 1;
            let (a, b) = (want.lookup(ip), got.lookup(ip));
            if comparable(a.clone(), layout) != comparable(b.clone(), layout) {
                if differ < 10 {
                    eprintln!("mmdb_to_maxmind: {ip}: source {a:?}, converted {b:?}");
                }
                differ += 1;
            }
        }
    }
    Ok((compared, differ))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: mmdb_to_maxmind [--db FILE.mmdb] [--layout country|merged] [--out FILE.csv]\n       \
         mmdb_to_maxmind [--db FILE.mmdb] [--layout country|merged] --verify CONVERTED.mmdb"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut db = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/geoip/dbip-country.mmdb"
    ));
    let (mut layout, mut out, mut check) = (Layout::Country, None, None);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().map(PathBuf::from);
        match (arg.to_str(), value) {
            (Some("--db"), Some(v)) => db = v,
            (Some("--out"), Some(v)) => out = Some(v),
            (Some("--verify"), Some(v)) => check = Some(v),
            (Some("--layout"), Some(v)) if v.as_os_str() == "country" => layout = Layout::Country,
            (Some("--layout"), Some(v)) if v.as_os_str() == "merged" => layout = Layout::Merged,
            _ => return usage(),
        }
    }
    if let Some(converted) = check {
        return match verify(&db, &converted, layout) {
            Ok((compared, differ)) => {
                eprintln!(
                    "mmdb_to_maxmind: {compared} addresses (the ends of every network of {}), \
                     {differ} with different answers ({} layout)",
                    db.display(),
                    layout.name()
                );
                if differ == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("mmdb_to_maxmind: {e}");
                ExitCode::from(2)
            }
        };
    }
    let reader = match Reader::open_readfile(&db) {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("mmdb_to_maxmind: {}: {e}", db.display());
            return ExitCode::from(2);
        }
    };
    let result = match &out {
        Some(path) => File::create(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|file| convert(&reader, layout, &mut BufWriter::new(file))),
        None => convert(
            &reader,
            layout,
            &mut BufWriter::new(std::io::stdout().lock()),
        ),
    };
    match result {
        Ok(done) => {
            let csv = out
                .as_ref()
                .map_or("FILE.csv".into(), |p| p.display().to_string());
            eprintln!(
                "mmdb_to_maxmind: {} networks with data, {} rows written ({} with an AS){}\n\
                 next: egresswatch geoip build --input {csv} --layout {} --columns {} \
                 --build-epoch {} --out FILE.mmdb",
                done.networks,
                done.rows,
                done.with_as,
                if layout == Layout::Country && done.with_as > 0 {
                    "; --layout merged would keep the AS fields"
                } else {
                    ""
                },
                layout.name(),
                layout.columns(),
                reader.metadata().build_epoch,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mmdb_to_maxmind: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egresswatch::geoip::writer::csv::{self, Columns, CsvOptions, CsvStats};
    use egresswatch::geoip::writer::{IpVersion, MmdbWriter, Record};
    use proptest::prelude::*;

    fn record(json: &str) -> Row {
        serde_json::from_str::<SourceRecord>(json).unwrap().row()
    }

    fn code(text: &str) -> Option<CountryCode> {
        CountryCode::new(text)
    }

    #[test]
    fn fields_are_read_in_egresswatch_order() {
        let maxmind = record(
            r#"{"country":{"iso_code":"de"},"country_code":"FR","registered_country":{"iso_code":"SG"},
               "autonomous_system_number":45102,"autonomous_system_organization":" Alibaba ",
               "asn":"AS1","as_name":"other"}"#,
        );
        assert_eq!(
            maxmind,
            Row {
                country: code("DE"),
                registered_country: code("SG"),
                asn: Some(45102),
                org: Some("Alibaba".to_owned()),
            }
        );
        let ipinfo = record(
            r#"{"country":"Germany","country_code":"DE","asn":"AS13335","as_name":"Cloudflare, Inc."}"#,
        );
        assert_eq!(ipinfo.country, code("DE"));
        assert_eq!(ipinfo.asn, Some(13335));
        assert_eq!(ipinfo.org.as_deref(), Some("Cloudflare, Inc."));
        let plain = record(r#"{"country":"cn","asn":4134}"#);
        assert_eq!((plain.country, plain.asn), (code("CN"), Some(4134)));
    }

    #[test]
    fn placeholders_and_as_zero_are_no_answer() {
        let row = record(r#"{"country_code":"ZZ","asn":"AS0","as_name":"  "}"#);
        assert_eq!(row, Row::default());
        assert!(!row.has_value(Layout::Merged));
        let unknown =
            record(r#"{"country":{"iso_code":"XX"},"registered_country":{"iso_code":"Germany"}}"#);
        assert_eq!(unknown, Row::default());
        let as_only = record(r#"{"autonomous_system_number":64500}"#);
        assert!(as_only.has_value(Layout::Merged) && !as_only.has_value(Layout::Country));
    }

    #[test]
    fn rows_quote_what_needs_it() {
        let row = Row {
            country: code("US"),
            registered_country: None,
            asn: Some(64500),
            org: Some("A \"big\", bad\norg".to_owned()),
        };
        let net: IpNet = "2a00::/12".parse().unwrap();
        let mut out = Vec::new();
        row.write(&mut out, net, Layout::Merged).unwrap();
        row.write(&mut out, net, Layout::Country).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2a00::/12,US,,64500,\"A \"\"big\"\", bad org\"\n2a00::/12,US,,,\n"
        );
    }

    /// One source network: public first octets / IPv6 blocks, so egresswatch looks them up.
    fn network() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (
                prop::sample::select(vec![1u8, 8, 23, 45, 81, 114, 185, 203]),
                any::<[u8; 3]>(),
                8u8..=32
            )
                .prop_map(|(a, [b, c, d], len)| {
                    IpNet::new(IpAddr::from([a, b, c, d]), len).unwrap().trunc()
                }),
            (
                prop::sample::select(vec![0x2a00u16, 0x2400, 0x2600]),
                any::<u64>(),
                16u8..=64
            )
                .prop_map(|(top, low, len)| {
                    let bits = (u128::from(top) << 112) | (u128::from(low) << 48);
                    IpNet::new(IpAddr::from(bits.to_be_bytes()), len)
                        .unwrap()
                        .trunc()
                }),
        ]
    }

    /// A source record in one of the layouts egresswatch reads, placeholders and AS 0 included.
    fn source_record() -> impl Strategy<Value = Record> {
        let country = prop::sample::select(vec!["DE", "cn", "US", "ZZ", "XX"]);
        let org = prop::sample::select(vec!["Example", "Acme, Inc.", "say \"hi\"", " "]);
        (0u8..3, country.clone(), country, 0u32..4, org).prop_map(
            |(layout, country, registered, asn, org)| match layout {
                0 => Record::map([
                    ("country_code", Record::string(country)),
                    ("asn", Record::string(format!("AS{asn}"))),
                    ("as_name", Record::string(org)),
                ]),
                1 => Record::map([
                    (
                        "country",
                        Record::map([("iso_code", Record::string(country))]),
                    ),
                    (
                        "registered_country",
                        Record::map([("iso_code", Record::string(registered))]),
                    ),
                    ("autonomous_system_number", Record::U32(asn)),
                    ("autonomous_system_organization", Record::string(org)),
                ]),
                _ => Record::map([
                    ("country", Record::string(country)),
                    ("asn", Record::U32(asn)),
                ]),
            },
        )
    }

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Converts `source` with this program and `geoip build`, then checks every network's ends
    /// answer the same in both.
    fn round_trip(entries: &[(IpNet, Record)], layout: Layout) -> Result<(), TestCaseError> {
        let mut source = MmdbWriter::new("test-source", IpVersion::V6);
        // A fixed record, so the database always has a field egresswatch reads.
        source
            .insert(
                "81.2.69.0/24".parse().unwrap(),
                Record::map([("country_code", Record::string("GB"))]),
            )
            .unwrap();
        for (net, record) in entries {
            source.insert(*net, record.clone()).unwrap();
        }
        let bytes = source.build().unwrap();
        let reader = Reader::from_source(bytes.as_slice()).unwrap();
        let mut rows = Vec::new();
        let done = convert(&reader, layout, &mut rows).unwrap();
        prop_assert!(done.rows <= done.networks);

        let build_layout = match layout {
            Layout::Country => csv::Layout::Country,
            Layout::Merged => csv::Layout::Merged,
        };
        let options = CsvOptions {
            layout: build_layout,
            columns: Columns::parse(layout.columns(), build_layout).unwrap(),
        };
        let mut converted = MmdbWriter::new("test-converted", IpVersion::V6);
        let mut stats = CsvStats::default();
        csv::read(
            "rows.csv",
            rows.as_slice(),
            &options,
            &mut converted,
            &mut stats,
        )
        .unwrap();
        prop_assert_eq!(stats.rows, done.rows);

        let dir = tempfile::tempdir().unwrap();
        let source_path = write_file(dir.path(), "source.mmdb", &bytes);
        let converted_path = write_file(dir.path(), "converted.mmdb", &converted.build().unwrap());
        let (compared, differ) = verify(&source_path, &converted_path, layout).unwrap();
        prop_assert_eq!(compared, 2 * done.networks);
        prop_assert_eq!(differ, 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn converted_database_answers_as_the_source(
            entries in prop::collection::vec((network(), source_record()), 1..24),
            merged in any::<bool>(),
        ) {
            let layout = if merged { Layout::Merged } else { Layout::Country };
            round_trip(&entries, layout)?;
        }
    }
}
