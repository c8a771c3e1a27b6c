//! Validation: the file as written ([`super::model`]) → the runtime [`Policy`].
//!
//! Every check reports the first problem found, at the line and column of the offending value,
//! with a message that says how to fix it. Nothing is silently corrected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;
use toml::Spanned;

use super::countries::{self, CountrySet, EEA_EXTRA, EU};
use super::matcher::{Conditions, CountryCond, DomainPattern, OperatorCond, OrgPattern, ProtoSet};
use super::model::{
    IntOrStr, RawDevice, RawOperator, RawOperatorsFile, RawOverride, RawPolicy, RawRule,
    SpannedList,
};
use super::template::Template;
use super::{
    Action, DEDUP_WINDOW_DEFAULT_NS, DEDUP_WINDOW_MAX_NS, DEFAULT_PROFILE, DENY_OPERATORS_RULE,
    Device, DeviceSelector, INCLUDE_OPERATORS_MAX, NAME_MAX_CHARS, OperatorGroup,
    PLAINTEXT_FOREIGN_RULE, PLAINTEXT_FOREIGN_SEVERITY_DEFAULT, POLICY_MAX_BYTES, Policy,
    PolicyError, Rule, Severity,
};
use crate::decode::{Mac, Transport};
use crate::geoip::GeoOverride;
use crate::names::AppProto;

/// How deep custom groups may include one another.
pub const GROUP_NESTING_MAX: usize = 64;

/// The only policy format version this build reads.
const FORMAT_VERSION: i64 = 1;

/// Rule ids starting with this are reserved for rules made from command-line options.
const CLI_RULE_PREFIX: &str = "cli-";

/// The policy text and the name to report it under.
pub struct Src<'a> {
    pub text: &'a str,
    pub file: &'a str,
}

impl Src<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        let before = self.text.get(..end).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .count()
            + 1;
        (line, column)
    }

    /// An error at the start of `span`.
    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = self.position(span.start);
        PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> PolicyError {
        self.err(value.span(), message)
    }

    /// An error about the file as a whole (line 0, column 0).
    pub fn whole(&self, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.to_owned(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

/// What a country item names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The home set, whatever it is when the policy is used.
    Home,
    Set(CountrySet),
}

/// Custom groups, resolved to sets; names compare ignoring ASCII case.
#[derive(Clone, Debug, Default)]
pub struct Groups(Vec<(String, CountrySet)>);

impl Groups {
    fn get(&self, name: &str) -> Option<&CountrySet> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, s)| s)
    }
}

/// The message for `"home"` used while the home set is empty.
pub const HOME_EMPTY: &str = "\"home\" names the home country set, which is empty: set home = [\"BE\"] at the top of the policy or pass --home BE";

/// The message for a name that is no country code and no group.
pub fn unknown_item(text: &str) -> String {
    let two_letters = text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic());
    if two_letters {
        return match countries::suggest_code(text) {
            Some(code) => format!("unknown country {text:?}, did you mean {code:?}?"),
            None => format!(
                "unknown country {text:?}: use an ISO 3166-1 alpha-2 code (see https://www.iso.org/obp/ui/#search/code/) or a group"
            ),
        };
    }
    if let Some(code) = countries::code_for_name(text) {
        return format!(
            "unknown country {text:?}, did you mean {code:?}? (countries are ISO 3166-1 alpha-2 codes)"
        );
    }
    format!(
        "unknown group {text:?}: define it under [groups], or use EU, EEA, home or an ISO 3166-1 alpha-2 country code"
    )
}

/// Resolves a country code or group name (either case).
pub fn resolve_item(text: &str, groups: &Groups) -> Result<Resolved, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("home") {
        return Ok(Resolved::Home);
    }
    if text.eq_ignore_ascii_case("EU") {
        return Ok(Resolved::Set(countries::set_of(EU)));
    }
    if text.eq_ignore_ascii_case("EEA") {
        let mut set = countries::set_of(EU);
        set.union_with(&countries::set_of(EEA_EXTRA));
        return Ok(Resolved::Set(set));
    }
    if let Some(set) = groups.get(text) {
        return Ok(Resolved::Set(*set));
    }
    if let Some(code) = countries::assigned(text) {
        let mut set = CountrySet::EMPTY;
        set.insert(code);
        return Ok(Resolved::Set(set));
    }
    Err(unknown_item(text))
}

/// Checks a name used as a rule id, group name or profile: letters, digits, `-`, `_`, `.`.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} is empty: give it a name"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!(
            "{kind} {name:?} is longer than {NAME_MAX_CHARS} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{kind} {name:?} contains {bad:?}: use only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Parses a network: `a.b.c.d/n`, `x::/n`, or a bare address (a single host). Host bits must be
