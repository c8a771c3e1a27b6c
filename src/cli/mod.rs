//! The command line: clap definitions, one file per subcommand.
//!
//! Raw arguments are parsed here and turned into the library's settings; only `main` and this
//! module know about flags.

pub mod geoip;
pub mod interfaces;
pub mod limits;
pub mod live;
mod output_args;
pub use output_args::OutputArgs;
pub mod lookup;
pub mod policy;
pub mod replay;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use egresswatch::capture::CaptureError;
use egresswatch::geoip::{self as geo, GeoipError, Overlay, Resolver};
use egresswatch::policy::Severity;
use egresswatch::policy::{CliRules, Policy, PolicyError};
use egresswatch::sink::{Sink, SinkError, Terminal};
use std::io::{self, IsTerminal};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  clean: no alert at or above --fail-on
  1  an alert at or above --fail-on (default: any alert)
  2  usage, policy or GeoIP database error, or output that could not be written
  3  a capture was unreadable or damaged (what was read before the damage is still processed,
     reported and written)";

/// Shown by `--version`: the embedded data's licences ask for attribution.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nEmbedded IP-to-country data: IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",
    "\n(https://creativecommons.org/licenses/by/4.0/).",
    "\nEmbedded registered-country data: (c) Number Resource Organization (NRO),",
    "\nhttps://www.nro.net/, CC BY 4.0.",
    "\nEmbedded IP-to-ASN data: RouteViews (https://www.routeviews.org/), DB-IP",
    "\n(IP Geolocation by DB-IP, https://db-ip.com) and the NRO, CC BY 4.0, with modifications.",
    "\nAll compiled by ip-location-db (https://github.com/sapics/ip-location-db). See",
    "\ngeoip/README.md."
);

#[derive(Parser, Debug)]
#[command(
    name = "egresswatch",
    version,
    long_version = LONG_VERSION,
    about = "Where does this device send its data? Replays captures, tags every remote with its \
             country and operator, checks a policy and reports unexpected egress.",
    after_help = EXIT_CODES,
)]
pub struct Cli {
    /// More log output on standard error (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log on standard error.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse capture files (pcap, pcapng, gzip; `-` for standard input).
    #[command(after_help = EXIT_CODES)]
    Replay(replay::ReplayArgs),
    /// Capture live on network interfaces beside a device under test (Linux AF_PACKET, or libpcap
    /// in a build with `--features libpcap`; needs root or CAP_NET_RAW). Stops on SIGINT/SIGTERM,
    /// --duration or --max-packets.
    #[command(after_help = live::LIVE_EXIT_CODES)]
    Live(live::LiveArgs),
    /// List the network interfaces `live` can capture on, with their state and addresses.
    Interfaces(interfaces::InterfacesArgs),
    /// Print what the GeoIP databases say about addresses, one JSON object per address.
    #[command(
        after_help = "Exit codes:\n  0  every address was looked up\n  2  an argument is not an IP address, or a database could not be opened"
    )]
    Lookup(lookup::LookupArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Build MaxMind DB files from CSV ranges; show the databases in use.
    #[command(subcommand)]
    Geoip(geoip::GeoipCommand),
}

/// Options that choose the policy: a file, one-liners, or the embedded default.
#[derive(Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Policy file (TOML, see docs/policy.md). Without it and without one-liners, the embedded
    /// default policy is used.
    #[arg(short, long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Alert on traffic to these countries or groups (comma-separated, e.g. CN,RU).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub deny_country: Vec<String>,
    /// Alert on traffic to any country outside these (and the home set), e.g. BE,DE or EU.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub allow_country: Vec<String>,
    /// The home country set, e.g. BE.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub home: Vec<String>,
    /// Allow only these DNS resolvers (address, CIDR or name; repeatable or comma-separated):
    /// queries to any other resolver raise `resolver-not-allowed`. Adds to the policy's
    /// `[resolvers] allowed`.
    #[arg(long = "resolver", value_name = "ADDR", value_delimiter = ',')]
    pub resolver: Vec<String>,
}

impl PolicyArgs {
    /// The policy these options describe. One-liners without `--policy` start from an empty
    /// policy: they are the whole policy.
    pub fn load(&self) -> Result<Policy, Failure> {
        let cli = CliRules {
            deny_countries: self.deny_country.clone(),
            allow_countries: self.allow_country.clone(),
            home: self.home.clone(),
            resolvers: self.resolver.clone(),
        };
        // `--home` only adjusts a policy; the rule one-liners replace the embedded default.
        let one_liners = !(cli.deny_countries.is_empty() && cli.allow_countries.is_empty());
        Ok(match &self.policy {
            Some(path) => Policy::from_file_with_cli(path, &cli)?,
            None if one_liners => Policy::empty().with_cli(&cli)?,
            None => Policy::embedded_default().with_cli(&cli)?,
        })
    }
}

