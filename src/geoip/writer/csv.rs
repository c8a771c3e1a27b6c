//! CSV range files into database records: the input of `egresswatch geoip build`.
//!
//! Each row is either `start,end,values…` (an inclusive address range, split into the fewest
//! CIDR networks that cover it exactly) or `cidr,values…`, told apart per row by the `/` in the
//! first field. The first line of a file is skipped when its first field is not an address (a
//! header); blank lines and lines starting with `#` are skipped. Fields may be quoted with `"`
//! (a doubled `""` inside quotes is one `"`), as in ip-location-db's files.
//!
//! Which fields carry which values is a [`Columns`] map: by default the layout's fields follow
//! the range or CIDR in the order of [`Layout::default_fields`]; `--columns` gives absolute
//! 0-based indexes instead. An empty cell leaves its field out of the record; a row that gives no
//! field at all is an error.
//!
//! Guarantees: every error names the file, the line, the column where one applies, and what to
//! fix; memory per row is bounded by [`CSV_LINE_MAX_BYTES`]; nothing panics on any input.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::{MmdbWriter, Record, WriterError};
use crate::geoip::CountryCode;
use crate::geoip::record::parse_asn;

/// Longest line accepted, in bytes. Real rows are under 300 bytes; a longer line means the file
/// is not a range CSV (or has lost its line ends).
pub const CSV_LINE_MAX_BYTES: usize = 64 * 1024;

/// Largest column index `--columns` accepts.
pub const CSV_COLUMN_MAX_INDEX: usize = 255;

/// The record layouts the writer produces; [`crate::geoip`]'s resolver reads all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// GeoLite2-Country: `{"country":{"iso_code":"CN"},"registered_country":{"iso_code":"CN"}}`.
    Country,
    /// GeoLite2-ASN: `autonomous_system_number` (u32), `autonomous_system_organization`.
    Asn,
    /// Both of the above in one record.
    Merged,
    /// IPinfo: `country_code`, `asn` (`"AS123"`), `as_name`.
    Ipinfo,
}

/// A value a CSV column can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// An ISO 3166-1 alpha-2 code.
    Country,
    /// The registration country (MaxMind layouts); defaults to `country`'s column.
    RegisteredCountry,
    /// An AS number, `123` or `AS123`.
    Asn,
    /// The AS organisation name.
    Org,
}

impl Field {
    /// The name used in `--columns`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Country => "country",
            Field::RegisteredCountry => "registered_country",
            Field::Asn => "asn",
            Field::Org => "org",
        }
    }

    fn all() -> [Field; 4] {
        [
            Field::Country,
            Field::RegisteredCountry,
            Field::Asn,
            Field::Org,
        ]
    }
}

impl Layout {
    /// The fields this layout reads, in the order they follow the range or CIDR by default.
    pub fn default_fields(self) -> &'static [Field] {
        match self {
            Layout::Country => &[Field::Country],
            Layout::Asn => &[Field::Asn, Field::Org],
            Layout::Merged | Layout::Ipinfo => &[Field::Country, Field::Asn, Field::Org],
        }
    }

    /// Whether `--columns` may name `field` for this layout.
    fn accepts(self, field: Field) -> bool {
        field == Field::RegisteredCountry && matches!(self, Layout::Country | Layout::Merged)
            || self.default_fields().contains(&field)
    }

    /// The `database_type` used when none is given.
    pub fn default_database_type(self) -> &'static str {
        match self {
            Layout::Country => "egresswatch-Country",
            Layout::Asn => "egresswatch-ASN",
            Layout::Merged => "egresswatch-Country-ASN",
            Layout::Ipinfo => "egresswatch-ipinfo",
        }
    }
}

/// Where each field is read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// Absolute 0-based indexes; `None` means the layout's default positions.
    explicit: Option<BTreeMap<Field, usize>>,
}

