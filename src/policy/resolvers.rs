//! The `[resolvers]` section and the rule conditions on resolver flows.
//!
//! `[resolvers]` says which DNS resolvers devices may use (`allowed`: addresses, CIDRs or
//! names), whether a resolver outside the home countries is flagged (`foreign`), how severe
//! those built-in alerts are (`severity`), and which further names are DoH resolvers
//! (`doh_names`). `--resolver` adds to `allowed`. Rules may test `resolver = true|false` and
//! `resolver_kinds = ["doh", ...]`. What a resolver flow is: see `crate::resolvers`.

use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;

use super::compile::{Src, parse_domain, parse_net};
use super::matcher::{Conditions, DomainPattern};
use super::model::{RawResolvers, RawRule, SpannedList};
use super::{Policy, PolicyError, Severity, Subject};
use crate::geoip::CountryCode;
use crate::resolvers::{ResolverKind, is_builtin_doh_name};

/// Id of the built-in alert on a resolver that `[resolvers] allowed` (or `--resolver`) does not
/// name. File rules may not use this id.
pub const RESOLVER_NOT_ALLOWED: &str = "resolver-not-allowed";

/// Id of the built-in alert on a resolver in a known country outside the home set
/// (`[resolvers] foreign = true`). File rules may not use this id.
pub const RESOLVER_FOREIGN: &str = "resolver-foreign";

/// The severity of both built-in resolver alerts when `[resolvers] severity` is not set.
pub const RESOLVER_SEVERITY_DEFAULT: Severity = Severity::High;

/// The compiled `[resolvers]` section.
#[derive(Clone, Debug)]
pub struct ResolverPolicy {
    /// Allowed resolver addresses and networks (`allowed`, `--resolver`).
    pub allowed_nets: Vec<IpNet>,
    /// Allowed resolver names, matched against the resolver flow's hostname.
    allowed_names: Vec<DomainPattern>,
    /// Flag resolvers in a known country outside the home set.
    pub foreign: bool,
    pub severity: Severity,
    /// DoH resolver names besides the built-in list.
    doh_names: Vec<DomainPattern>,
}

impl Default for ResolverPolicy {
    fn default() -> ResolverPolicy {
        ResolverPolicy {
            allowed_nets: Vec::new(),
            allowed_names: Vec::new(),
            foreign: false,
            severity: RESOLVER_SEVERITY_DEFAULT,
            doh_names: Vec::new(),
        }
    }
}

impl ResolverPolicy {
    /// Whether an allow list is set (by the file or `--resolver`).
    pub fn has_allow_list(&self) -> bool {
        !(self.allowed_nets.is_empty() && self.allowed_names.is_empty())
    }

    /// Whether the allow list names this resolver (by address, or by the flow's hostname).
    pub fn allows(&self, ip: IpAddr, hostname: Option<&str>) -> bool {
        self.allowed_nets.iter().any(|n| n.contains(&ip))
            || hostname.is_some_and(|h| self.allowed_names.iter().any(|p| p.matches(h)))
    }

    /// Whether the allow list has names, which a flow's hostname may still match once known.
    pub fn allows_by_name(&self) -> bool {
        !self.allowed_names.is_empty()
    }

    /// Whether `host` is a DoH resolver name: built in (`crate::resolvers::DOH_NAMES`) or in
    /// `doh_names`.
    pub fn is_doh_name(&self, host: &str) -> bool {
        is_builtin_doh_name(host) || self.doh_names.iter().any(|p| p.matches(host))
    }
}

/// What the built-in resolver checks say about one resolver flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolverVerdict {
    /// [`RESOLVER_NOT_ALLOWED`] or [`RESOLVER_FOREIGN`].
    pub id: &'static str,
    pub severity: Severity,
}

impl Policy {
    /// The `[resolvers]` section (with `--resolver`).
    pub fn resolvers(&self) -> &ResolverPolicy {
        &self.resolvers
    }

    /// The built-in alert a resolver flow raises, if any: [`RESOLVER_NOT_ALLOWED`] when an
    /// allow list is set and does not name the resolver, else [`RESOLVER_FOREIGN`] when
    /// `foreign = true` and the resolver is in a known country outside the home set.
    pub fn resolver_verdict(
        &self,
        ip: IpAddr,
        hostname: Option<&str>,
        country: Option<CountryCode>,
    ) -> Option<ResolverVerdict> {
        let r = &self.resolvers;
        let allowed = r.allows(ip, hostname);
        let id = if r.has_allow_list() && !allowed {
            RESOLVER_NOT_ALLOWED
        } else if r.foreign && !allowed && country.is_some_and(|c| !self.is_home(c)) {
            RESOLVER_FOREIGN
        } else {
            return None;
        };
        Some(ResolverVerdict {
            id,
            severity: r.severity,
        })
    }

