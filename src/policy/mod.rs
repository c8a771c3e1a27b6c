//! Policy: which countries, operators, networks, transports and ports each device may reach.
//!
//! This stage owns the TOML policy format (version 1, documented in `docs/policy.md`), its
//! validation, the embedded default policy, the command-line one-liners, and evaluation of a flow
//! against the compiled rules.
//!
//! Guarantees: loading never panics, whatever the input; every load error names the file, line
//! and column (1-based, column in characters) and says how to fix it; a loaded policy is fully
//! validated and compiled, so [`Policy::evaluate`] cannot fail and does not allocate. Rules are
//! evaluated first match wins, in file order, after the command-line rules and before the
//! built-in rule [`PLAINTEXT_FOREIGN_RULE`].
//!
//! Looking addresses up (countries, ASNs) is left to `geoip`; deciding which side of a flow is
//! the device and de-duplicating alerts is left to the engine, with the settings given here.

mod compile;
mod countries;
mod matcher;
mod model;
mod resolvers;
mod template;

use std::fmt;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::decode::{Mac, Transport};
use crate::geoip::{CountryCode, GeoOverride};
use crate::names::AppProto;

pub use compile::GROUP_NESTING_MAX;
pub use countries::{COUNTRIES, name_of as country_name};
pub use resolvers::{
    RESOLVER_FOREIGN, RESOLVER_NOT_ALLOWED, RESOLVER_SEVERITY_DEFAULT, ResolverPolicy,
    ResolverVerdict,
};

use compile::{Groups, Src};
use countries::CountrySet;
use matcher::Conditions;
use template::Template;

/// The largest policy file accepted, in bytes (1 MiB): far above any real policy, small enough
/// that a wrong file (a capture, a log) is refused at once.
pub const POLICY_MAX_BYTES: usize = 1 << 20;

/// The longest rule id, group name or profile name, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// The profile of local devices that no `[[devices]]` entry names (and of entries without one).
pub const DEFAULT_PROFILE: &str = "default";

/// The alert de-duplication window when the policy sets none: 60 s, in nanoseconds.
pub const DEDUP_WINDOW_DEFAULT_NS: i64 = 60_000_000_000;

/// The longest de-duplication window accepted: 7 days, in nanoseconds.
pub const DEDUP_WINDOW_MAX_NS: i64 = 7 * 24 * 3_600_000_000_000;

/// Id of the rule made from `--deny-country`.
pub const CLI_DENY_RULE: &str = "cli-deny-country";

/// Id of the rule made from `--allow-country`.
pub const CLI_ALLOW_RULE: &str = "cli-allow-country";

/// Id of the rule made from the policy's top-level `deny_operators`: severity high, placed before
/// the file's rules (and after the command-line rules). File rules may not use this id.
pub const DENY_OPERATORS_RULE: &str = "deny-operators";

/// Most files one policy may name in `include_operators`.
pub const INCLUDE_OPERATORS_MAX: usize = 64;

/// A named group of network operators from `[operators]` or an `include_operators` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorGroup {
    pub name: String,
    /// Sorted, without duplicates.
    pub asns: Vec<u32>,
    /// Organisation-name patterns, lower-case; `*` is a wildcard, matching ignores ASCII case.
    pub orgs: Vec<String>,
    /// Where the list comes from, as the file says.
    pub source: Option<String>,
}

/// Id of the built-in rule that alerts on unencrypted payload sent outside the home countries,
/// added after every other rule when the home set is not empty (unless `plaintext_foreign =
/// false`). File rules may not use this id.
pub const PLAINTEXT_FOREIGN_RULE: &str = "plaintext-foreign";

/// The reason of [`PLAINTEXT_FOREIGN_RULE`].
pub const PLAINTEXT_FOREIGN_REASON: &str =
    "{device} sent unencrypted data to {remote} in {country}, outside the home countries";

/// The severity of [`PLAINTEXT_FOREIGN_RULE`] when `plaintext_foreign_severity` is not set.
pub const PLAINTEXT_FOREIGN_SEVERITY_DEFAULT: Severity = Severity::Medium;

/// What [`Policy::source`] says for the embedded default policy.
pub const SOURCE_EMBEDDED: &str = "embedded default";

/// What [`Policy::source`] says for a policy made only of command-line options.
pub const SOURCE_CLI: &str = "command line";

/// The embedded default policy, as TOML.
pub const DEFAULT_POLICY_TOML: &str = include_str!("default.toml");

