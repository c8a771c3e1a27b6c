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
use crate::names::AppProto;

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
    /// The remote's operator (ASN or organisation) is in one of these groups.
    pub operators: Option<OperatorCond>,
    /// The remote's operator is known and in none of these groups.
    pub not_operators: Option<OperatorCond>,
    pub cidrs: Vec<IpNet>,
    pub not_cidrs: Vec<IpNet>,
    pub transports: Vec<Transport>,
    /// Inclusive ranges.
    pub ports: Vec<(u16, u16)>,
    /// Inclusive ranges.
    pub not_ports: Vec<(u16, u16)>,
    pub domains: Vec<DomainPattern>,
    pub not_domains: Vec<DomainPattern>,
    pub unknown_domain: Option<bool>,
    /// `Some(true)`: payload seen unencrypted; `Some(false)`: payload seen encrypted.
    pub plaintext: Option<bool>,
    /// Matches when the device sent more than this many bytes.
    pub bytes_out_over: Option<u64>,
    /// Matches when the device's run total to the remote's country is above this.
    pub country_bytes_out_over: Option<u64>,
    /// Matches when the device's run total to the remote's name is above this.
    pub name_bytes_out_over: Option<u64>,
    /// `Some(true)`: no DNS answer named the remote; `Some(false)`: one did.
    pub hardcoded: Option<bool>,
    /// `Some(true)`: the flow carries the device's DNS queries; `Some(false)`: it does not.
    pub resolver: Option<bool>,
    /// The flow is a resolver flow of one of these kinds (sorted).
    pub resolver_kinds: Vec<crate::resolvers::ResolverKind>,
    // --- re-routing: tunnels, proxies, redirects ---
    /// `Some(true)`: the flow went through a tunnel, proxy or redirect; `Some(false)`: it did not.
    pub via: Option<bool>,
    /// The hop's kind is one of these (`gre`, `socks5`, `redirect`, …).
    pub via_kinds: Vec<&'static str>,
    /// The hop's country is in this set.
    pub via_countries: Option<CountryCond>,
    /// The hop's country is known and not in this set.
    pub not_via_countries: Option<CountryCond>,
    /// The flow's protocol is known and in this set.
    pub app_protos: Option<ProtoSet>,
    /// The flow's protocol is known and not in this set.
    pub not_app_protos: Option<ProtoSet>,
}

/// A set of [`AppProto`]s, one bit each ([`AppProto::bit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoSet(pub u32);

impl ProtoSet {
    pub fn contains(self, p: AppProto) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: AppProto) {
        self.0 |= p.bit();
    }
}

/// A `domains` entry: an exact name, or with `wildcard` the proper subdomains of `name`
/// (`*.qq.com` → `wildcard`, `name = "qq.com"`). `name` is ASCII, lower-case, without a final dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPattern {
    pub name: String,
    pub wildcard: bool,
}

impl DomainPattern {
    /// Whether `host` (either case, one final dot ignored) is this name or, for a wildcard, one
    /// of its proper subdomains.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).as_bytes();
        let name = self.name.as_bytes();
        if !self.wildcard {
            return host.eq_ignore_ascii_case(name);
        }
        // At least one character and a dot before the suffix.
        let Some(dot) = host.len().checked_sub(name.len() + 1).filter(|&d| d > 0) else {
            return false;
        };
        host.get(dot) == Some(&b'.')
            && host
                .get(dot + 1..)
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case(name))
    }
}

/// An organisation-name pattern: `*` stands for any run of characters (also none); everything
/// else matches itself, ignoring ASCII case. Stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgPattern(pub String);

impl OrgPattern {
    /// Whether `name` matches the whole pattern. Greedy matching with one backtrack point per
    /// `*`: linear in practice, never allocates.
    pub fn matches(&self, name: &str) -> bool {
        let (p, n) = (self.0.as_bytes(), name.as_bytes());
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ni));
                    pi += 1;
                }
                Some(&c) if n.get(ni).is_some_and(|b| b.eq_ignore_ascii_case(&c)) => {
                    pi += 1;
                    ni += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        pi = sp + 1;
                        ni = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
    }
}

/// An `operators` or `not_operators` condition: the union of the named groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorCond {
    /// The group names as written, for generated reasons.
    pub names: Vec<String>,
    /// Sorted, without duplicates.
    pub asns: Vec<u32>,
    pub orgs: Vec<OrgPattern>,
}

