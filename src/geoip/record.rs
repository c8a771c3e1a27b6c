//! One database record, read once, whatever the vendor's layout.
//!
//! [`Record`] is a borrowed view with every field egresswatch reads from any supported layout;
//! [`Record::fields`] turns it into the few values the resolver keeps. Layouts:
//!
//! | layout                                | country                        | ASN, organisation |
//! |---------------------------------------|--------------------------------|-------------------|
//! | MaxMind GeoIP2/GeoLite2 Country, City | `country.iso_code`, `registered_country.iso_code` | |
//! | DB-IP Lite                            | same as MaxMind                |                   |
//! | IPinfo                                | `country_code` (`country` is a name there) | `asn` (`"AS15169"`), `as_name` |
//! | ip-location-db                        | `country_code`                 |                   |
//! | GeoLite2-ASN                          |                                | `autonomous_system_number`, `autonomous_system_organization` |
//! | others                                | `country` as a plain code      | `asn` as a number |
//!
//! Values that are not a valid code are dropped (`None`), never replaced by a placeholder.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use super::CountryCode;

/// What one database says about one address, reduced to the fields egresswatch keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub country: Option<CountryCode>,
    pub registered_country: Option<CountryCode>,
    pub asn: Option<u32>,
    pub as_org: Option<&'a str>,
}

impl Fields<'_> {
    /// Whether the ASN group (number and organisation) is answered.
    pub fn has_as(&self) -> bool {
        self.asn.is_some() || self.as_org.is_some()
    }
}

/// A record in any supported layout: every field optional, strings borrowed from the database.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<CountryField<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<CountryField<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    asn: Option<AsnField<'a>>,
    #[serde(borrow, default)]
    as_name: Option<&'a str>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// Whether the record carries any field egresswatch reads, even one whose value is dropped.
    pub fn has_known_field(&self) -> bool {
        self.country.is_some()
            || self.registered_country.is_some()
            || self.country_code.is_some()
            || self.asn.is_some()
            || self.as_name.is_some()
            || self.autonomous_system_number.is_some()
            || self.autonomous_system_organization.is_some()
    }

    /// The values kept: the first valid one in the order of the table in the module doc.
    pub fn fields(&self) -> Fields<'a> {
        let nested = |field: &Option<CountryField<'a>>| match field {
            Some(CountryField::Nested(code)) => *code,
            _ => None,
        };
        let plain = match self.country {
            Some(CountryField::Plain(code)) => Some(code),
            _ => None,
        };
        let country = nested(&self.country)
            .and_then(country_from_db)
            .or_else(|| self.country_code.and_then(country_from_db))
            .or_else(|| plain.and_then(country_from_db));
        let registered_country = nested(&self.registered_country).and_then(country_from_db);

        let (asn, as_org) = if self.autonomous_system_number.is_some()
            || self.autonomous_system_organization.is_some()
        {
            (
                self.autonomous_system_number,
                self.autonomous_system_organization,
            )
        } else {
            (self.asn.and_then(AsnField::number), self.as_name)
        };
        Fields {
            country,
            registered_country,
            asn: asn.filter(|&n| n != AS_RESERVED_NONE),
            as_org: as_org.map(str::trim).filter(|s| !s.is_empty()),
        }
    }
}

/// AS 0 is reserved and never announced (RFC 7607 §2); databases use it for "no AS".
const AS_RESERVED_NONE: u32 = 0;

/// User-assigned ISO 3166-1 codes that databases use to mean "unknown" (`ZZ` is CLDR's unknown
/// region, `XX` a common placeholder): treated as no answer.
const COUNTRY_PLACEHOLDERS: [&str; 2] = ["ZZ", "XX"];

/// A database's country string as a code, if it is one.
pub(crate) fn country_from_db(text: &str) -> Option<CountryCode> {
    CountryCode::new(text).filter(|code| !COUNTRY_PLACEHOLDERS.contains(&code.as_str()))
}

/// `country` is a map with `iso_code` in MaxMind layouts, a plain string in others.
#[derive(Debug, Clone, Copy)]
enum CountryField<'a> {
    Nested(Option<&'a str>),
    Plain(&'a str),
}

impl<'de: 'a, 'a> Deserialize<'de> for CountryField<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountryVisitor)
    }
}

struct CountryVisitor;