/// A `--columns` value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ColumnsError {
    #[error(
        "--columns: {item:?} is not NAME=INDEX; write e.g. country=2 or asn=2,org=3 (0-based \
         column indexes)"
    )]
    Syntax { item: String },
    #[error(
        "--columns: unknown field {name:?}; the {layout:?} layout reads {known}",
        known = layout_fields(*layout)
    )]
    UnknownField { name: String, layout: Layout },
    #[error("--columns: {name} is given twice; give each field once")]
    Repeated { name: String },
    #[error(
        "--columns: index {index} of {name} is not a column index from 0 to {max}",
        max = CSV_COLUMN_MAX_INDEX
    )]
    BadIndex { name: String, index: String },
    #[error(
        "--columns: {name}={index} points at the address column; value columns start after the \
         range (index 2) or the CIDR (index 1)"
    )]
    AddressColumn { name: String, index: usize },
}

fn layout_fields(layout: Layout) -> String {
    Field::all()
        .into_iter()
        .filter(|&f| layout.accepts(f))
        .map(Field::name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Columns {
    /// The layout's default positions.
    pub fn defaults() -> Columns {
        Columns::default()
    }

    /// Parses `NAME=INDEX[,NAME=INDEX…]` for `layout`.
    pub fn parse(spec: &str, layout: Layout) -> Result<Columns, ColumnsError> {
        let mut map = BTreeMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, index)) = item.split_once('=') else {
                return Err(ColumnsError::Syntax {
                    item: item.to_owned(),
                });
            };
            let (name, index) = (name.trim(), index.trim());
            let field = Field::all()
                .into_iter()
                .find(|f| f.name() == name)
                .filter(|&f| layout.accepts(f))
                .ok_or_else(|| ColumnsError::UnknownField {
                    name: name.to_owned(),
                    layout,
                })?;
            let number = index
                .parse::<usize>()
                .ok()
                .filter(|&i| i <= CSV_COLUMN_MAX_INDEX)
                .ok_or_else(|| ColumnsError::BadIndex {
                    name: name.to_owned(),
                    index: index.to_owned(),
                })?;
            if number == 0 {
                return Err(ColumnsError::AddressColumn {
                    name: name.to_owned(),
                    index: number,
                });
            }
            if map.insert(field, number).is_some() {
                return Err(ColumnsError::Repeated {
                    name: name.to_owned(),
                });
            }
        }
        if map.is_empty() {
            return Err(ColumnsError::Syntax {
                item: spec.to_owned(),
            });
        }
        Ok(Columns {
            explicit: Some(map),
        })
    }

    /// The (field, column index) pairs to read in a row whose values start at `first_value`.
    fn positions(&self, layout: Layout, first_value: usize) -> Vec<(Field, usize)> {
        let mut positions: Vec<(Field, usize)> = match &self.explicit {
            Some(map) => map.iter().map(|(&f, &i)| (f, i)).collect(),
            None => layout
                .default_fields()
                .iter()
                .enumerate()
                .map(|(i, &f)| (f, first_value.saturating_add(i)))
                .collect(),
        };
        // The registration country defaults to the country's column.
        let has_registered = positions
            .iter()
            .any(|(f, _)| *f == Field::RegisteredCountry);
        if layout.accepts(Field::RegisteredCountry)
            && !has_registered
            && let Some(&(_, i)) = positions.iter().find(|(f, _)| *f == Field::Country)
        {
            positions.push((Field::RegisteredCountry, i));
        }
        positions
    }
}