impl OperatorCond {
    /// Whether the remote's ASN is listed or its organisation matches a pattern.
    pub fn contains(&self, asn: Option<u32>, org: Option<&str>) -> bool {
        asn.is_some_and(|a| self.asns.binary_search(&a).is_ok())
            || org.is_some_and(|o| self.orgs.iter().any(|p| p.matches(o)))
    }
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

/// Whether any of the names matches any pattern.
fn any_name(patterns: &[DomainPattern], names: &[Option<&str>; 2]) -> bool {
    names
        .iter()
        .flatten()
        .any(|n| patterns.iter().any(|p| p.matches(n)))
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
        let unknown_country = s.country.is_none()
            && (is_public(s.remote_ip) || (s.via_kind.is_some() && s.remote_ip.is_unspecified()));
        // The remote's names; an empty name is no name.
        let names = [s.hostname, s.queried_name].map(|n| n.filter(|n| !n.is_empty()));
        let named = names.iter().any(Option::is_some);
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
            && self
                .operators
                .as_ref()
                .is_none_or(|c| c.contains(s.asn, s.as_org))
            && self.not_operators.as_ref().is_none_or(|c| {
                (s.asn.is_some() || s.as_org.is_some()) && !c.contains(s.asn, s.as_org)
            })
            && (self.cidrs.is_empty() || in_nets(&self.cidrs, s.remote_ip))
            && !in_nets(&self.not_cidrs, s.remote_ip)
            && (self.transports.is_empty() || self.transports.contains(&s.transport))
            && on_known(list(&self.ports), port, in_ranges)
            && on_known(list(&self.not_ports), port, |l, p| !in_ranges(l, p))
            && (self.domains.is_empty() || any_name(&self.domains, &names))
            && (self.not_domains.is_empty() || (named && !any_name(&self.not_domains, &names)))
            && self.unknown_domain.is_none_or(|want| want != named)
            && on_known(self.plaintext.as_ref(), s.encrypted, |want, enc| {
                *want != enc
            })
            && self.bytes_out_over.is_none_or(|n| s.bytes_out > n)
            && self
                .country_bytes_out_over
                .is_none_or(|n| s.country.is_some() && s.country_bytes_out > n)
            && self
                .name_bytes_out_over
                .is_none_or(|n| s.hostname.is_some() && s.name_bytes_out > n)
            && on_known(self.hardcoded.as_ref(), s.dns_named, |want, named| {
                *want != named
            })
            && on_known(self.app_protos.as_ref(), s.app_proto, |set, p| {
                set.contains(p)
            })
            && on_known(self.not_app_protos.as_ref(), s.app_proto, |set, p| {
                !set.contains(p)
            })
            && self.matches_via(s)
            && super::resolvers::matches(self, s)
    }

    /// The re-routing conditions: `via`, `via_kinds`, `via_countries`, `not_via_countries`.
    fn matches_via(&self, s: &Subject<'_>) -> bool {
        self.via.is_none_or(|want| want == s.via_kind.is_some())
            && (self.via_kinds.is_empty()
                || s.via_kind.is_some_and(|k| self.via_kinds.contains(&k)))
            && on_known(self.via_countries.as_ref(), s.via_country, |c, code| {
                c.set.contains(code)
            })
            && on_known(self.not_via_countries.as_ref(), s.via_country, |c, code| {
                !c.set.contains(code)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::OrgPattern;

    #[test]
    fn org_patterns_match_whole_names_ignoring_ascii_case() {
        let p = |pattern: &str, name: &str| OrgPattern(pattern.to_owned()).matches(name);
        assert!(p("*alibaba*", "Hangzhou ALIBABA Advertising"));
        assert!(p("tencent*", "Tencent"));
        assert!(!p("tencent*", "Shenzhen Tencent"));
        assert!(p("*ltd.", "Alibaba (US) Technology Co., Ltd."));
        assert!(!p("*ltd", "Alibaba (US) Technology Co., Ltd."));
        assert!(p("a*b*c", "axxbyyc"));
        assert!(!p("a*b*c", "axxbyy"));
        assert!(p("a**", "a"));
        assert!(p("exact", "EXACT"));
        assert!(!p("exact", "exactly"));
        assert!(!p("x*", ""));
        assert!(p("*é*", "Café"));
    }
}