/// The device-side networks when the policy sets no `local_networks`: private IPv4 (RFC 1918),
/// shared address space (RFC 6598), IPv4 link-local (RFC 3927), loopback (RFC 1122), unique local
/// IPv6 (RFC 4193), IPv6 link-local (RFC 4291) and the IPv6 loopback (RFC 4291).
pub fn default_local_networks() -> Vec<IpNet> {
    let v4 = |a, b, len| Ipv4Net::new(std::net::Ipv4Addr::new(a, b, 0, 0), len).map(IpNet::V4);
    let v6 = |first, len| {
        Ipv6Net::new(std::net::Ipv6Addr::new(first, 0, 0, 0, 0, 0, 0, 0), len).map(IpNet::V6)
    };
    [
        v4(10, 0, 8),
        v4(172, 16, 12),
        v4(192, 168, 16),
        v4(100, 64, 10),
        v4(169, 254, 16),
        v4(127, 0, 8),
        v6(0xfc00, 7),
        v6(0xfe80, 10),
        Ipv6Net::new(std::net::Ipv6Addr::LOCALHOST, 128).map(IpNet::V6),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

/// How serious an alert is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {s:?}: use info, low, medium, high or critical"
            )),
        }
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A policy problem, located in its file: `dut.toml:12:9: unknown country "UK", did you mean "GB"?`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Rules given on the command line, which need no file.
#[derive(Clone, Debug, Default)]
pub struct CliRules {
    /// `--deny-country CN,RU`: alert on these countries or groups.
    pub deny_countries: Vec<String>,
    /// `--allow-country BE,DE`: alert on every country outside these (and the home set).
    pub allow_countries: Vec<String>,
    /// `--home BE`: the home country set.
    pub home: Vec<String>,
    /// `--resolver 198.18.0.53`: allowed resolvers (addresses, CIDRs or names), added to
    /// `[resolvers] allowed`.
    pub resolvers: Vec<String>,
}

/// Index of a rule in [`Policy::rules`].
pub type RuleId = usize;

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Alert,
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub action: Action,
    conditions: Conditions,
    template: Template,
    builtin: bool,
}

/// What a run-total condition counts: the device's bytes to the remote's country or name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TotalScope {
    Country,
    Name,
}

impl Rule {
    /// Whether this rule judges a run total (`country_bytes_out_over`, `name_bytes_out_over`):
    /// such a rule fires once per device and country (or name) in a run, not once per flow.
    pub fn total_scope(&self) -> Option<TotalScope> {
        if self.conditions.country_bytes_out_over.is_some() {
            Some(TotalScope::Country)
        } else if self.conditions.name_bytes_out_over.is_some() {
            Some(TotalScope::Name)
        } else {
            None
        }
    }

    /// The human-readable reason for an alert of this rule on `subject`, with the rule's template
    /// filled in (`{country}`, `{device}`, `{remote}`, `{port}`, `{transport}`, `{asn}`,
    /// `{device_ip}`, `{rule}`, `{hostname}`, `{bytes_out}`), or the reason generated from its
    /// conditions.
    pub fn reason(&self, subject: &Subject<'_>) -> String {
        self.template.render(&self.id, subject)
    }

    /// Whether every condition of this rule holds for `subject` (ignoring the other rules).
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        let profile = subject
            .device
            .map_or(DEFAULT_PROFILE, |d| d.profile.as_str());
        self.conditions.matches(subject, profile)
    }

    /// Whether the policy added this rule itself ([`PLAINTEXT_FOREIGN_RULE`]) rather than a file
    /// or a command-line option.
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }
}

/// How a `[[devices]]` entry recognises its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSelector {
    Ip(IpAddr),
    Cidr(IpNet),
    Mac(Mac),
}

/// A device named in the policy.
#[derive(Clone, Debug)]
pub struct Device {
    pub name: String,
    pub profile: String,
    pub selector: DeviceSelector,
}

impl Device {
    /// Whether this entry names the endpoint at `ip` with MAC `mac` (MACs only when known).
    pub fn matches(&self, ip: IpAddr, mac: Option<Mac>) -> bool {
        match self.selector {
            DeviceSelector::Ip(a) => a == ip,
            DeviceSelector::Cidr(n) => n.contains(&ip),
            DeviceSelector::Mac(m) => mac == Some(m),
        }
    }
}