/// zero, so that a typo in the prefix is caught rather than silently widened.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    if text.contains('/') {
        let net = IpNet::from_str(text).map_err(|_| {
            format!(
                "invalid CIDR {text:?}: write an address and a prefix length, such as \"192.0.2.0/24\" or \"2001:db8::/32\""
            )
        })?;
        if net.trunc() != net {
            return Err(format!(
                "CIDR {text:?} has host bits set: did you mean \"{}\"?",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    IpAddr::from_str(text).map(IpNet::from).map_err(|_| {
        format!(
            "invalid IP address or CIDR {text:?}: write \"192.0.2.7\", \"192.0.2.0/24\" or \"2001:db8::/32\""
        )
    })
}

/// Parses `dedup_window`: an integer of seconds, or a number with unit `ms`, `s`, `m` or `h`.
fn parse_duration_ns(value: &IntOrStr) -> Result<i64, String> {
    const HELP: &str = "use a number with a unit, such as \"500ms\", \"60s\", \"5m\" or \"1h\", or an integer number of seconds";
    const NS_PER_MS: i64 = 1_000_000;
    const NS_PER_S: i64 = 1_000_000_000;
    let ns = match value {
        IntOrStr::Int(secs) if *secs < 0 => {
            return Err(format!("dedup_window {secs} is negative: {HELP}"));
        }
        IntOrStr::Int(secs) => secs.checked_mul(NS_PER_S),
        IntOrStr::Str(text) => {
            let t = text.trim();
            let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (number, unit) = t.split_at(digits_end);
            let scale = match unit.trim() {
                "ms" => NS_PER_MS,
                "s" | "" => NS_PER_S,
                "m" => 60 * NS_PER_S,
                "h" => 3600 * NS_PER_S,
                _ => return Err(format!("invalid duration {text:?}: {HELP}")),
            };
            let n: i64 = number
                .parse()
                .map_err(|_| format!("invalid duration {text:?}: {HELP}"))?;
            n.checked_mul(scale)
        }
    };
    match ns {
        Some(ns) if ns <= DEDUP_WINDOW_MAX_NS => Ok(ns),
        _ => Err(format!(
            "dedup_window is too long: the most is {}h",
            DEDUP_WINDOW_MAX_NS / 3_600_000_000_000
        )),
    }
}

/// The longest domain name, in characters, without a final dot (RFC 1035 §2.3.4: 255 octets on
/// the wire, which leaves 253 characters in text form).
const DOMAIN_MAX_CHARS: usize = 253;

/// The longest label of a domain name (RFC 1035 §2.3.4).
const LABEL_MAX_CHARS: usize = 63;

/// Parses a `domains` or `not_domains` entry: a DNS name (`example.com`), or `*.` and a name for
/// its proper subdomains. Either case; letters, digits, `-` (not at either end of a label) and
/// `_`; no final dot; names with other characters must be written in their IDNA (`xn--`) form.
pub fn parse_domain(text: &str) -> Result<DomainPattern, String> {
    const HELP: &str =
        "write a name such as \"example.com\", or \"*.example.com\" for its subdomains";
    if text.is_empty() {
        return Err(format!("empty domain: {HELP}"));
    }
    if text == "*" || text == "*." {
        return Err(format!(
            "{text:?} alone would match every name: write \"*.example.com\" for the subdomains of one name, or use unknown_domain = false to match every flow that has a name"
        ));
    }
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if name.contains('*') {
        return Err(format!(
            "domain {text:?} has a '*' that is not the whole first label: a wildcard is written only as \"*.\" before a name, as in \"*.example.com\""
        ));
    }
    if !name.is_ascii() {
        return Err(format!(
            "domain {text:?} is not ASCII: write its IDNA (punycode) form, which starts with \"xn--\" (\"bücher.example\" is \"xn--bcher-kva.example\")"
        ));
    }
    if IpAddr::from_str(name).is_ok() {
        return Err(format!(
            "{text:?} is an IP address, not a name: match addresses with cidrs = [{name:?}]"
        ));
    }
    if name.ends_with('.') {
        return Err(format!(
            "domain {text:?} ends with a dot: write it without, as {:?}",
            text.trim_end_matches('.')
        ));
    }
    if name.len() > DOMAIN_MAX_CHARS {
        return Err(format!(
            "domain {text:?} is longer than {DOMAIN_MAX_CHARS} characters, the most a DNS name can have"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "domain {text:?} has an empty label (two dots in a row, or a leading dot): {HELP}"
            ));
        }
        if label.len() > LABEL_MAX_CHARS {
            return Err(format!(
                "domain {text:?} has a label longer than {LABEL_MAX_CHARS} characters, the most DNS allows"
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return Err(format!(
                "domain {text:?} contains {bad:?}: use only letters, digits, '-', '_' and dots between labels"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "domain {text:?} has a label that starts or ends with '-', which DNS names may not"
            ));
        }
    }
    Ok(DomainPattern {
        name: name.to_ascii_lowercase(),
        wildcard,
    })
}

/// Parses `bytes_out_over`: an integer number of bytes, or a whole number with a unit: `B`;
/// `kB`, `MB`, `GB`, `TB` (powers of 1000); `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024).
fn parse_bytes(value: &IntOrStr) -> Result<u64, String> {
    const HELP: &str = "use an integer number of bytes, or a whole number with a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), as in \"10MB\" or \"5MiB\"";
    let n = match value {
        IntOrStr::Int(n) => {
            return u64::try_from(*n)
                .map_err(|_| format!("bytes_out_over {n} is negative: {HELP}"));
        }
        IntOrStr::Str(text) => text,
    };
    let t = n.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let unit = unit.trim_start();
    const UNITS: [(&str, u64); 9] = [
        ("B", 1),
        ("kB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("TB", 1_000_000_000_000),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
    ];
    if number.is_empty() {
        return Err(format!("invalid size {n:?}: {HELP}"));
    }
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "size {n:?} is not a whole number: use a smaller unit, as in \"1500kB\" for 1.5 MB"
        ));
    }
    let scale = if unit.is_empty() {
        1
    } else if let Some((_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) {
        *scale
    } else if unit == "KB" || unit.eq_ignore_ascii_case("k") {
        return Err(format!(
            "ambiguous unit {unit:?} in {n:?}: write kB for 1000 bytes or KiB for 1024 bytes"
        ));
    } else if let Some((u, _)) = UNITS.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)) {
        return Err(format!(
            "unknown unit {unit:?} in {n:?}, did you mean {u:?}? Units are case-sensitive: {HELP}"
        ));
    } else {
        return Err(format!("unknown unit {unit:?} in {n:?}: {HELP}"));
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(scale))
        .ok_or_else(|| format!("size {n:?} is too large: the most is {} bytes", u64::MAX))
}

/// Turns toml's error into ours: first line of its message, at its span.
fn syntax_error(src: &Src<'_>, e: &toml::de::Error) -> PolicyError {
    let first = e.message().lines().next().unwrap_or("invalid TOML");
    let message = if let Some(rest) = first.strip_prefix("unknown field ") {
        format!(
            "unknown key {}",
            rest.replacen(", expected one of ", "; the keys allowed here are ", 1)
                .replacen(", expected ", "; the only key allowed here is ", 1)
        )
    } else if first == "duplicate key" {
        let key = e
            .span()
            .and_then(|span| src.text.get(span))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= NAME_MAX_CHARS && !k.contains('\n'));
        match key {
            Some(k) => format!("duplicate key {k}: each key may appear only once in a table"),
            None => "duplicate key: each key may appear only once in a table".to_owned(),
        }
    } else {
        first.replace(
            "expected a sequence",
            "expected a list such as [\"a\", \"b\"]",
        )
    };
    match e.span() {
        Some(span) => src.err(span, message),
        None => PolicyError {
            file: src.file.to_owned(),
            line: 1,
            column: 1,
            message,
        },
    }
}

