//! Lab overlays: a small CSV of `cidr,country,asn,org,label` rows whose answers win over the
//! databases (but not over the policy's `geoip_overrides`).
//!
//! An overlay is compiled into the same longest-prefix table as the overrides, and appears in
//! [`super::Resolver::databases`] as `overlay:FILE`, which the answers it gives point at.
//!
//! File format (see docs/geoip.md, "Lab overlays"):
//! - one row per network: `cidr,country,asn,org,label`; every column after `cidr` may be empty or
//!   missing, but a row must give at least one of country, asn and org;
//! - `cidr` is `a.b.c.d/n`, `x::/n` or a bare address; host bits must be zero;
//! - `country` is a two-letter ISO 3166-1 code; `asn` is `64512` or `AS64512`; `org` and `label`
//!   are free text (quote with `"` when they hold commas);
//! - the first line is a header when its first field is not an address; blank lines and lines
//!   starting with `#` are skipped;
//! - where two rows give the same network, the later row wins; otherwise the longest prefix wins.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;

use super::overrides::OverrideTable;
use super::record::{country_from_db, parse_asn};
use super::writer::csv::{looks_like_address, split_fields};
use super::{DatabaseInfo, GeoOverride, GeoipError};

/// Largest overlay file accepted, in bytes (16 MiB): far above a lab's list, small enough that a
/// wrong file (a whole database dump, a capture) is refused at once.
pub const OVERLAY_MAX_BYTES: u64 = 16 << 20;

/// How [`DatabaseInfo::database_type`] names an overlay.
pub const OVERLAY_DATABASE_TYPE: &str = "egresswatch-overlay";

/// The prefix of an overlay's [`DatabaseInfo::name`]: `overlay:` and the path as given.
pub const OVERLAY_NAME_PREFIX: &str = "overlay:";

/// A loaded overlay.
#[derive(Debug)]
pub struct Overlay {
    name: String,
    table: OverrideTable,
    rows: usize,
}