/// What is wrong with one row.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RowProblem {
    #[error("{text:?} is not an IPv4 or IPv6 address; rows are start,end,… or cidr,…")]
    BadAddress { text: String },
    #[error(
        "{text:?} is not a CIDR network ({reason}); write it as ADDRESS/PREFIX, e.g. 192.0.2.0/24"
    )]
    BadCidr { text: String, reason: String },
    #[error("{text} has bits set after the prefix; did you mean {network}?")]
    HostBits { text: String, network: IpNet },
    #[error("the range ends ({end}) before it starts ({start}); swap the two addresses")]
    EndBeforeStart { start: IpAddr, end: IpAddr },
    #[error(
        "the range mixes address families ({start} to {end}); give IPv4 and IPv6 ranges on \
         separate rows"
    )]
    MixedFamilies { start: IpAddr, end: IpAddr },
    #[error(
        "{text:?} is not a two-letter ISO 3166-1 country code (e.g. DE); fix or empty the cell"
    )]
    BadCountry { text: String },
    #[error("{text:?} is not an AS number (e.g. 13335 or AS13335); fix or empty the cell")]
    BadAsn { text: String },
    #[error(
        "the row has {found} columns, but {field} is read from column index {index}; check the \
         delimiter, or --columns"
    )]
    MissingColumn {
        field: &'static str,
        index: usize,
        found: usize,
    },
    #[error("the row gives no value for any field ({fields}); fill in at least one")]
    NoValues { fields: String },
    #[error("a quoted field is not closed; close it with \" or remove the quote")]
    UnclosedQuote,
    #[error("the line is longer than {max} bytes; is this a range CSV file?", max = CSV_LINE_MAX_BYTES)]
    LineTooLong,
    #[error("the line is not UTF-8 text; save the file as UTF-8")]
    NotUtf8,
}

/// Why a CSV input could not be turned into a database.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}; check the path and its permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A row is wrong; `column` is the 0-based index of the culprit, where there is one.
    #[error(
        "{path}:{line}:{col} {problem}",
        col = column.map_or_else(String::new, |c| format!(" column index {c}:"))
    )]
    Row {
        path: String,
        line: u64,
        column: Option<usize>,
        problem: RowProblem,
    },
    /// The database could not hold what the rows ask for.
    #[error("{path}:{line}: {source}")]
    Writer {
        path: String,
        line: u64,
        #[source]
        source: WriterError,
    },
}

/// How to read CSV rows into records.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    pub layout: Layout,
    pub columns: Columns,
}

/// What reading the inputs did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvStats {
    /// Data rows read (headers, blank and comment lines not counted).
    pub rows: u64,
    /// CIDR networks inserted (a range may need several).
    pub networks: u64,
}

/// Reads one CSV file into `writer`.
pub fn read_file(
    path: &Path,
    options: &CsvOptions,
    writer: &mut MmdbWriter,
    stats: &mut CsvStats,
) -> Result<(), CsvError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| CsvError::Read {
        path: name.clone(),
        source,
    })?;
    read(&name, BufReader::new(file), options, writer, stats)
}