/// Parses and validates a policy. `cli_home` (from `--home`) joins the home set before rules
/// are checked, so a file may use `home` with the home countries given on the command line.
/// `base` is the folder `include_operators` paths are relative to (the policy file's folder;
/// `None`: the current directory).
pub fn compile(
    src: &Src<'_>,
    source: String,
    cli_home: &[String],
    base: Option<&Path>,
) -> Result<Policy, PolicyError> {
    if src.text.len() > POLICY_MAX_BYTES {
        return Err(src.whole(format!(
            "policy is {} bytes, more than the limit of {POLICY_MAX_BYTES} bytes (1 MiB): split it or remove unused rules",
            src.text.len()
        )));
    }
    let raw: RawPolicy = toml::from_str(src.text).map_err(|e| syntax_error(src, &e))?;

    if let Some(v) = &raw.version
        && *v.get_ref() != FORMAT_VERSION
    {
        return Err(src.at(
            v,
            format!(
                "unsupported policy version {}: this egresswatch reads version {FORMAT_VERSION}",
                v.get_ref()
            ),
        ));
    }
    let groups = resolve_groups(src, &raw.groups)?;

    let mut home = CountrySet::EMPTY;
    for item in raw.home.iter().flatten() {
        match resolve_item(item.get_ref(), &groups) {
            Ok(Resolved::Set(s)) => home.union_with(&s),
            Ok(Resolved::Home) => {
                return Err(src.at(
                    item,
                    "\"home\" cannot be part of the home set: list country codes or groups",
                ));
            }
            Err(m) => return Err(src.at(item, m)),
        }
    }
    add_cli_home(&mut home, cli_home, &groups)?;

    let local_networks = match &raw.local_networks {
        None => super::default_local_networks(),
        Some(list) => list
            .iter()
            .map(|n| parse_net(n.get_ref()).map_err(|m| src.at(n, m)))
            .collect::<Result<_, _>>()?,
    };
    let dedup_window_ns = match &raw.dedup_window {
        None => DEDUP_WINDOW_DEFAULT_NS,
        Some(d) => parse_duration_ns(d.get_ref()).map_err(|m| src.at(d, m))?,
    };
    let plaintext_foreign = raw.plaintext_foreign.as_ref().map(|b| *b.get_ref());
    if let Some(b) = &raw.plaintext_foreign
        && *b.get_ref()
        && home.is_empty()
    {
        return Err(src.at(b, "plaintext_foreign = true needs a home set, outside which unencrypted data is reported: set home = [\"BE\"] at the top of the policy or pass --home BE"));
    }
    let plaintext_foreign_severity = match (&raw.plaintext_foreign_severity, &raw.plaintext_foreign)
    {
        (None, _) => PLAINTEXT_FOREIGN_SEVERITY_DEFAULT,
        (Some(sev), Some(off)) if !*off.get_ref() => {
            let (line, column) = src.position(off.span().start);
            return Err(src.at(
                sev,
                format!("plaintext_foreign_severity has no effect: plaintext_foreign = false (line {line}, column {column}) turns the built-in rule off; remove one of the two"),
            ));
        }
        (Some(sev), _) => Severity::from_str(sev.get_ref()).map_err(|m| src.at(sev, m))?,
    };
    let resolvers =
        super::resolvers::compile_section(src, raw.resolvers.as_ref(), home.is_empty())?;
    let devices = compile_devices(src, &raw.devices)?;
    let overrides = raw
        .geoip_overrides
        .iter()
        .map(|o| compile_override(src, o))
        .collect::<Result<_, _>>()?;

    let mut operators = Operators::default();
    operators.add(src, &raw.operators)?;
    if let Some(list) = &raw.include_operators {
        if list.get_ref().len() > INCLUDE_OPERATORS_MAX {
            return Err(src.at(
                list,
                format!("more than {INCLUDE_OPERATORS_MAX} files in include_operators: merge some"),
            ));
        }
        for item in list.get_ref() {
            include_operators(src, item, base, &mut operators)?;
        }
    }
    let deny_operators = raw
        .deny_operators
        .as_ref()
        .map(|l| operator_cond(src, "deny_operators", l, &operators))
        .transpose()?;

    let mut profiles: Vec<&str> = devices.iter().map(|d| d.profile.as_str()).collect();
    profiles.push(DEFAULT_PROFILE);
    profiles.sort_unstable();
    profiles.dedup();
    let ctx = RuleCtx {
        groups: &groups,
        home,
        profiles: &profiles,
        operators: &operators,
    };
    let mut ids: HashMap<&str, Range<usize>> = HashMap::new();
    let mut rules = Vec::with_capacity(raw.rules.len() + 1);
    if let Some(cond) = deny_operators {
        rules.push(super::deny_operators_rule(cond));
    }
    for r in &raw.rules {
        let rule = compile_rule(src, r, &ctx)?;
        if let Some(id) = &r.get_ref().id {
            if let Some(first) = ids.get(id.get_ref().as_str()) {
                let (line, column) = src.position(first.start);
                return Err(src.at(
                    id,
                    format!(
                        "duplicate rule id {:?}: it is already used at line {line}, column {column}; rule ids must be unique",
                        id.get_ref()
                    ),
                ));
            }
            ids.insert(id.get_ref(), id.span());
        }
        rules.push(rule);
    }

    let mut policy = Policy {
        rules,
        name: raw.name.map(Spanned::into_inner),
        source,
        home,
        home_codes: home.codes(),
        local_networks,
        devices,
        overrides,
        dedup_window_ns,
        groups,
        operators: operators.groups,
        plaintext_foreign: plaintext_foreign != Some(false),
        plaintext_foreign_severity,
        resolvers,
    };
    policy.place_builtin();
    Ok(policy)
}