impl<'de> Visitor<'de> for CountryVisitor {
    type Value = CountryField<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a country code or a map with iso_code")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CountryField::Plain(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut iso_code = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == "iso_code" {
                iso_code = Some(map.next_value::<&'de str>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(CountryField::Nested(iso_code))
    }
}

/// `asn` is `"AS15169"` in IPinfo, a number elsewhere.
#[derive(Debug, Clone, Copy)]
enum AsnField<'a> {
    Number(u64),
    Text(&'a str),
}

impl AsnField<'_> {
    fn number(self) -> Option<u32> {
        match self {
            AsnField::Number(n) => u32::try_from(n).ok(),
            AsnField::Text(text) => parse_asn(text),
        }
    }
}

/// `AS15169`, `as15169` or `15169` as 15169. ASNs are 32-bit (RFC 6793).
pub(crate) fn parse_asn(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = match text.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("AS") => text.get(2..)?,
        _ => text,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl<'de: 'a, 'a> Deserialize<'de> for AsnField<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AsnVisitor)
    }
}

struct AsnVisitor;

impl<'de> Visitor<'de> for AsnVisitor {
    type Value = AsnField<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AS number or a string like \"AS15169\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(AsnField::Number(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        // A negative number is no AS; keep it out of range so `number` drops it.
        Ok(AsnField::Number(u64::try_from(v).unwrap_or(u64::MAX)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(AsnField::Number(u64::try_from(v).unwrap_or(u64::MAX)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(AsnField::Text(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_asn_text() {
        assert_eq!(parse_asn("AS15169"), Some(15169));
        assert_eq!(parse_asn("as15169"), Some(15169));
        assert_eq!(parse_asn("15169"), Some(15169));
        assert_eq!(parse_asn(" AS4294967295 "), Some(u32::MAX));
        assert_eq!(parse_asn("AS4294967296"), None);
        assert_eq!(parse_asn("AS"), None);
        assert_eq!(parse_asn(""), None);
        assert_eq!(parse_asn("AS-1"), None);
        assert_eq!(parse_asn("AS+1"), None);
        assert_eq!(parse_asn("ASé"), None);
        assert_eq!(parse_asn("é1"), None);
    }

    #[test]
    fn placeholder_countries_are_dropped() {
        assert_eq!(country_from_db("de"), CountryCode::new("DE"));
        assert_eq!(country_from_db("ZZ"), None);
        assert_eq!(country_from_db("xx"), None);
        assert_eq!(country_from_db("Germany"), None);
        assert_eq!(country_from_db(""), None);
    }

    #[test]
    fn layouts_map_to_fields() {
        let maxmind = Record {
            country: Some(CountryField::Nested(Some("SE"))),
            registered_country: Some(CountryField::Nested(Some("DE"))),
            ..Record::default()
        };
        assert_eq!(maxmind.fields().country, CountryCode::new("SE"));
        assert_eq!(maxmind.fields().registered_country, CountryCode::new("DE"));

        let ipinfo = Record {
            country: Some(CountryField::Plain("United States")),
            country_code: Some("US"),
            asn: Some(AsnField::Text("AS15169")),
            as_name: Some("Google LLC"),
            ..Record::default()
        };
        let fields = ipinfo.fields();
        assert_eq!(fields.country, CountryCode::new("US"));
        assert_eq!(
            (fields.asn, fields.as_org),
            (Some(15169), Some("Google LLC"))
        );

        let asn = Record {
            autonomous_system_number: Some(0),
            autonomous_system_organization: Some("  "),
            ..Record::default()
        };
        assert!(asn.has_known_field());
        assert_eq!(asn.fields(), Fields::default());

        let plain = Record {
            country: Some(CountryField::Plain("fr")),
            asn: Some(AsnField::Number(u64::MAX)),
            ..Record::default()
        };
        assert_eq!(plain.fields().country, CountryCode::new("FR"));
        assert_eq!(plain.fields().asn, None);
        assert!(!Record::default().has_known_field());
    }

    proptest::proptest! {
        #[test]
        fn parse_asn_never_panics_and_round_trips(text in "\\PC{0,12}", n: u32) {
            let _ = parse_asn(&text);
            proptest::prop_assert_eq!(parse_asn(&format!("AS{n}")), Some(n));
        }
    }
}