/// Reads CSV text from `input` (named `name` in errors) into `writer`.
pub fn read<R: BufRead>(
    name: &str,
    mut input: R,
    options: &CsvOptions,
    writer: &mut MmdbWriter,
    stats: &mut CsvStats,
) -> Result<(), CsvError> {
    let mut raw = Vec::with_capacity(256);
    let mut fields: Vec<String> = Vec::new();
    let mut line_number = 0u64;
    let mut seen_first = false;
    let row_error = |line: u64, column: Option<usize>, problem: RowProblem| CsvError::Row {
        path: name.to_owned(),
        line,
        column,
        problem,
    };
    loop {
        raw.clear();
        let limit = u64::try_from(CSV_LINE_MAX_BYTES).unwrap_or(u64::MAX);
        let read = (&mut input)
            .take(limit.saturating_add(1))
            .read_until(b'\n', &mut raw)
            .map_err(|source| CsvError::Read {
                path: name.to_owned(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        line_number = line_number.saturating_add(1);
        if raw.len() > CSV_LINE_MAX_BYTES {
            return Err(row_error(line_number, None, RowProblem::LineTooLong));
        }
        let text = std::str::from_utf8(&raw)
            .map_err(|_| row_error(line_number, None, RowProblem::NotUtf8))?;
        let text = text.trim_end_matches(['\n', '\r']);
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        split_fields(text, &mut fields).map_err(|problem| row_error(line_number, None, problem))?;
        let first_row = !seen_first;
        seen_first = true;
        let first = fields.first().map_or("", String::as_str);
        if first_row && !looks_like_address(first) {
            continue; // a header
        }
        let networks = row_networks(&fields)
            .map_err(|(column, problem)| row_error(line_number, Some(column), problem))?;
        let first_value = if first.contains('/') { 1 } else { 2 };
        let record = row_record(&fields, options, first_value)
            .map_err(|(column, problem)| row_error(line_number, column, problem))?;
        stats.rows = stats.rows.saturating_add(1);
        writer
            .insert_all(&networks, record)
            .map_err(|source| CsvError::Writer {
                path: name.to_owned(),
                line: line_number,
                source,
            })?;
        let count = u64::try_from(networks.len()).unwrap_or(u64::MAX);
        stats.networks = stats.networks.saturating_add(count);
    }
}

/// Whether a first field starts a data row rather than a header.
pub(crate) fn looks_like_address(field: &str) -> bool {
    let address = field.split('/').next().unwrap_or("").trim();
    address.parse::<IpAddr>().is_ok()
}

/// Splits a line at commas, honouring `"` quotes; reuses `out`'s strings.
pub(crate) fn split_fields(line: &str, out: &mut Vec<String>) -> Result<(), RowProblem> {
    if !line.contains('"') {
        // The common case: no quotes, so fields are the text between commas, trimmed.
        out.clear();
        out.extend(line.split(',').map(|field| field.trim().to_owned()));
        return Ok(());
    }
    out.clear();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    current.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' if !quoted => {
                out.push(std::mem::take(&mut current));
                at_start = true;
            }
            _ => {
                if !(at_start && c.is_whitespace()) {
                    at_start = false;
                    current.push(c);
                }
            }
        }
    }
    if quoted {
        return Err(RowProblem::UnclosedQuote);
    }
    out.push(current);
    for field in out.iter_mut() {
        let trimmed = field.trim_end();
        if trimmed.len() != field.len() {
            *field = trimmed.to_owned();
        }
    }
    Ok(())
}

/// The networks a row covers, or the column at fault and why.
fn row_networks(fields: &[String]) -> Result<Vec<IpNet>, (usize, RowProblem)> {
    let first = fields.first().map_or("", String::as_str);
    if first.contains('/') {
        let net: IpNet = first.parse().map_err(|e: ipnet::AddrParseError| {
            (
                0,
                RowProblem::BadCidr {
                    text: first.to_owned(),
                    reason: e.to_string(),
                },
            )
        })?;
        if net.trunc() != net {
            return Err((
                0,
                RowProblem::HostBits {
                    text: first.to_owned(),
                    network: net.trunc(),
                },
            ));
        }
        return Ok(vec![net]);
    }
    let address = |index: usize| -> Result<IpAddr, (usize, RowProblem)> {
        let text = fields.get(index).map_or("", String::as_str);
        text.parse().map_err(|_| {
            (
                index,
                RowProblem::BadAddress {
                    text: text.to_owned(),
                },
            )
        })
    };
    let (start, end) = (address(0)?, address(1)?);
    let cidrs = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => {
            range_to_cidrs(u128::from(u32::from(s)), u128::from(u32::from(e)), 32)
        }
        (IpAddr::V6(s), IpAddr::V6(e)) => range_to_cidrs(u128::from(s), u128::from(e), 128),
        _ => return Err((1, RowProblem::MixedFamilies { start, end })),
    };
    let Some(cidrs) = cidrs else {
        return Err((1, RowProblem::EndBeforeStart { start, end }));
    };
    Ok(cidrs
        .into_iter()
        .filter_map(|(base, prefix)| {
            if start.is_ipv4() {
                let v4 = std::net::Ipv4Addr::from(u32::try_from(base).ok()?);
                ipnet::Ipv4Net::new(v4, prefix).ok().map(IpNet::V4)
            } else {
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(base), prefix)
                    .ok()
                    .map(IpNet::V6)
            }
        })
        .collect())
}