/// Adds `--home` items to `home`; errors name `--home` and the item's 1-based position.
pub fn add_cli_home(
    home: &mut CountrySet,
    items: &[String],
    groups: &Groups,
) -> Result<(), PolicyError> {
    for (i, item) in items.iter().enumerate() {
        match resolve_item(item, groups) {
            Ok(Resolved::Set(s)) => home.union_with(&s),
            Ok(Resolved::Home) => {
                return Err(cli_error(
                    "--home",
                    i,
                    "\"home\" cannot be part of the home set: list country codes or groups",
                ));
            }
            Err(m) => return Err(cli_error("--home", i, m)),
        }
    }
    Ok(())
}

/// An error in a command-line list: line 1, column = 1-based index of the item.
pub fn cli_error(option: &str, index: usize, message: impl Into<String>) -> PolicyError {
    PolicyError {
        file: option.to_owned(),
        line: 1,
        column: index.saturating_add(1),
        message: message.into(),
    }
}

/// Builds a country condition from command-line items.
pub fn cli_countries(
    option: &str,
    items: &[String],
    groups: &Groups,
    home: &CountrySet,
) -> Result<CountryCond, PolicyError> {
    let mut cond = CountryCond {
        set: CountrySet::EMPTY,
        uses_home: false,
    };
    for (i, item) in items.iter().enumerate() {
        if item.trim().is_empty() {
            return Err(cli_error(
                option,
                i,
                "empty item: separate countries with single commas, as in CN,RU",
            ));
        }
        match resolve_item(item, groups) {
            Ok(Resolved::Set(s)) => cond.set.union_with(&s),
            Ok(Resolved::Home) if home.is_empty() => return Err(cli_error(option, i, HOME_EMPTY)),
            Ok(Resolved::Home) => {
                cond.uses_home = true;
                cond.set.union_with(home);
            }
            Err(m) => return Err(cli_error(option, i, m)),
        }
    }
    Ok(cond)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    Todo,
    Active,
    Done,
}

struct GroupDefs<'a> {
    names: Vec<&'a Spanned<String>>,
    items: Vec<&'a Spanned<SpannedList>>,
    index: HashMap<String, usize>,
    state: Vec<Visit>,
    sets: Vec<CountrySet>,
}

fn resolve_groups(
    src: &Src<'_>,
    raw: &std::collections::BTreeMap<Spanned<String>, Spanned<SpannedList>>,
) -> Result<Groups, PolicyError> {
    let mut defs: Vec<_> = raw.iter().collect();
    defs.sort_by_key(|(k, _)| k.span().start);
    let mut g = GroupDefs {
        names: defs.iter().map(|(k, _)| *k).collect(),
        items: defs.iter().map(|(_, v)| *v).collect(),
        index: HashMap::new(),
        state: vec![Visit::Todo; defs.len()],
        sets: vec![CountrySet::EMPTY; defs.len()],
    };
    for (i, (name, items)) in defs.iter().enumerate() {
        let n = name.get_ref();
        check_name("group name", n).map_err(|m| src.at(name, m))?;
        if ["home", "eu", "eea"]
            .iter()
            .any(|b| n.eq_ignore_ascii_case(b))
        {
            return Err(src.at(
                name,
                format!("{n:?} is a built-in group and cannot be redefined: choose another name"),
            ));
        }
        if n.len() == 2 && n.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(src.at(name, format!("group name {n:?} looks like a country code: use a name of three or more characters")));
        }
        if g.index.insert(n.to_ascii_lowercase(), i).is_some() {
            return Err(src.at(
                name,
                format!("group {n:?} is defined twice (group names ignore case)"),
            ));
        }
        if items.get_ref().is_empty() {
            return Err(src.at(
                items,
                format!("group {n:?} is empty: list at least one country code or group"),
            ));
        }
    }
    let mut stack = Vec::new();
    for i in 0..defs.len() {
        visit_group(src, &mut g, i, &mut stack)?;
    }
    Ok(Groups(
        g.names
            .iter()
            .zip(g.sets)
            .map(|(n, s)| (n.get_ref().clone(), s))
            .collect(),
    ))
}

fn visit_group(
    src: &Src<'_>,
    g: &mut GroupDefs<'_>,
    i: usize,
    stack: &mut Vec<usize>,
) -> Result<(), PolicyError> {
    if g.state.get(i) != Some(&Visit::Todo) {
        return Ok(());
    }
    let (Some(name), Some(items)) = (g.names.get(i).copied(), g.items.get(i).copied()) else {
        return Ok(());
    };
    if stack.len() >= GROUP_NESTING_MAX {
        return Err(src.at(name, format!("groups nest more than {GROUP_NESTING_MAX} deep here: list countries directly instead")));
    }
    if let Some(s) = g.state.get_mut(i) {
        *s = Visit::Active;
    }
    stack.push(i);
    let mut set = CountrySet::EMPTY;
    for item in items.get_ref() {
        let text = item.get_ref();
        if let Some(&j) = g.index.get(&text.trim().to_ascii_lowercase()) {
            if g.state.get(j) == Some(&Visit::Active) {
                let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut path: Vec<&str> = stack
                    .get(from..)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&k| g.names.get(k).map(|n| n.get_ref().as_str()))
                    .collect();
                path.push(text);
                return Err(src.at(item, format!("group cycle: {}; a group may not contain itself, directly or through other groups", path.join(" → "))));
            }
            visit_group(src, g, j, stack)?;
            if let Some(s) = g.sets.get(j) {
                set.union_with(s);
            }
            continue;
        }
        match resolve_item(text, &Groups::default()) {
            Ok(Resolved::Set(s)) => set.union_with(&s),
            Ok(Resolved::Home) => {
                return Err(src.at(item, "\"home\" cannot be used inside a group: use it directly in a rule's countries or not_countries"));
            }
            Err(m) => return Err(src.at(item, m)),
        }
    }
    if let Some(s) = g.sets.get_mut(i) {
        *s = set;
    }
    if let Some(s) = g.state.get_mut(i) {
        *s = Visit::Done;
    }
    stack.pop();
    Ok(())
}

