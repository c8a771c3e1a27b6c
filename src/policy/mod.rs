//! Policy: which countries, operators, networks, transports and ports each device may reach.
//!
//! This stage owns the TOML policy format, its validation (every error names file, line and
//! column and says how to fix it), the embedded default policy, the command-line one-liners, and
//! evaluation of a flow against the compiled rules.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;

use crate::decode::{Mac, Transport};
use crate::geoip::{CountryCode, GeoOverride};

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
}

impl Rule {
    /// The human-readable reason for an alert of this rule on `subject`, with the rule's template
    /// filled in (`{country}`, `{device}`, `{remote}`, `{port}`, `{transport}`, `{asn}`).
    pub fn reason(&self, subject: &Subject<'_>) -> String {
        let _ = subject;
        String::new()
    }
}

/// A device named in the policy.
#[derive(Clone, Debug)]
pub struct Device {
    pub name: String,
    pub profile: String,
}

/// The flow facts a rule can look at.
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
}

/// The compiled, validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Loads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let _ = path;
        Ok(Policy { rules: Vec::new() })
    }

    /// The policy compiled into the binary, used when no file is given.
    pub fn embedded_default() -> Policy {
        Policy { rules: Vec::new() }
    }

    /// Adds the command-line one-liners; their rules come before the file's.
    pub fn with_cli(self, cli: &CliRules) -> Result<Policy, PolicyError> {
        let _ = cli;
        Ok(self)
    }

    /// The home country set (policy `home` plus `--home`).
    pub fn home(&self) -> &[CountryCode] {
        &[]
    }

    /// The networks whose addresses are device side.
    pub fn local_networks(&self) -> &[IpNet] {
        &[]
    }

    /// The named device at this address or MAC, if any.
    pub fn device(&self, ip: IpAddr, mac: Option<Mac>) -> Option<&Device> {
        let _ = (ip, mac);
        None
    }

    /// GeoIP overrides from the policy.
    pub fn overrides(&self) -> &[GeoOverride] {
        &[]
    }

    /// De-duplication window for repeated alerts of one (rule, device, remote), in nanoseconds.
    pub fn dedup_window_ns(&self) -> i64 {
        60_000_000_000
    }

    /// First-match evaluation: the rule that decides this flow, if any rule matches.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Option<RuleId> {
        let _ = subject;
        None
    }

    /// TEMP: replaced by the policy branch.
    pub fn device_networks(&self) -> Vec<IpNet> {
        Vec::new()
    }

    /// TEMP: replaced by the policy branch.
    pub fn device_macs(&self) -> Vec<Mac> {
        Vec::new()
    }

    /// TEMP
    pub const EMBEDDED_DEFAULT_TOML: &str = "";
    /// TEMP
    pub fn empty() -> Policy {
        Policy { rules: Vec::new() }
    }
    /// TEMP
    pub fn devices(&self) -> &[Device] {
        &[]
    }
    /// TEMP: replaced by the policy branch.
    pub fn name(&self) -> &str {
        "embedded-default"
    }

    /// Every rule, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}