/// The flow facts a rule can look at. Facts that arrive during a flow (names, encryption, bytes)
/// may change which rule matches: the engine evaluates again when they change.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    pub device: Option<&'a Device>,
    pub device_ip: IpAddr,
    pub remote_ip: IpAddr,
    /// `None` for transports without ports.
    pub remote_port: Option<u16>,
    pub transport: Transport,
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    /// The organisation behind `asn`, as the GeoIP database names it.
    pub as_org: Option<&'a str>,
    /// The best name for the remote (TLS or QUIC SNI, HTTP Host, or a DNS answer), lower-case,
    /// without a final dot; `None` when none is known.
    pub hostname: Option<&'a str>,
    /// The name the device asked DNS for, when a DNS answer named the remote (it may differ from
    /// `hostname` through CNAMEs).
    pub queried_name: Option<&'a str>,
    /// Whether the payload is encrypted; `None` until payload was seen and classified.
    pub encrypted: Option<bool>,
    /// Bytes the device has sent on this flow so far.
    pub bytes_out: u64,
    /// Bytes the device has sent, over the whole run, to the remote's country (0 when the
    /// remote has no country).
    pub country_bytes_out: u64,
    /// Bytes the device has sent, over the whole run, to the remote's hostname (0 when the
    /// remote has no name).
    pub name_bytes_out: u64,
    /// `Some(true)` when a DNS answer in the capture named the remote for this device,
    /// `Some(false)` when none did, `None` while the engine cannot tell yet.
    pub dns_named: Option<bool>,
    /// The protocol the payload was recognised as; `None` before payload was classified (and
    /// while `unknown` may still become something else).
    pub app_proto: Option<AppProto>,
    // --- re-routing: tunnels, proxies, redirects ---
    /// What the flow went through: a tunnel kind (`gre`, …), `http-proxy`, `socks4`, `socks5`
    /// or `redirect`; `None` for a direct flow. With a proxy or redirect, the `remote_*`
    /// facts describe the target named to the proxy or redirected to; `remote_ip` is then the
    /// unspecified address (`0.0.0.0`/`::`) when only the target's name is known.
    pub via_kind: Option<&'static str>,
    /// The tunnel's far endpoint, the proxy, or the redirecting server.
    pub via_ip: Option<IpAddr>,
    pub via_country: Option<CountryCode>,
    /// The kind of resolver flow (the device sends DNS queries on it), if it is one.
    pub resolver: Option<crate::resolvers::ResolverKind>,
}

impl Subject<'_> {
    /// A destination about which nothing is known yet and to which nothing was sent: no
    /// device entry, no country, operator or name, no payload, no re-routing. Callers set what
    /// they know with struct update syntax.
    pub fn bare(
        device_ip: IpAddr,
        remote_ip: IpAddr,
        remote_port: Option<u16>,
        transport: Transport,
    ) -> Self {
        Subject {
            device: None,
            device_ip,
            remote_ip,
            remote_port,
            transport,
            country: None,
            asn: None,
            as_org: None,
            hostname: None,
            queried_name: None,
            encrypted: None,
            bytes_out: 0,
            country_bytes_out: 0,
            name_bytes_out: 0,
            dns_named: None,
            app_proto: None,
            via_kind: None,
            via_ip: None,
            via_country: None,
            resolver: None,
        }
    }
}

/// Which flow facts the rules look at, so that the engine knows which changes can change a
/// decision (and so which are worth evaluating again for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some rule uses `domains`, `not_domains` or `unknown_domain` (`hostname`, `queried_name`).
    pub names: bool,
    /// Some rule uses `plaintext` (`encrypted`).
    pub encryption: bool,
    /// Some rule uses `hardcoded` (`dns_named`).
    pub dns_named: bool,
    /// Some rule uses `bytes_out_over` (`bytes_out`); see [`Policy::bytes_thresholds`].
    pub bytes_out: bool,
    /// Some rule uses `country_bytes_out_over` or `name_bytes_out_over`: the engine must keep
    /// run totals; see [`Policy::total_thresholds`].
    pub totals: bool,
    /// Some rule uses `app_protos` or `not_app_protos` (`app_proto`).
    pub app_protos: bool,
}

/// The compiled, validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    name: Option<String>,
    source: String,
    home: CountrySet,
    home_codes: Vec<CountryCode>,
    local_networks: Vec<IpNet>,
    devices: Vec<Device>,
    overrides: Vec<GeoOverride>,
    dedup_window_ns: i64,
    groups: Groups,
    operators: Vec<OperatorGroup>,
    plaintext_foreign: bool,
    plaintext_foreign_severity: Severity,
    resolvers: ResolverPolicy,
}