fn compile_devices(src: &Src<'_>, raw: &[Spanned<RawDevice>]) -> Result<Vec<Device>, PolicyError> {
    let mut names: HashMap<&str, ()> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for d in raw {
        let r = d.get_ref();
        let Some(name) = &r.name else {
            return Err(src.at(
                d,
                "device has no name: add name = \"...\" to this [[devices]] entry",
            ));
        };
        if name.get_ref().trim().is_empty() {
            return Err(src.at(name, "device name is empty"));
        }
        if names.insert(name.get_ref(), ()).is_some() {
            return Err(src.at(
                name,
                format!(
                    "duplicate device name {:?}: device names must be unique",
                    name.get_ref()
                ),
            ));
        }
        let profile = match &r.profile {
            Some(p) => {
                check_name("profile", p.get_ref()).map_err(|m| src.at(p, m))?;
                p.get_ref().clone()
            }
            None => DEFAULT_PROFILE.to_owned(),
        };
        let given = [r.ip.is_some(), r.cidr.is_some(), r.mac.is_some()];
        let count = given.iter().filter(|g| **g).count();
        if count != 1 {
            let what = if count == 0 { "none" } else { "several" };
            return Err(src.at(
                d,
                format!(
                    "device {:?} has {what} of ip, cidr and mac: give exactly one",
                    name.get_ref()
                ),
            ));
        }
        let selector = if let Some(ip) = &r.ip {
            DeviceSelector::Ip(IpAddr::from_str(ip.get_ref()).map_err(|_| {
                src.at(ip, format!("invalid IP address {:?}: write \"192.168.1.50\" or \"fd00::50\" (use cidr = \"...\" for a network)", ip.get_ref()))
            })?)
        } else if let Some(cidr) = &r.cidr {
            DeviceSelector::Cidr(parse_net(cidr.get_ref()).map_err(|m| src.at(cidr, m))?)
        } else if let Some(mac) = &r.mac {
            DeviceSelector::Mac(Mac::from_str(mac.get_ref()).map_err(|m| src.at(mac, m))?)
        } else {
            return Err(src.at(d, "device needs one of ip, cidr and mac"));
        };
        out.push(Device {
            name: name.get_ref().clone(),
            profile,
            selector,
        });
    }
    Ok(out)
}

fn check_asn(src: &Src<'_>, asn: &Spanned<i64>) -> Result<u32, PolicyError> {
    u32::try_from(*asn.get_ref()).map_err(|_| {
        src.at(
            asn,
            format!(
                "ASN {} is out of range: AS numbers are 0 to 4294967295 (RFC 6793)",
                asn.get_ref()
            ),
        )
    })
}

fn compile_override(src: &Src<'_>, o: &Spanned<RawOverride>) -> Result<GeoOverride, PolicyError> {
    let r = o.get_ref();
    let Some(cidr) = &r.cidr else {
        return Err(src.at(o, "geoip override has no cidr: add cidr = \"198.18.0.0/24\" to this [[geoip_overrides]] entry"));
    };
    let net = parse_net(cidr.get_ref()).map_err(|m| src.at(cidr, m))?;
    let country = match &r.country {
        None => None,
        Some(c) => Some(countries::assigned(c.get_ref()).ok_or_else(|| {
            let text = c.get_ref();
            let is_group = ["eu", "eea", "home"]
                .iter()
                .any(|g| text.eq_ignore_ascii_case(g));
            if is_group {
                src.at(
                    c,
                    format!("a geoip override needs one country code, not the group {text:?}"),
                )
            } else {
                src.at(c, unknown_item(text))
            }
        })?),
    };
    let asn = r.asn.as_ref().map(|a| check_asn(src, a)).transpose()?;
    let as_org = r.as_org.as_ref().map(|s| s.get_ref().clone());
    if country.is_none() && asn.is_none() && as_org.is_none() {
        return Err(src.at(
            o,
            "geoip override sets nothing: give country, asn or as_org",
        ));
    }
    Ok(GeoOverride {
        net,
        country,
        asn,
        as_org,
    })
}

struct RuleCtx<'a> {
    groups: &'a Groups,
    home: CountrySet,
    profiles: &'a [&'a str],
    operators: &'a Operators,
}

/// The longest organisation pattern, in characters.
const ORG_PATTERN_MAX_CHARS: usize = 256;

/// Operator groups defined so far, with where each name was defined (for duplicate errors).
#[derive(Default)]
struct Operators {
    groups: Vec<OperatorGroup>,
    /// Lower-case name → "file:line:column" of its definition.
    defined_at: HashMap<String, String>,
}

impl Operators {
    fn get(&self, name: &str) -> Option<&OperatorGroup> {
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name.trim()))
    }

    /// Checks and adds the groups of one `[operators]` table, in file order.
    fn add(
        &mut self,
        src: &Src<'_>,
        raw: &std::collections::BTreeMap<Spanned<String>, Spanned<RawOperator>>,
    ) -> Result<(), PolicyError> {
        let mut defs: Vec<_> = raw.iter().collect();
        defs.sort_by_key(|(k, _)| k.span().start);
        for (name, def) in defs {
            let n = name.get_ref();
            check_name("operator group name", n).map_err(|m| src.at(name, m))?;
            let (line, column) = src.position(name.span().start);
            let here = format!("{}:{line}:{column}", src.file);
            if let Some(first) = self.defined_at.get(&n.to_ascii_lowercase()) {
                return Err(src.at(
                    name,
                    format!("operator group {n:?} is already defined at {first} (group names ignore case): rename one"),
                ));
            }
            let group = compile_operator(src, n, def)?;
            self.defined_at.insert(n.to_ascii_lowercase(), here);
            self.groups.push(group);
        }
        Ok(())
    }
}

/// Checks an organisation pattern and stores it lower-case.
pub fn parse_org_pattern(text: &str) -> Result<OrgPattern, String> {
    if text.trim().is_empty() {
        return Err("empty organisation pattern: write part of the name with '*' around it, as in \"*alibaba*\"".to_owned());
    }
    if text.chars().all(|c| c == '*') {
        return Err(format!(
            "{text:?} alone would match every organisation: write part of a name, as in \"*alibaba*\""
        ));
    }
    if text.chars().count() > ORG_PATTERN_MAX_CHARS {
        return Err(format!(
            "organisation pattern is longer than {ORG_PATTERN_MAX_CHARS} characters"
        ));
    }
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "organisation pattern {text:?} contains the control character {bad:?}: remove it"
        ));
    }
    Ok(OrgPattern(text.to_ascii_lowercase()))
}

