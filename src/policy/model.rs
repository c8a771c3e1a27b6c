//! The policy file as written: serde structures that mirror the TOML, version 1.
//!
//! Every table rejects unknown keys, and every value that is validated beyond its TOML type is
//! wrapped in [`Spanned`] so that a problem can be reported at its line and column. Nothing here
//! interprets values; `compile` turns these into the runtime [`super::Policy`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A list of strings, each with its place in the file.
pub type SpannedList = Vec<Spanned<String>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub version: Option<Spanned<i64>>,
    pub name: Option<Spanned<String>>,
    pub home: Option<SpannedList>,
    pub local_networks: Option<SpannedList>,
    pub dedup_window: Option<Spanned<IntOrStr>>,
    pub plaintext_foreign: Option<Spanned<bool>>,
    pub plaintext_foreign_severity: Option<Spanned<String>>,
    #[serde(default)]
    pub groups: BTreeMap<Spanned<String>, Spanned<SpannedList>>,
    #[serde(default)]
    pub devices: Vec<Spanned<RawDevice>>,
    #[serde(default)]
    pub geoip_overrides: Vec<Spanned<RawOverride>>,
    #[serde(default)]
    pub operators: BTreeMap<Spanned<String>, Spanned<RawOperator>>,
    pub include_operators: Option<Spanned<SpannedList>>,
    pub deny_operators: Option<Spanned<SpannedList>>,
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
    pub resolvers: Option<Spanned<RawResolvers>>,
}

/// The `[resolvers]` section: which DNS resolvers devices may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResolvers {
    pub allowed: Option<Spanned<SpannedList>>,
    pub foreign: Option<Spanned<bool>>,
    pub severity: Option<Spanned<String>>,
    pub doh_names: Option<Spanned<SpannedList>>,
}

/// A file named by `include_operators`: operator groups only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperatorsFile {
    #[serde(default)]
    pub operators: BTreeMap<Spanned<String>, Spanned<RawOperator>>,
}

/// One operator group: `name = { asns = [...], orgs = [...], source = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperator {
    pub asns: Option<Spanned<Vec<Spanned<i64>>>>,
    pub orgs: Option<Spanned<SpannedList>>,
    pub source: Option<Spanned<String>>,
}

/// One `[[devices]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub name: Option<Spanned<String>>,
    pub ip: Option<Spanned<String>>,
    pub cidr: Option<Spanned<String>>,
    pub mac: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
}

/// One `[[geoip_overrides]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    pub cidr: Option<Spanned<String>>,
    pub country: Option<Spanned<String>>,
    pub asn: Option<Spanned<i64>>,
    pub as_org: Option<Spanned<String>>,
}

/// One `[[rules]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Option<Spanned<String>>,
    pub action: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
    pub profiles: Option<Spanned<SpannedList>>,
    pub countries: Option<Spanned<SpannedList>>,
    pub not_countries: Option<Spanned<SpannedList>>,
    pub unknown_country: Option<Spanned<bool>>,
    pub asns: Option<Spanned<Vec<Spanned<i64>>>>,
    pub not_asns: Option<Spanned<Vec<Spanned<i64>>>>,
    pub operators: Option<Spanned<SpannedList>>,
    pub not_operators: Option<Spanned<SpannedList>>,
    pub cidrs: Option<Spanned<SpannedList>>,
    pub not_cidrs: Option<Spanned<SpannedList>>,
    pub transports: Option<Spanned<SpannedList>>,
    pub ports: Option<Spanned<Vec<Spanned<IntOrStr>>>>,
    pub not_ports: Option<Spanned<Vec<Spanned<IntOrStr>>>>,
    pub domains: Option<Spanned<SpannedList>>,
    pub not_domains: Option<Spanned<SpannedList>>,
    pub unknown_domain: Option<Spanned<bool>>,
    pub plaintext: Option<Spanned<bool>>,
    pub bytes_out_over: Option<Spanned<IntOrStr>>,
    pub country_bytes_out_over: Option<Spanned<IntOrStr>>,
    pub name_bytes_out_over: Option<Spanned<IntOrStr>>,
    pub hardcoded: Option<Spanned<bool>>,
    pub app_protos: Option<Spanned<SpannedList>>,
    pub not_app_protos: Option<Spanned<SpannedList>>,
    // --- re-routing: tunnels, proxies, redirects ---
    pub via: Option<Spanned<bool>>,
    pub via_kinds: Option<Spanned<SpannedList>>,
    pub via_countries: Option<Spanned<SpannedList>>,
    pub not_via_countries: Option<Spanned<SpannedList>>,
    pub resolver: Option<Spanned<bool>>,
    pub resolver_kinds: Option<Spanned<SpannedList>>,
}

/// A value that may be written as an integer or as a string (`443` or `"8000-8100"`,
/// `60` or `"60s"`, `1048576` or `"1MiB"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IntOrStr, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                // Out-of-range values are reported by the caller as out of range.
                Ok(IntOrStr::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}