impl Policy {
    /// Loads and validates a policy file. Errors reading it are reported at line 0, column 0.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        Self::from_file_with_home(path, &[])
    }

    /// Loads a policy file and adds the command-line one-liners, with `--home` known while the
    /// file is validated (so the file may use `home` with only `--home` setting it). This is the
    /// same as `from_file(path)?.with_cli(cli)` otherwise.
    pub fn from_file_with_cli(path: &Path, cli: &CliRules) -> Result<Policy, PolicyError> {
        Self::from_file_with_home(path, &cli.home)?.with_cli(cli)
    }

    fn from_file_with_home(path: &Path, cli_home: &[String]) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let whole = |message: String| PolicyError {
            file: file.clone(),
            line: 0,
            column: 0,
            message,
        };
        let handle =
            std::fs::File::open(path).map_err(|e| whole(format!("cannot read the policy: {e}")))?;
        let limit = u64::try_from(POLICY_MAX_BYTES)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut bytes = Vec::new();
        handle
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| whole(format!("cannot read the policy: {e}")))?;
        if bytes.len() > POLICY_MAX_BYTES {
            let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
            return Err(whole(format!(
                "policy is {size} bytes, more than the limit of {POLICY_MAX_BYTES} bytes (1 MiB): split it or remove unused rules"
            )));
        }
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let good = std::str::from_utf8(good).unwrap_or_default();
                let src = Src {
                    text: good,
                    file: &file,
                };
                return Err(src.err(
                    good.len()..good.len(),
                    "the policy is not UTF-8 text: save it as UTF-8 (TOML requires it)",
                ));
            }
        };
        let src = Src { text, file: &file };
        compile::compile(&src, file.clone(), cli_home, path.parent())
    }

    /// Parses and validates a policy held in memory; `file` names it in errors and in
    /// [`Policy::source`]. `include_operators` paths are relative to the current directory.
    pub fn from_toml(text: &str, file: &str) -> Result<Policy, PolicyError> {
        compile::compile(&Src { text, file }, file.to_owned(), &[], None)
    }

    /// [`Policy::from_toml`] with the command-line one-liners, `--home` known while the text is
    /// validated (as in [`Policy::from_file_with_cli`]).
    pub fn from_toml_with_cli(
        text: &str,
        file: &str,
        cli: &CliRules,
    ) -> Result<Policy, PolicyError> {
        compile::compile(&Src { text, file }, file.to_owned(), &cli.home, None)?.with_cli(cli)
    }

    /// A policy with no rules and the default local networks: the start for command-line rules.
    pub fn empty() -> Policy {
        Policy {
            rules: Vec::new(),
            name: None,
            source: SOURCE_CLI.to_owned(),
            home: CountrySet::EMPTY,
            home_codes: Vec::new(),
            local_networks: default_local_networks(),
            devices: Vec::new(),
            overrides: Vec::new(),
            dedup_window_ns: DEDUP_WINDOW_DEFAULT_NS,
            groups: Groups::default(),
            operators: Vec::new(),
            plaintext_foreign: true,
            plaintext_foreign_severity: PLAINTEXT_FOREIGN_SEVERITY_DEFAULT,
            resolvers: ResolverPolicy::default(),
        }
    }

    /// The policy compiled into the binary, used when no file is given: it alerts on data sent
    /// to China (see `src/policy/default.toml`).
    pub fn embedded_default() -> Policy {
        let src = Src {
            text: DEFAULT_POLICY_TOML,
            file: SOURCE_EMBEDDED,
        };
        // A unit test proves the embedded text valid; should it ever not be, run with no rules
        // rather than abort.
        compile::compile(&src, SOURCE_EMBEDDED.to_owned(), &[], None).unwrap_or_else(|_| Policy {
            source: SOURCE_EMBEDDED.to_owned(),
            ..Policy::empty()
        })
    }

    /// Adds the command-line one-liners: `--home` joins the home set (also for rules that name
    /// `home`, and it turns on [`PLAINTEXT_FOREIGN_RULE`] unless the policy turned it off),
    /// `--deny-country` becomes rule [`CLI_DENY_RULE`] and `--allow-country` rule
    /// [`CLI_ALLOW_RULE`] (its list plus the home set), both of severity high and placed, in that
    /// order, before the file's rules. Errors name the option, line 1, and the 1-based position
    /// of the bad item as the column.
    pub fn with_cli(mut self, cli: &CliRules) -> Result<Policy, PolicyError> {
        let mut home = self.home;
        compile::add_cli_home(&mut home, &cli.home, &self.groups)?;
        let home_changed = home != self.home;
        if home_changed {
            self.home = home;
            self.home_codes = home.codes();
            for rule in &mut self.rules {
                let c = &mut rule.conditions;
                for cond in [
                    &mut c.countries,
                    &mut c.not_countries,
                    &mut c.via_countries,
                    &mut c.not_via_countries,
                ]
                .into_iter()
                .flatten()
                {
                    if cond.uses_home {
                        cond.set.union_with(&home);
                    }
                }
            }
        }
        let mut front = Vec::new();
        if !cli.deny_countries.is_empty() {
            let cond = compile::cli_countries(
                "--deny-country",
                &cli.deny_countries,
                &self.groups,
                &self.home,
            )?;
            front.push(cli_rule(
                CLI_DENY_RULE,
                Conditions {
                    countries: Some(cond),
                    ..Conditions::default()
                },
            ));
        }
        if !cli.allow_countries.is_empty() {
            let mut cond = compile::cli_countries(
                "--allow-country",
                &cli.allow_countries,
                &self.groups,
                &self.home,
            )?;
            cond.uses_home = true;
            cond.set.union_with(&self.home);
            front.push(cli_rule(
                CLI_ALLOW_RULE,
                Conditions {
                    not_countries: Some(cond),
                    ..Conditions::default()
                },
            ));
        }
        let cli_rules = !front.is_empty();
        if cli_rules {
            // Options given twice replace the earlier rules of the same id.
            self.rules
                .retain(|r| !front.iter().any(|f: &Rule| f.id == r.id));
            front.append(&mut self.rules);
            self.rules = front;
        }
        self.add_cli_resolvers(&cli.resolvers)?;
        let cli_rules = cli_rules || !cli.resolvers.is_empty();
        if (home_changed || cli_rules) && self.source == SOURCE_EMBEDDED {
            self.source = format!("{SOURCE_EMBEDDED} + {SOURCE_CLI}");
        }
        self.place_builtin();
        Ok(self)
    }

    /// Puts [`PLAINTEXT_FOREIGN_RULE`] last, for the current home set, or removes it when the
    /// home set is empty or the policy turned it off.
    pub(crate) fn place_builtin(&mut self) {
        self.rules.retain(|r| !r.builtin);
        if self.plaintext_foreign && !self.home.is_empty() {
            self.rules.push(plaintext_foreign_rule(
                self.home,
                self.plaintext_foreign_severity,
            ));
        }
    }

    /// The policy's `name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the policy came from: the path as given, [`SOURCE_EMBEDDED`] or [`SOURCE_CLI`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The home country set (policy `home` plus `--home`), sorted.
    pub fn home(&self) -> &[CountryCode] {
        &self.home_codes
    }

    /// Whether `code` is in the home set.
    pub fn is_home(&self, code: CountryCode) -> bool {
        self.home.contains(code)
    }

    /// The networks whose addresses are device side.
    pub fn local_networks(&self) -> &[IpNet] {
        &self.local_networks
    }

    /// Whether `ip` is in [`Policy::local_networks`].
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local_networks.iter().any(|n| n.contains(&ip))
    }

    /// The devices named in the policy, in file order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The named device at this address or MAC, if any: the first `[[devices]]` entry whose ip or
    /// cidr holds `ip`, or whose mac is `mac`.
    pub fn device(&self, ip: IpAddr, mac: Option<Mac>) -> Option<&Device> {
        self.devices.iter().find(|d| d.matches(ip, mac))
    }

    /// The operator groups, from `[operators]` then the `include_operators` files, in order.
    pub fn operators(&self) -> &[OperatorGroup] {
        &self.operators
    }

    /// The operator group named `name` (ignoring case), if any.
    pub fn operator_group(&self, name: &str) -> Option<&OperatorGroup> {
        self.operators
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// GeoIP overrides from the policy.
    pub fn overrides(&self) -> &[GeoOverride] {
        &self.overrides
    }

    /// De-duplication window for repeated alerts of one (rule, device, remote), in nanoseconds.
    pub fn dedup_window_ns(&self) -> i64 {
        self.dedup_window_ns
    }

    /// First-match evaluation: the rule that decides this flow, if any rule matches. The rule may
    /// be an `allow` rule (no alert); see [`Policy::alert`] for "which rule alerts".
    pub fn evaluate(&self, subject: &Subject<'_>) -> Option<RuleId> {
        let profile = subject
            .device
            .map_or(DEFAULT_PROFILE, |d| d.profile.as_str());
        self.rules
            .iter()
            .position(|r| r.conditions.matches(subject, profile))
    }

    /// The rule that raises an alert for this flow: [`Policy::evaluate`] when the deciding rule's
    /// action is `alert`.
    pub fn alert(&self, subject: &Subject<'_>) -> Option<RuleId> {
        self.evaluate(subject).filter(|&id| {
            self.rules
                .get(id)
                .is_some_and(|r| r.action == Action::Alert)
        })
    }

    /// Addresses of the devices named by IP or CIDR: always device side.
    pub fn device_networks(&self) -> Vec<IpNet> {
        self.devices
            .iter()
            .filter_map(|d| match d.selector {
                DeviceSelector::Ip(ip) => Some(IpNet::from(ip)),
                DeviceSelector::Cidr(net) => Some(net),
                DeviceSelector::Mac(_) => None,
            })
            .collect()
    }

    /// MAC addresses of the devices named by MAC.
    pub fn device_macs(&self) -> Vec<Mac> {
        self.devices
            .iter()
            .filter_map(|d| match d.selector {
                DeviceSelector::Mac(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Every rule, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Which flow facts the rules look at (built-in rule included).
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        for c in self.rules.iter().map(|r| &r.conditions) {
            n.names |=
                !c.domains.is_empty() || !c.not_domains.is_empty() || c.unknown_domain.is_some();
            n.encryption |= c.plaintext.is_some();
            n.dns_named |= c.hardcoded.is_some();
            n.bytes_out |= c.bytes_out_over.is_some();
            n.totals |= c.country_bytes_out_over.is_some() || c.name_bytes_out_over.is_some();
            n.app_protos |= c.app_protos.is_some() || c.not_app_protos.is_some();
        }
        n
    }

    /// Every `country_bytes_out_over` and `name_bytes_out_over` threshold, sorted, without
    /// duplicates: a decision can change only when a run total passes one of these.
    pub fn total_thresholds(&self) -> Vec<u64> {
        let mut t: Vec<u64> = self
            .rules
            .iter()
            .flat_map(|r| {
                [
                    r.conditions.country_bytes_out_over,
                    r.conditions.name_bytes_out_over,
                ]
            })
            .flatten()
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Every `bytes_out_over` threshold, sorted, without duplicates: a flow's decision can change
    /// only when its `bytes_out` passes one of these.
    pub fn bytes_thresholds(&self) -> Vec<u64> {
        let mut t: Vec<u64> = self
            .rules
            .iter()
            .filter_map(|r| r.conditions.bytes_out_over)
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Whether the built-in rule [`PLAINTEXT_FOREIGN_RULE`] is on (it is then in
    /// [`Policy::rules`], last, whenever the home set is not empty).
    pub fn plaintext_foreign(&self) -> bool {
        self.plaintext_foreign
    }
}

/// A command-line rule: severity high, alert, reason generated from its condition.
fn cli_rule(id: &str, conditions: Conditions) -> Rule {
    let template = Template::generated(&conditions);
    Rule {
        id: id.to_owned(),
        severity: Severity::High,
        action: Action::Alert,
        conditions,
        template,
        builtin: false,
    }
}

/// The rule made from `deny_operators`: severity high, alert, reason generated.
fn deny_operators_rule(cond: matcher::OperatorCond) -> Rule {
    cli_rule(
        DENY_OPERATORS_RULE,
        Conditions {
            operators: Some(cond),
            ..Conditions::default()
        },
    )
}

/// The built-in rule: unencrypted payload to a known country outside `home`.
fn plaintext_foreign_rule(home: CountrySet, severity: Severity) -> Rule {
    let conditions = Conditions {
        plaintext: Some(true),
        not_countries: Some(matcher::CountryCond {
            set: home,
            uses_home: true,
        }),
        ..Conditions::default()
    };
    // The reason is a constant that a unit test parses; should it ever not parse, generate one.
    let template = Template::parse(PLAINTEXT_FOREIGN_REASON)
        .unwrap_or_else(|_| Template::generated(&conditions));
    Rule {
        id: PLAINTEXT_FOREIGN_RULE.to_owned(),
        severity,
        action: Action::Alert,
        conditions,
        template,
        builtin: true,
    }
}

#[cfg(test)]
mod tests;
