//! Compiled rule conditions and their evaluation against one flow.
//!
//! Everything here is built once at load time; [`Conditions::matches`] only reads, compares and
//! tests bits, and never allocates.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Subject;
use super::countries::CountrySet;
use crate::decode::Transport;
use crate::geoip::is_public;

/// A country condition: the codes it names, and whether it named `home` (so that adding home
/// countries later, from `--home`, extends it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountryCond {
    pub set: CountrySet,
    pub uses_home: bool,
}

/// Every condition of one rule. An empty list means "no condition" (the loader refuses empty
/// lists in the file, so a written condition is never empty).
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    pub profiles: Vec<String>,
    pub countries: Option<CountryCond>,
    pub not_countries: Option<CountryCond>,
    pub unknown_country: Option<bool>,
    /// Sorted, without duplicates.
    pub asns: Vec<u32>,
    /// Sorted, without duplicates.
    pub not_asns: Vec<u32>,
    pub cidrs: Vec<IpNet>,
    pub not_cidrs: Vec<IpNet>,
    pub transports: Vec<Transport>,
    /// Inclusive ranges.
    pub ports: Vec<(u16, u16)>,
    /// Inclusive ranges.
    pub not_ports: Vec<(u16, u16)>,
}

fn in_ranges(ranges: &[(u16, u16)], port: u16) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port))
}

fn in_nets(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// A condition on an optional fact: absent condition holds; a present one needs the fact.
fn on_known<C: ?Sized, T: Copy>(
    cond: Option<&C>,
    fact: Option<T>,
    test: impl Fn(&C, T) -> bool,
) -> bool {
    match (cond, fact) {
        (None, _) => true,
        (Some(c), Some(f)) => test(c, f),
        (Some(_), None) => false,
    }
}

/// A list condition: an empty list is no condition.
fn list<C>(cond: &[C]) -> Option<&[C]> {
    (!cond.is_empty()).then_some(cond)
}

impl Conditions {
    /// Whether every condition holds for `s`, a flow of a device with profile `profile`.
    pub fn matches(&self, s: &Subject<'_>, profile: &str) -> bool {
        let port = s.remote_port.filter(|_| s.transport.has_ports());
        // "Unknown" means public but without a record: private remotes never have a country.
        let unknown_country = s.country.is_none() && is_public(s.remote_ip);
        (self.profiles.is_empty() || self.profiles.iter().any(|p| p == profile))
            && on_known(self.countries.as_ref(), s.country, |c, code| {
                c.set.contains(code)
            })
            && on_known(self.not_countries.as_ref(), s.country, |c, code| {
                !c.set.contains(code)
            })
            && self.unknown_country.is_none_or(|want| {
                if want {
                    unknown_country
                } else {
                    s.country.is_some()
                }
            })
            && on_known(list(&self.asns), s.asn, |l, a| l.binary_search(&a).is_ok())
            && on_known(list(&self.not_asns), s.asn, |l, a| {
                l.binary_search(&a).is_err()
            })
            && (self.cidrs.is_empty() || in_nets(&self.cidrs, s.remote_ip))
            && !in_nets(&self.not_cidrs, s.remote_ip)
            && (self.transports.is_empty() || self.transports.contains(&s.transport))
            && on_known(list(&self.ports), port, in_ranges)
            && on_known(list(&self.not_ports), port, |l, p| !in_ranges(l, p))
    }
}
