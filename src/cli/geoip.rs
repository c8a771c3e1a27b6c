//! `egresswatch geoip`: build MaxMind DB files from CSV ranges, and show the databases in use.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};

use egresswatch::event::Rfc3339;
use egresswatch::geoip::writer::csv::{self, Columns, CsvOptions, CsvStats, Layout};
use egresswatch::geoip::writer::{IpVersion, MmdbWriter};
use egresswatch::geoip::{self, DatabaseInfo, NetworkCount};

use super::{Failure, GeoipArgs};

#[derive(Subcommand, Debug)]
pub enum GeoipCommand {
    /// Build a MaxMind DB (.mmdb) file from CSV ranges (see docs/geoip.md).
    Build(BuildArgs),
    /// Show the GeoIP databases in use: name, type, build date, networks, size; warn about old
    /// ones.
    Info(InfoArgs),
}

/// The record layout to write, as named on the command line.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutArg {
    /// GeoLite2-Country style: country.iso_code, registered_country.iso_code.
    Country,
    /// GeoLite2-ASN style: autonomous_system_number, autonomous_system_organization.
    Asn,
    /// Country and ASN fields in one record.
    Merged,
    /// IPinfo style: country_code, asn ("AS123"), as_name.
    Ipinfo,
}

impl From<LayoutArg> for Layout {
    fn from(arg: LayoutArg) -> Layout {
        match arg {
            LayoutArg::Country => Layout::Country,
            LayoutArg::Asn => Layout::Asn,
            LayoutArg::Merged => Layout::Merged,
            LayoutArg::Ipinfo => Layout::Ipinfo,
        }
    }
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// CSV file of `start,end,values…` or `cidr,values…` rows (repeatable; later rows win where
    /// networks overlap).
    #[arg(long = "input", value_name = "CSV", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Record layout to write.
    #[arg(long, value_enum)]
    pub layout: LayoutArg,
    /// Where to write the database (replaced atomically).
    #[arg(long, value_name = "FILE.mmdb")]
    pub out: PathBuf,
    /// The database_type metadata (default: egresswatch-Country, -ASN, -Country-ASN, -ipinfo).
    #[arg(long, value_name = "NAME")]
    pub database_type: Option<String>,
    /// Value columns by name with 0-based indexes, e.g. `country=2` or `asn=2,org=3`. Default:
    /// the layout's fields right after the range or CIDR.
    #[arg(long, value_name = "SPEC")]
    pub columns: Option<String>,
    /// The build_epoch metadata, seconds since the Unix epoch (default: now). Set it to the date
    /// of the data for a reproducible file whose age `geoip info` reports truthfully.
    #[arg(long, value_name = "SECONDS")]
    pub build_epoch: Option<u64>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub geoip: GeoipArgs,
    /// One JSON object per database instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: &GeoipCommand) -> Result<u8, Failure> {
    match cmd {
        GeoipCommand::Build(args) => build(args),
        GeoipCommand::Info(args) => info(args),
    }
}

fn build(args: &BuildArgs) -> Result<u8, Failure> {
    let started = Instant::now();
    let layout = Layout::from(args.layout);
    let columns = match &args.columns {
        Some(spec) => Columns::parse(spec, layout).map_err(|e| Failure::Usage(e.to_string()))?,
        None => Columns::defaults(),
    };
    let options = CsvOptions { layout, columns };
    let database_type = args
        .database_type
        .clone()
        .unwrap_or_else(|| layout.default_database_type().to_owned());
    let mut writer = MmdbWriter::new(database_type, IpVersion::V6);
    if let Some(epoch) = args.build_epoch {
        writer.build_epoch(epoch);
    }
    let mut stats = CsvStats::default();
    for input in &args.inputs {
        csv::read_file(input, &options, &mut writer, &mut stats)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let read_done = started.elapsed();
    let (bytes, built) = writer
        .build_with_stats()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    write_atomically(&args.out, &bytes)?;
    println!(
        "{}: {} rows, {} networks, {} distinct records, {} nodes of {} bits, {} bytes; read in \
         {:.2} s, built and written in {:.2} s",
        args.out.display(),
        stats.rows,
        stats.networks,
        built.records,
        built.node_count,
        built.record_size,
        bytes.len(),
        read_done.as_secs_f64(),
        started.elapsed().saturating_sub(read_done).as_secs_f64(),
    );
    Ok(0)
}

/// Writes a sibling temporary file, then renames it over `path`, so a reader never sees half a
/// database.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::Usage(format!(
            "cannot write {}: {e}; check the folder exists and is writable",
            path.display()
        ))
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// A database as `geoip info --json` prints it.
#[derive(serde::Serialize)]
struct InfoLine<'a> {
    #[serde(flatten)]
    info: &'a DatabaseInfo,
    build_date: String,
    /// Networks with data (walked), or the distinct networks of overrides and overlays.
    networks: Option<usize>,
    /// The walk stopped early: `networks` is a lower bound.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    networks_truncated: bool,
    /// Whole days since the build date; absent for overrides and overlays.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_days: Option<u64>,
    /// Older than `--max-age-days`.
    stale: bool,
}

fn build_date(info: &DatabaseInfo) -> String {
    let nanos = i64::try_from(info.build_epoch)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000));
    nanos.map_or_else(|| "unknown".to_owned(), |n| Rfc3339(n).to_string())
}

fn info(args: &InfoArgs) -> Result<u8, Failure> {
    let resolver = args.geoip.open_quietly()?;
    let counts = resolver.network_counts()?;
    let now = geoip::now_epoch();
    let max_age = args.geoip.geoip_max_age_days;
    let mut out = std::io::stdout().lock();
    for (i, database) in resolver.databases().iter().enumerate() {
        let count: Option<&NetworkCount> = counts.get(i);
        let age_days = database.age_days(now);
        let stale = age_days.is_some_and(|age| age > max_age);
        let line = if args.json {
            let line = InfoLine {
                info: database,
                build_date: build_date(database),
                networks: count.map(|c| c.networks),
                networks_truncated: count.is_some_and(|c| c.truncated),
                age_days,
                stale,
            };
            serde_json::to_string(&line).map_err(|e| Failure::Usage(e.to_string()))?
        } else {
            let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            let networks = count.map(|c| {
                if c.truncated {
                    format!("at least {} (walk stopped early)", c.networks)
                } else {
                    c.networks.to_string()
                }
            });
            let age = age_days.map_or_else(String::new, |a| format!(" ({a} days ago)"));
            let mut text = format!(
                "{}\n  database_type: {}\n  build date:    {}{age}\n  ip_version:    {}\n  \
                 node_count:    {}\n  record_size:   {}\n  networks:      {}\n  \
                 size:          {} bytes",
                database.name,
                database.database_type,
                build_date(database),
                show(database.ip_version.map(|v| v.to_string())),
                show(database.node_count.map(|v| v.to_string())),
                show(database.record_size.map(|v| v.to_string())),
                show(networks),
                show(database.size_bytes.map(|v| v.to_string())),
            );
            if stale {
                text.push_str(&format!(
                    "\n  warning:       built more than {max_age} days ago: its answers may be out \
                     of date; update it (see geoip/README.md)"
                ));
            }
            text
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}
