//! `egresswatch lookup`: what the databases say about addresses.

use std::io::{self, Write};
use std::net::IpAddr;

use clap::Args;
use serde::Serialize;

use egresswatch::geoip::{self, CountryCode};

use super::{Failure, GeoipArgs, PolicyArgs};

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// IPv4 or IPv6 addresses.
    #[arg(value_name = "IP", required = true)]
    pub addresses: Vec<String>,
    #[command(flatten)]
    pub geoip: GeoipArgs,
    /// A policy file whose geoip_overrides apply, as they would in a replay.
    #[arg(short, long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct Answer<'a> {
    ip: IpAddr,
    public: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_country: Option<CountryCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_org: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_country_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

pub fn run(args: &LookupArgs) -> Result<u8, Failure> {
    let addresses = args
        .addresses
        .iter()
        .map(|a| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| Failure::Usage(format!("{a:?} is not an IPv4 or IPv6 address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut resolver = args.geoip.open()?;
    if let Some(path) = &args.policy {
        let policy = PolicyArgs {
            policy: Some(path.clone()),
            ..PolicyArgs::default()
        }
        .load()?;
        resolver.set_overrides(policy.overrides().to_vec());
    }
    let mut out = io::stdout().lock();
    for ip in addresses {
        let info = resolver.lookup(ip);
        let dbs = resolver.databases();
        let name = |i: Option<u16>| {
            i.and_then(|i| dbs.get(usize::from(i)))
                .map(|d| d.name.as_str())
        };
        let answer = Answer {
            ip,
            public: geoip::is_public(ip),
            country: info.country,
            registered_country: info.registered_country,
            asn: info.asn,
            as_org: info.as_org.as_deref(),
            country_source: name(info.country_source),
            asn_source: name(info.asn_source),
            registered_country_source: name(info.registered_country_source),
            label: info.label.as_deref(),
        };
        let line = serde_json::to_string(&answer).map_err(|e| Failure::Usage(e.to_string()))?;
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}