impl Overlay {
    /// Reads and checks an overlay file. Errors name the file and line and say what to fix.
    pub fn load(path: &Path) -> Result<Overlay, GeoipError> {
        let name = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(OVERLAY_MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| GeoipError::Open {
                path: name.clone(),
                message: format!(
                    "cannot read the GeoIP overlay: {e}; check the path and its permissions"
                ),
            })?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > OVERLAY_MAX_BYTES {
            return Err(GeoipError::Open {
                path: name,
                message: format!(
                    "larger than any overlay egresswatch accepts ({OVERLAY_MAX_BYTES} bytes); an \
                     overlay is a short CSV of lab networks (build big files into a database with \
                     `egresswatch geoip build`)"
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| GeoipError::Overlay {
            path: name.clone(),
            line: line_of(e.as_bytes(), e.utf8_error().valid_up_to()),
            message: "the file is not UTF-8 text; save it as UTF-8".to_owned(),
        })?;
        Overlay::parse(&name, &text)
    }

    /// Parses overlay text; `name` is the file as it should appear in errors and in
    /// `overlay:NAME`.
    pub fn parse(name: &str, text: &str) -> Result<Overlay, GeoipError> {
        let mut entries = Vec::new();
        let mut fields = Vec::new();
        let mut first = true;
        for (index, line) in text.lines().enumerate() {
            let line_number = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
            let err = |message: String| GeoipError::Overlay {
                path: name.to_owned(),
                line: line_number,
                message,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            split_fields(trimmed, &mut fields).map_err(|e| err(e.to_string()))?;
            let is_first = std::mem::replace(&mut first, false);
            let cell = |i: usize| fields.get(i).map_or("", String::as_str);
            if is_first && !looks_like_address(cell(0)) {
                continue;
            }
            entries.push(parse_row(&fields).map_err(err)?);
        }
        if entries.is_empty() {
            return Err(GeoipError::Overlay {
                path: name.to_owned(),
                line: 0,
                message: "the overlay has no rows: give cidr,country,asn,org,label lines"
                    .to_owned(),
            });
        }
        let rows = entries.len();
        Ok(Overlay {
            name: format!("{OVERLAY_NAME_PREFIX}{name}"),
            table: OverrideTable::with_labels(entries),
            rows,
        })
    }

    /// `overlay:FILE`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows read (a row for a network given before replaces it).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Distinct networks in the overlay.
    pub fn networks(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn table(&self) -> &OverrideTable {
        &self.table
    }

    pub(crate) fn info(&self) -> DatabaseInfo {
        DatabaseInfo {
            name: self.name.clone(),
            database_type: OVERLAY_DATABASE_TYPE.to_owned(),
            build_epoch: 0,
            ip_version: None,
            node_count: None,
            record_size: None,
            size_bytes: None,
        }
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let newlines = before.iter().filter(|&&b| b == b'\n').count();
    u64::try_from(newlines)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// One row: `cidr,country,asn,org,label`.
fn parse_row(fields: &[String]) -> Result<(GeoOverride, Option<String>), String> {
    let cell = |i: usize| fields.get(i).map(|s| s.trim()).filter(|s| !s.is_empty());
    if fields.len() > 5 {
        return Err(format!(
            "the row has {} columns; an overlay row is cidr,country,asn,org,label (quote an org or \
             label that holds commas)",
            fields.len()
        ));
    }
    let cidr = cell(0).unwrap_or_default();
    let net = parse_net(cidr)?;
    let country = cell(1)
        .map(|text| {
            country_from_db(text).ok_or_else(|| {
                format!(
                    "column 2: {text:?} is not a two-letter ISO 3166-1 country code (e.g. DE); fix \
                     or empty the cell"
                )
            })
        })
        .transpose()?;
    let asn = cell(2)
        .map(|text| {
            parse_asn(text).ok_or_else(|| {
                format!(
                    "column 3: {text:?} is not an AS number (e.g. 64512 or AS64512); fix or empty \
                     the cell"
                )
            })
        })
        .transpose()?;
    let as_org = cell(3).map(str::to_owned);
    let label = cell(4).map(str::to_owned);
    if country.is_none() && asn.is_none() && as_org.is_none() {
        return Err(format!(
            "the row for {net} gives no country, asn or org: fill in at least one (rows are \
             cidr,country,asn,org,label)"
        ));
    }
    Ok((
        GeoOverride {
            net,
            country,
            asn,
            as_org,
        },
        label,
    ))
}

/// A CIDR with no host bits, or a bare address.
fn parse_net(text: &str) -> Result<IpNet, String> {
    if text.contains('/') {
        let net = IpNet::from_str(text).map_err(|_| {
            format!(
                "column 1: {text:?} is not a CIDR network; write ADDRESS/PREFIX, e.g. \
                 198.18.0.0/24 or 2001:db8::/32"
            )
        })?;
        if net.trunc() != net {
            return Err(format!(
                "column 1: {text} has bits set after the prefix; did you mean {}?",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    std::net::IpAddr::from_str(text)
        .map(IpNet::from)
        .map_err(|_| {
            format!(
                "column 1: {text:?} is not an IP address or CIDR network; rows are \
             cidr,country,asn,org,label"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geoip::CountryCode;

    #[test]
    fn rows_headers_comments_and_labels() {
        let text = "cidr,country,asn,org,label\n# lab\n\n198.18.0.0/15,NL,AS64512,\"Lab, Inc.\",mitm proxy\n192.0.2.7,,64513\n2001:db8::/32,de\n";
        let overlay = Overlay::parse("lab.csv", text).unwrap();
        assert_eq!(overlay.name(), "overlay:lab.csv");
        assert_eq!((overlay.rows(), overlay.networks()), (3, 3));
        let answer = overlay
            .table()
            .lookup("198.18.1.1".parse().unwrap())
            .unwrap();
        assert_eq!(answer.country, CountryCode::new("NL"));
        assert_eq!(answer.asn, Some(64_512));
        assert_eq!(answer.as_org.as_deref(), Some("Lab, Inc."));
        assert_eq!(answer.label.as_deref(), Some("mitm proxy"));
        let host = overlay
            .table()
            .lookup("192.0.2.7".parse().unwrap())
            .unwrap();
        assert_eq!((host.country, host.asn), (None, Some(64_513)));
        let v6 = overlay
            .table()
            .lookup("2001:db8::1".parse().unwrap())
            .unwrap();
        assert_eq!(v6.country, CountryCode::new("DE"));
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let e = |text: &str| Overlay::parse("lab.csv", text).unwrap_err().to_string();
        assert_eq!(
            e("10.0.0.1/8,DE"),
            "lab.csv:1: column 1: 10.0.0.1/8 has bits set after the prefix; did you mean 10.0.0.0/8?"
        );
        assert!(e("cidr\n10.0.0.0/8,China").starts_with("lab.csv:2: column 2: \"China\""));
        assert!(e("10.0.0.0/8,,AS-x").starts_with("lab.csv:1: column 3: \"AS-x\""));
        assert!(e("10.0.0.0/8,,,,lab").starts_with("lab.csv:1: the row for 10.0.0.0/8 gives no"));
        assert!(e("10.0.0.0/8,DE\nnot-an-ip,DE").starts_with("lab.csv:2: column 1:"));
        assert!(e("10.0.0.0/8,DE,1,a,b,c").starts_with("lab.csv:1: the row has 6 columns"));
        assert!(e("10.0.0.0/8,DE,1,\"a").contains("quoted field is not closed"));
        assert!(e("# nothing\n").starts_with("lab.csv:0: the overlay has no rows"));
    }
}