    /// Adds `--resolver` items to the allow list: addresses, CIDRs or names. Errors name the
    /// option and the item's 1-based position.
    pub(super) fn add_cli_resolvers(&mut self, items: &[String]) -> Result<(), PolicyError> {
        for (i, item) in items.iter().enumerate() {
            match allowed_entry(item.trim()) {
                Ok(Entry::Net(n)) => self.resolvers.allowed_nets.push(n),
                Ok(Entry::Name(p)) => self.resolvers.allowed_names.push(p),
                Err(m) => return Err(super::compile::cli_error("--resolver", i, m)),
            }
        }
        Ok(())
    }
}

enum Entry {
    Net(IpNet),
    Name(DomainPattern),
}

/// An `allowed` entry: an address or CIDR, else a name (or `*.name`).
fn allowed_entry(text: &str) -> Result<Entry, String> {
    let looks_like_address = text.contains(':')
        || text.contains('/')
        || text.chars().all(|c| c.is_ascii_digit() || c == '.');
    if looks_like_address {
        return parse_net(text).map(Entry::Net);
    }
    parse_domain(text).map(Entry::Name).map_err(|m| {
        format!("{m}; an allowed resolver is an address (\"198.18.0.53\"), a CIDR (\"10.0.0.0/8\") or a name (\"dns.lab.example\")")
    })
}

fn nonempty<T>(src: &Src<'_>, key: &str, list: &Spanned<Vec<T>>) -> Result<(), PolicyError> {
    if list.get_ref().is_empty() {
        return Err(src.err(
            list.span(),
            format!("{key} is an empty list: add entries or remove the key"),
        ));
    }
    Ok(())
}

/// Compiles `[resolvers]`; `home_empty` says whether the home set (file and `--home`) is empty.
pub(super) fn compile_section(
    src: &Src<'_>,
    raw: Option<&Spanned<RawResolvers>>,
    home_empty: bool,
) -> Result<ResolverPolicy, PolicyError> {
    let mut out = ResolverPolicy::default();
    let Some(raw) = raw else {
        return Ok(out);
    };
    let r = raw.get_ref();
    if let Some(list) = &r.allowed {
        nonempty(src, "[resolvers] allowed", list)?;
        for item in list.get_ref() {
            match allowed_entry(item.get_ref()) {
                Ok(Entry::Net(n)) => out.allowed_nets.push(n),
                Ok(Entry::Name(p)) => out.allowed_names.push(p),
                Err(m) => return Err(src.err(item.span(), m)),
            }
        }
    }
    if let Some(f) = &r.foreign {
        out.foreign = *f.get_ref();
        if out.foreign && home_empty {
            return Err(src.err(
                f.span(),
                "[resolvers] foreign = true needs a home set, outside which a resolver is foreign: set home = [\"BE\"] at the top of the policy or pass --home BE",
            ));
        }
    }
    if let Some(s) = &r.severity {
        out.severity = s
            .get_ref()
            .parse::<Severity>()
            .map_err(|m| src.err(s.span(), m))?;
        if r.allowed.is_none() && !out.foreign {
            return Err(src.err(
                s.span(),
                "[resolvers] severity has no effect without allowed or foreign = true: add one of them or remove it",
            ));
        }
    }
    if let Some(list) = &r.doh_names {
        nonempty(src, "[resolvers] doh_names", list)?;
        for item in list.get_ref() {
            out.doh_names
                .push(parse_domain(item.get_ref()).map_err(|m| src.err(item.span(), m))?);
        }
    }
    Ok(out)
}

/// Compiles a rule's `resolver` and `resolver_kinds`, and refuses the built-in alert ids.
pub(super) fn rule_conditions(
    src: &Src<'_>,
    r: &RawRule,
    c: &mut Conditions,
) -> Result<(), PolicyError> {
    if let Some(id) = &r.id
        && [RESOLVER_NOT_ALLOWED, RESOLVER_FOREIGN].contains(&id.get_ref().as_str())
    {
        return Err(src.err(
            id.span(),
            format!(
                "rule id {:?} is a built-in resolver alert's: rename this rule; the built-in alerts are set in [resolvers]",
                id.get_ref()
            ),
        ));
    }
    c.resolver = r.resolver.as_ref().map(|b| *b.get_ref());
    if let Some(list) = &r.resolver_kinds {
        if let Some(b) = &r.resolver
            && !*b.get_ref()
        {
            return Err(src.err(
                list.span(),
                "resolver_kinds cannot be combined with resolver = false (a flow that is not a resolver flow has no kind): remove one of the two",
            ));
        }
        nonempty(src, "resolver_kinds", list)?;
        c.resolver_kinds = kinds(src, list.get_ref())?;
    }
    Ok(())
}