fn compile_operator(
    src: &Src<'_>,
    name: &str,
    def: &Spanned<RawOperator>,
) -> Result<OperatorGroup, PolicyError> {
    let r = def.get_ref();
    if r.asns.is_none() && r.orgs.is_none() {
        return Err(src.at(
            def,
            format!("operator group {name:?} lists neither asns nor orgs: add asns = [...] or orgs = [\"*name*\"]"),
        ));
    }
    let asns = r
        .asns
        .as_ref()
        .map(|l| asns(src, "asns", l))
        .transpose()?
        .unwrap_or_default();
    let orgs = match &r.orgs {
        None => Vec::new(),
        Some(list) => {
            nonempty(src, "orgs", list)?;
            list.get_ref()
                .iter()
                .map(|o| parse_org_pattern(o.get_ref()).map_err(|m| src.at(o, m)))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let source = match &r.source {
        Some(s) if s.get_ref().trim().is_empty() => {
            return Err(src.at(
                s,
                "source is empty: say where the list comes from, or remove the key",
            ));
        }
        Some(s) => Some(s.get_ref().clone()),
        None => None,
    };
    Ok(OperatorGroup {
        name: name.to_owned(),
        asns,
        orgs: orgs.into_iter().map(|p| p.0).collect(),
        source,
    })
}

/// Reads one `include_operators` file (relative to `base`) and adds its groups. Problems inside
/// the file are reported at their place in it; a file that cannot be read, at the item.
fn include_operators(
    src: &Src<'_>,
    item: &Spanned<String>,
    base: Option<&Path>,
    operators: &mut Operators,
) -> Result<(), PolicyError> {
    let given = Path::new(item.get_ref());
    if item.get_ref().trim().is_empty() {
        return Err(src.at(
            item,
            "empty path in include_operators: name a TOML file of [operators.NAME] tables",
        ));
    }
    let path = match base {
        Some(dir) if given.is_relative() => dir.join(given),
        _ => given.to_path_buf(),
    };
    let cannot = |e: String| {
        src.at(
            item,
            format!(
                "cannot read the operator groups file {}: {e}; paths are relative to the policy file's folder",
                path.display()
            ),
        )
    };
    let file = std::fs::File::open(&path).map_err(|e| cannot(e.to_string()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, POLICY_MAX_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(|e| cannot(e.to_string()))?;
    let name = path.display().to_string();
    if bytes.len() > POLICY_MAX_BYTES {
        return Err(cannot(format!(
            "it is larger than {POLICY_MAX_BYTES} bytes (1 MiB)"
        )));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e
                .as_bytes()
                .get(..e.utf8_error().valid_up_to())
                .unwrap_or_default();
            let good = std::str::from_utf8(good).unwrap_or_default();
            let inner = Src {
                text: good,
                file: &name,
            };
            return Err(inner.err(
                good.len()..good.len(),
                "the file is not UTF-8 text: save it as UTF-8 (TOML requires it)",
            ));
        }
    };
    let inner = Src {
        text: &text,
        file: &name,
    };
    let raw: RawOperatorsFile = toml::from_str(&text).map_err(|e| syntax_error(&inner, &e))?;
    if raw.operators.is_empty() {
        return Err(inner.whole(
            "the file defines no operator groups: add [operators.NAME] tables with asns and orgs",
        ));
    }
    operators.add(&inner, &raw.operators)
}

/// The union of the named operator groups.
fn operator_cond(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<SpannedList>,
    operators: &Operators,
) -> Result<OperatorCond, PolicyError> {
    nonempty(src, key, list)?;
    let mut cond = OperatorCond::default();
    for item in list.get_ref() {
        let Some(group) = operators.get(item.get_ref()) else {
            let known: Vec<&str> = operators.groups.iter().map(|g| g.name.as_str()).collect();
            let help = if known.is_empty() {
                "no operator groups are defined: add them under [operators] or with include_operators".to_owned()
            } else {
                format!("the operator groups are {}", known.join(", "))
            };
            return Err(src.at(
                item,
                format!("unknown operator group {:?}: {help}", item.get_ref()),
            ));
        };
        if !cond.names.contains(&group.name) {
            cond.names.push(group.name.clone());
        }
        cond.asns.extend_from_slice(&group.asns);
        for org in &group.orgs {
            let pattern = OrgPattern(org.clone());
            if !cond.orgs.contains(&pattern) {
                cond.orgs.push(pattern);
            }
        }
    }
    cond.asns.sort_unstable();
    cond.asns.dedup();
    Ok(cond)
}

fn nonempty<T>(src: &Src<'_>, key: &str, list: &Spanned<Vec<T>>) -> Result<(), PolicyError> {
    if list.get_ref().is_empty() {
        return Err(src.at(
            list,
            format!("{key} is an empty list, which never matches: add entries or remove the key"),
        ));
    }
    Ok(())
}

fn country_cond(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<SpannedList>,
    ctx: &RuleCtx<'_>,
) -> Result<CountryCond, PolicyError> {
    nonempty(src, key, list)?;
    let mut cond = CountryCond {
        set: CountrySet::EMPTY,
        uses_home: false,
    };
    for item in list.get_ref() {
        match resolve_item(item.get_ref(), ctx.groups) {
            Ok(Resolved::Set(s)) => cond.set.union_with(&s),
            Ok(Resolved::Home) if ctx.home.is_empty() => return Err(src.at(item, HOME_EMPTY)),
            Ok(Resolved::Home) => {
                cond.uses_home = true;
                cond.set.union_with(&ctx.home);
            }
            Err(m) => return Err(src.at(item, m)),
        }
    }
    Ok(cond)
}

fn port_range(value: &IntOrStr) -> Result<(u16, u16), String> {
    const HELP: &str =
        "write a port such as 443 or an inclusive range such as \"8000-8100\"; ports are 0-65535";
    let one = |text: &str| -> Result<u16, String> {
        text.trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid port {text:?}: {HELP}"))
    };
    match value {
        IntOrStr::Int(n) => u16::try_from(*n)
            .map(|p| (p, p))
            .map_err(|_| format!("port {n} is out of range: {HELP}")),
        IntOrStr::Str(text) => {
            let (lo, hi) = match text.split_once('-') {
                Some((lo, hi)) => (one(lo)?, one(hi)?),
                None => {
                    let p = one(text)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!(
                    "port range {text:?} is reversed: write the lower port first, as in \"{hi}-{lo}\""
                ));
            }
            Ok((lo, hi))
        }
    }
}

fn ports(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<Vec<Spanned<IntOrStr>>>,
) -> Result<Vec<(u16, u16)>, PolicyError> {
    nonempty(src, key, list)?;
    list.get_ref()
        .iter()
        .map(|p| port_range(p.get_ref()).map_err(|m| src.at(p, m)))
        .collect()
}

fn asns(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<Vec<Spanned<i64>>>,
) -> Result<Vec<u32>, PolicyError> {
    nonempty(src, key, list)?;
    let mut out = list
        .get_ref()
        .iter()
        .map(|a| check_asn(src, a))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn nets(src: &Src<'_>, key: &str, list: &Spanned<SpannedList>) -> Result<Vec<IpNet>, PolicyError> {
    nonempty(src, key, list)?;
    list.get_ref()
        .iter()
        .map(|n| parse_net(n.get_ref()).map_err(|m| src.at(n, m)))
        .collect()
}

fn domains(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<SpannedList>,
) -> Result<Vec<DomainPattern>, PolicyError> {
    nonempty(src, key, list)?;
    list.get_ref()
        .iter()
        .map(|d| parse_domain(d.get_ref()).map_err(|m| src.at(d, m)))
        .collect()
}

/// The template at its place in the file. The problem is reported where it is written when the
/// string's source reads the same as its value up to there (no escapes before it), else where the
/// placeholder appears verbatim, else at the start of the string.
fn reason(src: &Src<'_>, text: &Spanned<String>) -> Result<Template, PolicyError> {
    Template::parse(text.get_ref()).map_err(|e| {
        let span = text.span();
        let raw = src.text.get(span.clone()).unwrap_or_default();
        let value_before = text.get_ref().get(..e.offset);
        // Basic and literal strings open with one quote, multi-line strings with three.
        let exact = [1, 3].into_iter().find(|&quote| {
            value_before.is_some() && raw.get(quote..quote + e.offset) == value_before
        });
        let start = match exact {
            Some(quote) => span.start + quote + e.offset,
            None if !e.token.is_empty() => {
                raw.find(&e.token).map_or(span.start, |o| span.start + o)
            }
            None => span.start,
        };
        src.err(start..start, e.message)
    })
}

/// `via.kind` names other than the tunnel kinds: proxies and redirects.
pub const VIA_KINDS_NOT_TUNNEL: [&str; 4] = ["http-proxy", "socks4", "socks5", "redirect"];

/// The re-routing conditions of a rule: `via`, `via_kinds`, `via_countries`,
/// `not_via_countries`.
fn compile_via(
    src: &Src<'_>,
    r: &RawRule,
    ctx: &RuleCtx<'_>,
    c: &mut Conditions,
) -> Result<(), PolicyError> {
    c.via = r.via.as_ref().map(|b| *b.get_ref());
    if let Some(v) = &r.via
        && !*v.get_ref()
        && (r.via_kinds.is_some() || r.via_countries.is_some() || r.not_via_countries.is_some())
    {
        return Err(src.at(v, "via = false cannot be combined with via_kinds, via_countries or not_via_countries (those only match a flow that went through something): write a separate rule"));
    }
    if let Some(l) = &r.via_kinds {
        nonempty(src, "via_kinds", l)?;
        let known: Vec<&'static str> = crate::decode::TunnelKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(VIA_KINDS_NOT_TUNNEL)
            .collect();
        for k in l.get_ref() {
            let want = k.get_ref().to_ascii_lowercase();
            match known.iter().find(|n| **n == want) {
                Some(n) => {
                    if !c.via_kinds.contains(n) {
                        c.via_kinds.push(n);
                    }
                }
                None => {
                    return Err(src.at(
                        k,
                        format!(
                            "unknown via kind {:?}: use {}",
                            k.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    c.via_countries = r
        .via_countries
        .as_ref()
        .map(|l| country_cond(src, "via_countries", l, ctx))
        .transpose()?;
    c.not_via_countries = r
        .not_via_countries
        .as_ref()
        .map(|l| country_cond(src, "not_via_countries", l, ctx))
        .transpose()?;
    Ok(())
}

fn compile_rule(
    src: &Src<'_>,
    rule: &Spanned<RawRule>,
    ctx: &RuleCtx<'_>,
) -> Result<Rule, PolicyError> {
    let r = rule.get_ref();
    let Some(id) = &r.id else {
        return Err(src.at(
            rule,
            "rule has no id: add id = \"...\" to this [[rules]] entry",
        ));
    };
    check_name("rule id", id.get_ref()).map_err(|m| src.at(id, m))?;
    if id.get_ref().starts_with(CLI_RULE_PREFIX) {
        return Err(src.at(id, format!("rule ids starting with {CLI_RULE_PREFIX:?} are reserved for command-line rules: rename it")));
    }
    if id.get_ref() == DENY_OPERATORS_RULE {
        return Err(src.at(id, format!("rule id {DENY_OPERATORS_RULE:?} is the rule made from deny_operators: rename this rule")));
    }
    if id.get_ref() == PLAINTEXT_FOREIGN_RULE {
        return Err(src.at(id, format!("rule id {PLAINTEXT_FOREIGN_RULE:?} is the built-in rule's: rename this rule; to change the built-in rule set plaintext_foreign_severity, or plaintext_foreign = false to turn it off")));
    }
    let action = match &r.action {
        None => Action::Alert,
        Some(a) => match a.get_ref().to_ascii_lowercase().as_str() {
            "alert" => Action::Alert,
            "allow" => Action::Allow,
            _ => {
                return Err(src.at(
                    a,
                    format!(
                        "unknown action {:?}: use \"alert\" or \"allow\"",
                        a.get_ref()
                    ),
                ));
            }
        },
    };
    let severity = match &r.severity {
        None => Severity::Medium,
        Some(s) => Severity::from_str(s.get_ref()).map_err(|m| src.at(s, m))?,
    };
    let mut c = Conditions::default();
    if let Some(list) = &r.profiles {
        nonempty(src, "profiles", list)?;
        for p in list.get_ref() {
            if ctx.profiles.binary_search(&p.get_ref().as_str()).is_err() {
                return Err(src.at(
                    p,
                    format!(
                        "unknown profile {:?}: no device has it; the profiles are {}",
                        p.get_ref(),
                        ctx.profiles.join(", ")
                    ),
                ));
            }
            c.profiles.push(p.get_ref().clone());
        }
    }
    c.countries = r
        .countries
        .as_ref()
        .map(|l| country_cond(src, "countries", l, ctx))
        .transpose()?;
    c.not_countries = r
        .not_countries
        .as_ref()
        .map(|l| country_cond(src, "not_countries", l, ctx))
        .transpose()?;
    if let Some(u) = &r.unknown_country {
        if r.countries.is_some() || r.not_countries.is_some() {
            return Err(src.at(u, "unknown_country cannot be combined with countries or not_countries (those never match a remote without a country): write a separate rule"));
        }
        c.unknown_country = Some(*u.get_ref());
    }
    if let Some(l) = &r.asns {
        c.asns = asns(src, "asns", l)?;
    }
    if let Some(l) = &r.not_asns {
        c.not_asns = asns(src, "not_asns", l)?;
    }
    c.operators = r
        .operators
        .as_ref()
        .map(|l| operator_cond(src, "operators", l, ctx.operators))
        .transpose()?;
    c.not_operators = r
        .not_operators
        .as_ref()
        .map(|l| operator_cond(src, "not_operators", l, ctx.operators))
        .transpose()?;
    if let Some(l) = &r.cidrs {
        c.cidrs = nets(src, "cidrs", l)?;
    }
    if let Some(l) = &r.not_cidrs {
        c.not_cidrs = nets(src, "not_cidrs", l)?;
    }
    if let Some(l) = &r.transports {
        nonempty(src, "transports", l)?;
        for t in l.get_ref() {
            c.transports
                .push(Transport::from_str(t.get_ref()).map_err(|m| src.at(t, m))?);
        }
    }
    if let Some(l) = &r.ports {
        c.ports = ports(src, "ports", l)?;
    }
    if let Some(l) = &r.not_ports {
        c.not_ports = ports(src, "not_ports", l)?;
    }
    if let Some(l) = &r.domains {
        c.domains = domains(src, "domains", l)?;
    }
    if let Some(l) = &r.not_domains {
        c.not_domains = domains(src, "not_domains", l)?;
    }
    if let Some(u) = &r.unknown_domain {
        if r.domains.is_some() || r.not_domains.is_some() {
            return Err(src.at(u, "unknown_domain cannot be combined with domains or not_domains (those never match a remote without a name): write a separate rule"));
        }
        c.unknown_domain = Some(*u.get_ref());
    }
    c.plaintext = r.plaintext.as_ref().map(|b| *b.get_ref());
    c.hardcoded = r.hardcoded.as_ref().map(|b| *b.get_ref());
    if let Some(n) = &r.bytes_out_over {
        c.bytes_out_over = Some(parse_bytes(n.get_ref()).map_err(|m| src.at(n, m))?);
    }
    if let Some(n) = &r.country_bytes_out_over {
        c.country_bytes_out_over = Some(parse_bytes(n.get_ref()).map_err(|m| src.at(n, m))?);
    }
    if let Some(n) = &r.name_bytes_out_over {
        c.name_bytes_out_over = Some(parse_bytes(n.get_ref()).map_err(|m| src.at(n, m))?);
    }
    c.app_protos = r
        .app_protos
        .as_ref()
        .map(|l| app_proto_set(src, "app_protos", l))
        .transpose()?;
    c.not_app_protos = r
        .not_app_protos
        .as_ref()
        .map(|l| app_proto_set(src, "not_app_protos", l))
        .transpose()?;
    compile_via(src, r, ctx, &mut c)?;
    super::resolvers::rule_conditions(src, r, &mut c)?;
    let template = match &r.reason {
        Some(text) => reason(src, text)?,
        None => Template::generated(&c),
    };
    Ok(Rule {
        id: id.get_ref().clone(),
        severity,
        action,
        conditions: c,
        template,
        builtin: false,
    })
}

/// The protocol groups `app_protos` and `not_app_protos` accept besides single protocols.
pub const APP_PROTO_GROUPS: [&str; 2] = ["vpn", "management"];

/// An `app_protos` or `not_app_protos` list: protocol names as `app_proto` writes them, or the
/// groups `vpn` and `management` (either case).
fn app_proto_set(
    src: &Src<'_>,
    key: &str,
    list: &Spanned<SpannedList>,
) -> Result<ProtoSet, PolicyError> {
    nonempty(src, key, list)?;
    let mut set = ProtoSet::default();
    for item in list.get_ref() {
        let text = item.get_ref().trim();
        let group =
            |pick: fn(AppProto) -> bool| AppProto::ALL.into_iter().filter(move |&p| pick(p));
        if text.eq_ignore_ascii_case("vpn") {
            group(AppProto::is_vpn).for_each(|p| set.insert(p));
        } else if text.eq_ignore_ascii_case("management") {
            group(AppProto::is_management).for_each(|p| set.insert(p));
        } else if let Some(p) = AppProto::from_name(text) {
            set.insert(p);
        } else {
            return Err(src.at(item, unknown_app_proto(text)));
        }
    }
    Ok(set)
}

/// The message for a name that is no protocol and no protocol group, with the closest name.
pub fn unknown_app_proto(text: &str) -> String {
    let names = AppProto::ALL
        .iter()
        .map(|p| p.as_str())
        .chain(APP_PROTO_GROUPS);
    let lower = text.to_ascii_lowercase();
    let best = names
        .clone()
        .map(|n| (edit_distance(&lower, n), n))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, n)| *d <= 2.max(n.len() / 3));
    let all: Vec<&str> = names.collect();
    match best {
        Some((_, n)) => format!(
            "unknown protocol {text:?}, did you mean {n:?}? (protocols: {})",
            all.join(", ")
        ),
        None => format!("unknown protocol {text:?}: use one of {}", all.join(", ")),
    }
}

/// Levenshtein distance of two short ASCII strings (names are capped by the TOML line; the
/// work is |a|·|b| with one row kept).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