/// The fewest CIDR blocks `(base, prefix length)` that cover `start..=end` exactly, in an
/// address space of `bits` bits; `None` when `end < start`.
pub fn range_to_cidrs(start: u128, end: u128, bits: u8) -> Option<Vec<(u128, u8)>> {
    if end < start || bits > 128 {
        return None;
    }
    let mut out = Vec::new();
    let mut base = start;
    loop {
        // The largest block aligned at `base` that ends at or before `end`.
        let mut host_bits = base.trailing_zeros().min(u32::from(bits));
        let last = loop {
            let mask = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
            let last = base | mask;
            if last <= end {
                break last;
            }
            host_bits = host_bits.saturating_sub(1);
        };
        let prefix = u32::from(bits).saturating_sub(host_bits);
        out.push((base, u8::try_from(prefix).unwrap_or(bits)));
        if last >= end {
            return Some(out);
        }
        base = last.checked_add(1)?;
    }
}

/// The record a row describes, or the column at fault and why.
fn row_record(
    fields: &[String],
    options: &CsvOptions,
    first_value: usize,
) -> Result<Record, (Option<usize>, RowProblem)> {
    let mut country = None;
    let mut registered = None;
    let mut asn = None;
    let mut org = None;
    let positions = options.columns.positions(options.layout, first_value);
    for &(field, index) in &positions {
        let Some(cell) = fields.get(index) else {
            return Err((
                Some(index),
                RowProblem::MissingColumn {
                    field: field.name(),
                    index,
                    found: fields.len(),
                },
            ));
        };
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        match field {
            Field::Country | Field::RegisteredCountry => {
                let code = CountryCode::new(cell).ok_or_else(|| {
                    (
                        Some(index),
                        RowProblem::BadCountry {
                            text: cell.to_owned(),
                        },
                    )
                })?;
                if field == Field::Country {
                    country = Some(code);
                } else {
                    registered = Some(code);
                }
            }
            Field::Asn => {
                asn = Some(parse_asn(cell).ok_or_else(|| {
                    (
                        Some(index),
                        RowProblem::BadAsn {
                            text: cell.to_owned(),
                        },
                    )
                })?);
            }
            Field::Org => org = Some(cell.to_owned()),
        }
    }
    let iso = |code: CountryCode| Record::map([("iso_code", Record::string(code.as_str()))]);
    let mut map = BTreeMap::new();
    let layout = options.layout;
    if matches!(layout, Layout::Country | Layout::Merged) {
        if let Some(code) = country {
            map.insert("country".to_owned(), iso(code));
        }
        if let Some(code) = registered {
            map.insert("registered_country".to_owned(), iso(code));
        }
    }
    if matches!(layout, Layout::Asn | Layout::Merged) {
        if let Some(n) = asn {
            map.insert("autonomous_system_number".to_owned(), Record::U32(n));
        }
        if let Some(name) = &org {
            map.insert(
                "autonomous_system_organization".to_owned(),
                Record::string(name),
            );
        }
    }
    if layout == Layout::Ipinfo {
        if let Some(code) = country {
            map.insert("country_code".to_owned(), Record::string(code.as_str()));
        }
        if let Some(n) = asn {
            map.insert("asn".to_owned(), Record::String(format!("AS{n}")));
        }
        if let Some(name) = org {
            map.insert("as_name".to_owned(), Record::String(name));
        }
    }
    if map.is_empty() {
        let mut names: Vec<&str> = positions.iter().map(|(f, _)| f.name()).collect();
        names.dedup();
        return Err((
            None,
            RowProblem::NoValues {
                fields: names.join(", "),
            },
        ));
    }
    Ok(Record::Map(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geoip::writer::IpVersion;

    fn options(layout: Layout) -> CsvOptions {
        CsvOptions {
            layout,
            columns: Columns::defaults(),
        }
    }

    fn load(text: &str, layout: Layout) -> Result<(MmdbWriter, CsvStats), CsvError> {
        let mut writer = MmdbWriter::new("test", IpVersion::V6);
        let mut stats = CsvStats::default();
        read(
            "in.csv",
            text.as_bytes(),
            &options(layout),
            &mut writer,
            &mut stats,
        )?;
        Ok((writer, stats))
    }

    fn error(text: &str, layout: Layout) -> String {
        load(text, layout).unwrap_err().to_string()
    }

    #[test]
    fn ranges_split_into_minimal_cidrs() {
        assert_eq!(
            range_to_cidrs(0, u128::from(u32::MAX), 32),
            Some(vec![(0, 0)])
        );
        assert_eq!(range_to_cidrs(0, u128::MAX, 128), Some(vec![(0, 0)]));
        assert_eq!(range_to_cidrs(5, 5, 32), Some(vec![(5, 32)]));
        assert_eq!(
            range_to_cidrs(1, 6, 32),
            Some(vec![(1, 32), (2, 31), (4, 31), (6, 32)])
        );
        assert_eq!(
            range_to_cidrs(u128::MAX, u128::MAX, 128),
            Some(vec![(u128::MAX, 128)])
        );
        assert_eq!(range_to_cidrs(6, 5, 32), None);
    }

    proptest::proptest! {
        #[test]
        fn cidrs_cover_the_range_exactly(a: u32, b: u32) {
            let (start, end) = (u128::from(a.min(b)), u128::from(a.max(b)));
            let cidrs = range_to_cidrs(start, end, 32).unwrap();
            let mut next = start;
            for &(base, prefix) in &cidrs {
                proptest::prop_assert_eq!(base, next);
                let size = 1u128 << (32 - prefix);
                proptest::prop_assert_eq!(base % size, 0);
                next = base + size;
            }
            proptest::prop_assert_eq!(next, end + 1);
            // At most two blocks per prefix length.
            proptest::prop_assert!(cidrs.len() <= 62);
        }

        #[test]
        fn any_line_is_read_or_refused_without_panic(text in "\\PC{0,80}") {
            let _ = load(&text, Layout::Merged);
        }

        #[test]
        fn split_never_panics(text in "[\",a ]{0,20}") {
            let mut out = Vec::new();
            let _ = split_fields(&text, &mut out);
        }
    }

    #[test]
    fn quoted_fields_and_headers() {
        let text = "start_ip,end_ip,asn,org\n\
                    1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
                    \n# comment\n\
                    2001:db8::/32,64500,\"The \"\"Lab\"\"\"\r\n";
        let (writer, stats) = load(text, Layout::Asn).unwrap();
        assert_eq!(
            stats,
            CsvStats {
                rows: 2,
                networks: 2
            }
        );
        let record = writer.get("1.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(
            record,
            &Record::map([
                ("autonomous_system_number", Record::U32(13_335)),
                (
                    "autonomous_system_organization",
                    Record::string("Cloudflare, Inc.")
                ),
            ])
        );
        let lab = writer.get("2001:db8::1".parse().unwrap()).unwrap();
        let Record::Map(map) = lab else { panic!() };
        assert_eq!(
            map.get("autonomous_system_organization"),
            Some(&Record::string("The \"Lab\""))
        );
    }

    #[test]
    fn errors_name_file_line_column_and_fix() {
        let e = error(
            "1.0.0.0,1.0.0.255,CN\n1.0.1.0,1.0.1.x,CN\n",
            Layout::Country,
        );
        assert!(e.starts_with("in.csv:2: column index 1:"), "{e}");
        assert!(
            e.contains("\"1.0.1.x\" is not an IPv4 or IPv6 address"),
            "{e}"
        );

        let e = error("1.0.0.9,1.0.0.1,CN\n", Layout::Country);
        assert!(e.starts_with("in.csv:1: column index 1:"), "{e}");
        assert!(e.contains("swap"), "{e}");

        let e = error("1.0.0.0,::1,CN\n", Layout::Country);
        assert!(e.contains("mixes address families"), "{e}");

        let e = error("h1,h2,h3\n1.0.0.0,1.0.0.255,China\n", Layout::Country);
        assert!(e.starts_with("in.csv:2: column index 2:"), "{e}");
        assert!(e.contains("two-letter"), "{e}");

        let e = error("10.0.0.1/8,DE\n", Layout::Country);
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");

        let e = error("10.0.0.0/8,DE,\"x\n", Layout::Merged);
        assert!(e.contains("not closed"), "{e}");

        let e = error("10.0.0.0/8,DE\n", Layout::Merged);
        assert!(
            e.contains("row has 2 columns, but asn is read from column index 2"),
            "{e}"
        );

        let e = error("10.0.0.0/8,DE,ASx,Org\n", Layout::Merged);
        assert!(e.contains("not an AS number"), "{e}");

        let e = error("10.0.0.0/8,,\n", Layout::Asn);
        assert!(e.contains("no value for any field (asn, org)"), "{e}");

        // Only the first line may be a header.
        let e = error("1.0.0.0/24,DE\nnot,a,row\n", Layout::Country);
        assert!(e.starts_with("in.csv:2: column index 0:"), "{e}");

        let long = format!("1.0.0.0/24,{}\n", "x".repeat(CSV_LINE_MAX_BYTES));
        assert!(error(&long, Layout::Country).contains("longer than"));
    }

    #[test]
    fn columns_spec() {
        let columns = Columns::parse("asn=3, org=5", Layout::Asn).unwrap();
        assert_eq!(
            columns.positions(Layout::Asn, 2),
            vec![(Field::Asn, 3), (Field::Org, 5)]
        );
        let columns = Columns::parse("country=4", Layout::Merged).unwrap();
        assert_eq!(
            columns.positions(Layout::Merged, 2),
            vec![(Field::Country, 4), (Field::RegisteredCountry, 4)]
        );
        assert!(matches!(
            Columns::parse("country=2", Layout::Asn),
            Err(ColumnsError::UnknownField { .. })
        ));
        assert!(matches!(
            Columns::parse("asn", Layout::Asn),
            Err(ColumnsError::Syntax { .. })
        ));
        assert!(matches!(
            Columns::parse("asn=2,asn=3", Layout::Asn),
            Err(ColumnsError::Repeated { .. })
        ));
        assert!(matches!(
            Columns::parse("asn=-1", Layout::Asn),
            Err(ColumnsError::BadIndex { .. })
        ));
        assert!(matches!(
            Columns::parse("asn=0", Layout::Asn),
            Err(ColumnsError::AddressColumn { .. })
        ));
        assert!(Columns::parse("", Layout::Asn).is_err());

        // A file with the country in a later column.
        let mut writer = MmdbWriter::new("test", IpVersion::V6);
        let options = CsvOptions {
            layout: Layout::Country,
            columns: Columns::parse("country=3", Layout::Country).unwrap(),
        };
        let mut stats = CsvStats::default();
        read(
            "x",
            "192.0.2.0,192.0.2.9,ignored,se\n".as_bytes(),
            &options,
            &mut writer,
            &mut stats,
        )
        .unwrap();
        let record = writer.get("192.0.2.5".parse().unwrap()).unwrap();
        let se = Record::map([("iso_code", Record::string("SE"))]);
        assert_eq!(
            record,
            &Record::map([("country", se.clone()), ("registered_country", se)])
        );
    }

    #[test]
    fn layouts_make_their_records() {
        let row = "198.51.100.0/24,de,AS64500,Lab GmbH\n";
        let (writer, _) = load(row, Layout::Ipinfo).unwrap();
        assert_eq!(
            writer.get("198.51.100.1".parse().unwrap()).unwrap(),
            &Record::map([
                ("country_code", Record::string("DE")),
                ("asn", Record::string("AS64500")),
                ("as_name", Record::string("Lab GmbH")),
            ])
        );
        let (writer, _) = load(row, Layout::Merged).unwrap();
        let Record::Map(map) = writer.get("198.51.100.1".parse().unwrap()).unwrap() else {
            panic!()
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "autonomous_system_number",
                "autonomous_system_organization",
                "country",
                "registered_country"
            ]
        );
    }
}