/// Options that choose the GeoIP databases.
#[derive(Args, Debug, Clone)]
pub struct GeoipArgs {
    /// Use this MaxMind-format database instead of the embedded one (repeatable; for each field
    /// the first database that has it answers).
    #[arg(long = "geoip-db", value_name = "PATH")]
    pub geoip_db: Vec<PathBuf>,
    /// A lab overlay: CSV rows `cidr,country,asn,org,label` that win over the databases (policy
    /// geoip_overrides still win over it). Repeatable; the first overlay that has a field answers.
    #[arg(long = "geoip-overlay", value_name = "FILE")]
    pub geoip_overlay: Vec<PathBuf>,
    /// Warn about databases built more than this many days ago.
    #[arg(
        long = "geoip-max-age-days",
        visible_alias = "max-age-days",
        value_name = "DAYS",
        default_value_t = geo::GEOIP_MAX_AGE_DAYS_DEFAULT
    )]
    pub geoip_max_age_days: u64,
}

impl Default for GeoipArgs {
    fn default() -> GeoipArgs {
        GeoipArgs {
            geoip_db: Vec::new(),
            geoip_overlay: Vec::new(),
            geoip_max_age_days: geo::GEOIP_MAX_AGE_DAYS_DEFAULT,
        }
    }
}

impl GeoipArgs {
    /// The resolver these options describe, with a warning in the log for each database older
    /// than `--geoip-max-age-days`.
    pub fn open(&self) -> Result<Resolver, Failure> {
        let resolver = self.open_quietly()?;
        for (db, age) in self.stale(&resolver) {
            tracing::warn!(
                "GeoIP database {} was built {age} days ago (more than {} days): its answers may \
                 be out of date; update it (see geoip/README.md) or raise --geoip-max-age-days",
                db.name,
                self.geoip_max_age_days
            );
        }
        Ok(resolver)
    }

    /// [`GeoipArgs::open`] without the warnings.
    pub fn open_quietly(&self) -> Result<Resolver, Failure> {
        let mut resolver = if self.geoip_db.is_empty() {
            Resolver::embedded()?
        } else {
            Resolver::open(&self.geoip_db)?
        };
        if !self.geoip_overlay.is_empty() {
            let overlays = self
                .geoip_overlay
                .iter()
                .map(|path| Overlay::load(path))
                .collect::<Result<Vec<_>, _>>()?;
            resolver.set_overlays(overlays);
        }
        Ok(resolver)
    }

    /// The databases of `resolver` older than `--geoip-max-age-days`, with their age in days.
    pub fn stale<'r>(&self, resolver: &'r Resolver) -> Vec<(&'r geo::DatabaseInfo, u64)> {
        geo::stale_databases(
            resolver.databases(),
            geo::now_epoch(),
            self.geoip_max_age_days,
        )
    }
}

/// When to colour the terminal view.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// The `--fail-on` threshold: `None` for `never`.
#[derive(Clone, Copy, Debug)]
pub struct FailOn(Option<Severity>);

impl FailOn {
    /// Whether a run whose most severe alert was `max` fails (exit code 1).
    pub fn failed(self, max: Option<Severity>) -> bool {
        matches!((self.0, max), (Some(threshold), Some(max)) if max >= threshold)
    }
}

/// Parses `--fail-on`: a severity or `never`.
pub fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(FailOn(None));
    }
    s.parse().map(|sev| FailOn(Some(sev))).map_err(|_| {
        format!("unknown severity {s:?}: use info, low, medium, high, critical or never")
    })
}

/// The terminal view on standard output, or on standard error when the JSON takes standard
/// output; coloured per `--color` (auto: a terminal and no NO_COLOR).
pub fn terminal_sink(color: ColorChoice, show_alerts: bool, to_stderr: bool) -> Box<dyn Sink> {
    let is_tty = if to_stderr {
        io::stderr().is_terminal()
    } else {
        io::stdout().is_terminal()
    };
    let colour = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
    };
    if to_stderr {
        Box::new(
            Terminal::new(io::stderr(), "standard error".to_owned(), colour)
                .show(show_alerts, true),
        )
    } else {
        Box::new(
            Terminal::new(io::stdout(), "standard output".to_owned(), colour)
                .show(show_alerts, true),
        )
    }
}

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Geoip(#[from] GeoipError),
    #[error("{0}")]
    Capture(#[from] CaptureError),
    #[error("cannot write {0}")]
    Output(#[from] SinkError),
    #[error("{0}")]
    Baseline(#[from] egresswatch::routes::BaselineError),
    #[error("no capture file found in {0}")]
    NoInput(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Capture(_) | Failure::NoInput(_) => 3,
            _ => 2,
        }
    }
}