fn kinds(src: &Src<'_>, list: &SpannedList) -> Result<Vec<ResolverKind>, PolicyError> {
    let mut out = Vec::new();
    for item in list {
        let k = ResolverKind::parse(item.get_ref()).ok_or_else(|| {
            src.err(
                item.span(),
                format!(
                    "unknown resolver kind {:?}: use dns, dot, doh or doq",
                    item.get_ref()
                ),
            )
        })?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether the resolver conditions of `c` hold for `s`.
pub(super) fn matches(c: &Conditions, s: &Subject<'_>) -> bool {
    c.resolver.is_none_or(|want| s.resolver.is_some() == want)
        && (c.resolver_kinds.is_empty()
            || s.resolver.is_some_and(|k| c.resolver_kinds.contains(&k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CliRules;

    fn load(text: &str) -> Policy {
        Policy::from_toml(text, "p.toml").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn err(text: &str) -> String {
        let e = Policy::from_toml(text, "p.toml").expect_err("must not load");
        format!("{}:{}:{}: {}", e.file, e.line, e.column, e.message)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cc(s: &str) -> Option<CountryCode> {
        CountryCode::new(s)
    }

    #[test]
    fn allowed_addresses_networks_and_names() {
        let p = load(
            "[resolvers]\nallowed = [\"198.18.0.53\", \"10.0.0.0/8\", \"2001:db8::53\", \"dns.lab.example\", \"*.corp.example\"]\n",
        );
        let r = p.resolvers();
        assert!(r.has_allow_list() && r.allows_by_name());
        assert!(r.allows(ip("198.18.0.53"), None));
        assert!(r.allows(ip("10.9.8.7"), None));
        assert!(r.allows(ip("2001:db8::53"), None));
        assert!(r.allows(ip("8.8.8.8"), Some("DNS.lab.example")));
        assert!(r.allows(ip("8.8.8.8"), Some("doh.corp.example")));
        assert!(!r.allows(ip("8.8.8.8"), Some("dns.google")));
        assert!(!r.allows(ip("198.18.0.54"), None));
        assert_eq!(p.resolver_verdict(ip("198.18.0.53"), None, None), None);
        assert_eq!(
            p.resolver_verdict(ip("8.8.8.8"), None, cc("US")),
            Some(ResolverVerdict {
                id: RESOLVER_NOT_ALLOWED,
                severity: Severity::High
            })
        );
    }

    #[test]
    fn foreign_needs_home_and_spares_allowed_resolvers() {
        let p = load("home = [\"BE\"]\n[resolvers]\nforeign = true\nseverity = \"medium\"\n");
        assert_eq!(p.resolver_verdict(ip("198.18.4.53"), None, cc("BE")), None);
        assert_eq!(
            p.resolver_verdict(ip("198.18.0.53"), None, None),
            None,
            "no country"
        );
        assert_eq!(
            p.resolver_verdict(ip("8.8.8.8"), None, cc("US")),
            Some(ResolverVerdict {
                id: RESOLVER_FOREIGN,
                severity: Severity::Medium
            })
        );
        let cli = CliRules {
            resolvers: vec!["8.8.8.8".to_owned()],
            ..CliRules::default()
        };
        let p = p.with_cli(&cli).unwrap();
        assert_eq!(p.resolver_verdict(ip("8.8.8.8"), None, cc("US")), None);
        assert_eq!(
            p.resolver_verdict(ip("9.9.9.9"), None, cc("US"))
                .map(|v| v.id),
            Some(RESOLVER_NOT_ALLOWED),
            "with an allow list, the others are not allowed"
        );
        assert_eq!(
            err("[resolvers]\nforeign = true\n"),
            "p.toml:2:11: [resolvers] foreign = true needs a home set, outside which a resolver is foreign: set home = [\"BE\"] at the top of the policy or pass --home BE"
        );
        let home = CliRules {
            home: vec!["BE".to_owned()],
            ..CliRules::default()
        };
        assert!(
            Policy::from_toml_with_cli("[resolvers]\nforeign = true\n", "p.toml", &home).is_ok()
        );
    }

    #[test]
    fn no_section_no_verdict() {
        let p = load("home = [\"BE\"]\n");
        assert!(!p.resolvers().has_allow_list());
        assert_eq!(p.resolver_verdict(ip("8.8.8.8"), None, cc("US")), None);
        assert!(p.resolvers().is_doh_name("dns.google"));
        assert!(!p.resolvers().is_doh_name("doh.lab.example"));
        let p = load("[resolvers]\ndoh_names = [\"doh.lab.example\", \"*.doh.corp.example\"]\n");
        assert!(p.resolvers().is_doh_name("doh.lab.example"));
        assert!(p.resolvers().is_doh_name("a.doh.corp.example"));
        assert!(p.resolvers().is_doh_name("dns.google"));
    }

    #[test]
    fn section_errors_name_line_and_column() {
        assert_eq!(
            err("[resolvers]\nallowed = []\n"),
            "p.toml:2:11: [resolvers] allowed is an empty list: add entries or remove the key"
        );
        assert_eq!(
            err("[resolvers]\nallowed = [\"198.18.0.0/15\", \"198.18.0.1/15\"]\n"),
            "p.toml:2:29: CIDR \"198.18.0.1/15\" has host bits set: did you mean \"198.18.0.0/15\"?"
        );
        assert!(
            err("[resolvers]\nallowed = [\"999.1.1.1\"]\n")
                .starts_with("p.toml:2:12: invalid IP address or CIDR \"999.1.1.1\"")
        );
        assert!(
            err("[resolvers]\nallowed = [\"bad name!\"]\n").starts_with("p.toml:2:12: "),
            "{}",
            err("[resolvers]\nallowed = [\"bad name!\"]\n")
        );
        assert_eq!(
            err("[resolvers]\nseverity = \"loud\"\nallowed = [\"198.18.0.53\"]\n"),
            "p.toml:2:12: unknown severity \"loud\": use info, low, medium, high or critical"
        );
        assert_eq!(
            err("[resolvers]\nseverity = \"low\"\n"),
            "p.toml:2:12: [resolvers] severity has no effect without allowed or foreign = true: add one of them or remove it"
        );
        assert!(err("[resolvers]\nalowed = [\"198.18.0.53\"]\n").starts_with("p.toml:2:1: "));
        assert_eq!(
            err("[resolvers]\ndoh_names = [\"1.1.1.1\"]\n"),
            "p.toml:2:14: \"1.1.1.1\" is an IP address, not a name: match addresses with cidrs = [\"1.1.1.1\"]"
        );
    }

    #[test]
    fn cli_resolver_items() {
        let cli = |items: &[&str]| CliRules {
            resolvers: items.iter().map(|s| (*s).to_owned()).collect(),
            ..CliRules::default()
        };
        let p = Policy::empty()
            .with_cli(&cli(&["198.18.0.53", "dns.lab.example"]))
            .unwrap();
        assert!(p.resolvers().allows(ip("198.18.0.53"), None));
        assert!(p.resolvers().allows(ip("1.1.1.1"), Some("dns.lab.example")));
        let e = Policy::empty()
            .with_cli(&cli(&["198.18.0.53", "198.18.0.1/15"]))
            .unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column), ("--resolver", 1, 2));
        assert!(e.message.contains("host bits"), "{}", e.message);
    }

    fn subject(resolver: Option<ResolverKind>) -> Subject<'static> {
        Subject {
            remote_ip: ip("198.18.3.53"),
            remote_port: Some(853),
            resolver,
            ..crate::policy::tests::flow()
        }
    }

    #[test]
    fn rule_conditions_on_resolver_flows() {
        let p = load(
            "[[rules]]\nid = \"encrypted-dns\"\nresolver_kinds = [\"DoH\", \"dot\", \"doh\"]\n\n[[rules]]\nid = \"any-dns\"\nresolver = true\n\n[[rules]]\nid = \"other\"\nresolver = false\n",
        );
        let decide = |k| {
            p.evaluate(&subject(k))
                .and_then(|i| p.rules().get(i))
                .map(|r| r.id.as_str())
        };
        assert_eq!(decide(Some(ResolverKind::Doh)), Some("encrypted-dns"));
        assert_eq!(decide(Some(ResolverKind::Dot)), Some("encrypted-dns"));
        assert_eq!(decide(Some(ResolverKind::Dns)), Some("any-dns"));
        assert_eq!(decide(Some(ResolverKind::Doq)), Some("any-dns"));
        assert_eq!(decide(None), Some("other"));
    }

    #[test]
    fn rule_condition_errors() {
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nresolver_kinds = [\"dnscrypt\"]\n"),
            "p.toml:3:19: unknown resolver kind \"dnscrypt\": use dns, dot, doh or doq"
        );
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nresolver_kinds = []\n"),
            "p.toml:3:18: resolver_kinds is an empty list: add entries or remove the key"
        );
        assert_eq!(
            err("[[rules]]\nid = \"x\"\nresolver = false\nresolver_kinds = [\"doh\"]\n"),
            "p.toml:4:18: resolver_kinds cannot be combined with resolver = false (a flow that is not a resolver flow has no kind): remove one of the two"
        );
        assert_eq!(
            err("[[rules]]\nid = \"resolver-foreign\"\n"),
            "p.toml:2:6: rule id \"resolver-foreign\" is a built-in resolver alert's: rename this rule; the built-in alerts are set in [resolvers]"
        );
        assert!(err("[[rules]]\nid = \"x\"\nresolver = \"yes\"\n").starts_with("p.toml:3:12: "));
    }
}
