//! GeoIP: the country and operator behind a remote address.
//!
//! This stage owns opening MaxMind-format databases (the embedded default or files given by the
//! user), reading the common record layouts, lab overrides that win over every database, and a
//! per-address cache so each remote is looked up once. Non-public addresses never get a country.
//!
//! Guarantees:
//! - Opening a file checks it (metadata, probe look-ups, a bounded walk of the search tree, record
//!   layout) and refuses a damaged or unsuitable database with a [`GeoipError`] naming the file and
//!   saying what to do. Nothing here panics on any database content or address.
//! - A look-up that fails at run time is counted ([`Resolver::lookup_errors`]) and gives no
//!   answer from that database; the other databases are still asked.
//! - For each field group (country, registered country, ASN with its organisation) the first
//!   database in order that has it answers, and [`GeoInfo`] records which one.
//! - Overrides win over every database, for any address, longest prefix first; lab overlays
//!   ([`Overlay`]) come next, in the order given, then the databases.
//! - Memory is bounded: the cache holds at most [`GEOIP_CACHE_MAX_ENTRIES`] addresses.
//!
//! Left to others: which databases to use (CLI/config), what a country means (policy).

mod database;
mod overlay;
mod overrides;
mod record;
mod special;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;

use database::Database;
use overrides::OverrideTable;

pub use database::{DATABASE_MAX_BYTES, DATABASE_WALK_MAX_NETWORKS};
pub use overlay::{OVERLAY_DATABASE_TYPE, OVERLAY_MAX_BYTES, OVERLAY_NAME_PREFIX, Overlay};
pub use special::is_public;

/// The embedded default country database: DB-IP's IP to Country Lite, as packaged by ip-location-db
/// (see geoip/README.md for provenance, licence and attribution). It geolocates: it says where a
/// server stands, not where its block is registered.
static EMBEDDED_DATABASE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/geoip/dbip-country.mmdb"
));

/// How the embedded database is named in [`DatabaseInfo::name`].
pub const EMBEDDED_DATABASE_NAME: &str = "embedded:dbip-country.mmdb";

/// The embedded ASN database: ip-location-db's `asn` CSV (RouteViews, the RIRs and DB-IP), built
/// with [`writer`] in the GeoLite2-ASN layout (see geoip/README.md).
static EMBEDDED_ASN_DATABASE: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/asn.mmdb"));

/// How the embedded ASN database is named in [`DatabaseInfo::name`].
pub const EMBEDDED_ASN_DATABASE_NAME: &str = "embedded:asn.mmdb";

/// The embedded registered-country database: ip-location-db's `asn-country` CSV (the RIRs'
/// delegations), built with [`writer`] into `registered_country` only (see geoip/README.md).
static EMBEDDED_REGISTERED_DATABASE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/geoip/asn-country.mmdb"
));

/// How the embedded registered-country database is named in [`DatabaseInfo::name`].
pub const EMBEDDED_REGISTERED_DATABASE_NAME: &str = "embedded:asn-country.mmdb";

/// The databases [`Resolver::embedded`] opens, in look-up order.
const EMBEDDED_DATABASES: [(&str, &[u8]); 3] = [
    (EMBEDDED_DATABASE_NAME, EMBEDDED_DATABASE),
    (EMBEDDED_ASN_DATABASE_NAME, EMBEDDED_ASN_DATABASE),
    (
        EMBEDDED_REGISTERED_DATABASE_NAME,
        EMBEDDED_REGISTERED_DATABASE,
    ),
];

/// A database older than this many days (by its `build_epoch`) is reported as stale, by
/// `geoip info` and at the start of a replay, unless the user gives another limit.
pub const GEOIP_MAX_AGE_DAYS_DEFAULT: u64 = 180;

const SECONDS_PER_DAY: u64 = 86_400;

/// How the overrides are named in [`DatabaseInfo::name`].
pub const OVERRIDES_NAME: &str = "overrides";

/// The [`DatabaseInfo::database_type`] of the overrides entry.
pub const OVERRIDES_DATABASE_TYPE: &str = "egresswatch-overrides";

/// Most addresses the cache remembers. When full it is emptied (and the clear counted): cheaper
/// than tracking recency, and a scan that fills it gains nothing from keeping old entries.
/// About 100 bytes per entry, so ~25 MiB at most.
pub const GEOIP_CACHE_MAX_ENTRIES: usize = 1 << 18;

/// Most database files one resolver opens; [`GeoInfo`] indexes them with a `u16`.
pub const GEOIP_MAX_DATABASES: usize = 64;

/// Most distinct organisation names kept interned; when full the set is emptied (names already
/// handed out stay valid).
const AS_ORG_INTERN_MAX_ENTRIES: usize = 1 << 16;

/// An ISO 3166-1 alpha-2 country code, always two ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts two ASCII letters in either case; anything else is `None`.
    pub fn new(code: &str) -> Option<CountryCode> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    /// The code as text, e.g. `"CN"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII capitals by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the databases say about one address. Every field is optional: no record is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// Where the address is geolocated.
    pub country: Option<CountryCode>,
    /// Where the address block is registered, where the database says.
    pub registered_country: Option<CountryCode>,
    /// The autonomous system announcing the address.
    pub asn: Option<u32>,
    /// The organisation behind `asn`.
    pub as_org: Option<Arc<str>>,
    /// Index into [`Resolver::databases`] of the database that gave the country.
    pub country_source: Option<u16>,
    /// Index into [`Resolver::databases`] of the database that gave the ASN.
    pub asn_source: Option<u16>,
    /// Index into [`Resolver::databases`] of the database that gave the registered country.
    pub registered_country_source: Option<u16>,
    /// The label of the overlay row that answered any field, if it has one.
    pub label: Option<Arc<str>>,
}

/// A lab override: addresses in `net` get these answers before any database is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoOverride {
    pub net: IpNet,
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
}

/// A database in use, as recorded in every run's summary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DatabaseInfo {
    /// The file path, `embedded:<file>` for the built-in database, or `overrides`.
    pub name: String,
    /// The database's own `database_type` metadata, e.g. `GeoLite2-Country`.
    pub database_type: String,
    /// Build time from the metadata, seconds since the Unix epoch; 0 for the overrides.
    pub build_epoch: u64,
    /// 4 or 6 from the metadata; `None` for the overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u16>,
    /// Search-tree nodes from the metadata; `None` for the overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_count: Option<u32>,
    /// Bits per search-tree record (24, 28 or 32); `None` for the overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_size: Option<u16>,
    /// Size of the database in bytes; `None` for the overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

impl DatabaseInfo {
    /// Whether this entry is a database file (embedded or given), not overrides or an overlay.
    pub fn is_database(&self) -> bool {
        self.node_count.is_some()
    }

    /// Whole days from the build date to `now` (seconds since the Unix epoch); `None` for
    /// overrides and overlays, and 0 for a build date in the future.
    pub fn age_days(&self, now: u64) -> Option<u64> {
        self.is_database()
            .then(|| now.saturating_sub(self.build_epoch) / SECONDS_PER_DAY)
    }

    fn overrides() -> DatabaseInfo {
        DatabaseInfo {
            name: OVERRIDES_NAME.to_owned(),
            database_type: OVERRIDES_DATABASE_TYPE.to_owned(),
            build_epoch: 0,
            ip_version: None,
            node_count: None,
            record_size: None,
            size_bytes: None,
        }
    }
}

/// Why a database could not be used. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GeoipError {
    /// Any other failure to open a database.
    #[error("{path}: {message}")]
    Open { path: String, message: String },
    /// The file could not be read.
    #[error("{path}: cannot read the GeoIP database: {source}; check the path and its permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`DATABASE_MAX_BYTES`].
    #[error(
        "{path}: larger than any GeoIP database egresswatch accepts ({max_bytes} bytes); check \
         that this is a .mmdb file"
    )]
    TooLarge {
        path: String,
        /// The size read, which stops one byte past `max_bytes`.
        size_bytes: u64,
        max_bytes: u64,
    },
    /// The file is not in the MaxMind DB format at all.
    #[error(
        "{path}: not a MaxMind DB (.mmdb) file ({detail}); give a database in MaxMind DB format \
         such as GeoLite2-Country.mmdb, a DB-IP Lite or IPinfo .mmdb, not a CSV or compressed file \
         (unpack .tar.gz/.gz downloads first)"
    )]
    NotMaxMind { path: String, detail: String },
    /// The file is a MaxMind DB but damaged.
    #[error(
        "{path}: the MaxMind DB is corrupt: {detail}; download the database again (an interrupted \
         download or a truncated copy is the usual cause)"
    )]
    Corrupt { path: String, detail: String },
    /// The database has records, but none carries a field egresswatch reads.
    #[error(
        "{path}: a {database_type:?} database, whose records carry none of the fields egresswatch \
         reads ({fields}); give a country, city or ASN database instead (e.g. GeoLite2-Country, \
         GeoLite2-City, GeoLite2-ASN, DB-IP Lite country, IPinfo Lite)",
        fields = database::FIELDS_READ
    )]
    WrongType { path: String, database_type: String },
    /// The database holds no records at all.
    #[error("{path}: the {database_type:?} database has no records; give a database with data")]
    Empty { path: String, database_type: String },
    /// A lab overlay row is wrong (line 0: the file as a whole).
    #[error("{path}:{line}: {message}")]
    Overlay {
        path: String,
        line: u64,
        message: String,
    },
    /// More files than [`GEOIP_MAX_DATABASES`].
    #[error(
        "{count} GeoIP databases given; egresswatch uses at most {max}: drop the ones that add nothing"
    )]
    TooManyDatabases { count: usize, max: usize },
}

/// Counters a resolver keeps, for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeoipStats {
    /// Look-ups answered from the cache.
    pub cache_hits: u64,
    /// Look-ups that asked the overrides and databases.
    pub cache_misses: u64,
    /// Times the cache was full and emptied.
    pub cache_clears: u64,
    /// Database look-ups that failed (damaged records); each gave no answer.
    pub lookup_errors: u64,
}

/// Looks addresses up in the configured databases, with overrides first and a cache in front.
pub struct Resolver {
    /// What [`Resolver::databases`] returns: the overrides entry first when overrides are set,
    /// then one entry per overlay, then one entry per database in `readers`.
    databases: Vec<DatabaseInfo>,
    readers: Vec<Database>,
    overrides: OverrideTable,
    overlays: Vec<Overlay>,
    /// foldhash: the addresses come from the capture (seeded per process, as the flow index).
    cache: HashMap<IpAddr, GeoInfo, foldhash::fast::RandomState>,
    org_names: HashSet<Arc<str>>,
    stats: GeoipStats,
}

impl Resolver {
    /// The databases compiled into the binary: country ([`EMBEDDED_DATABASE_NAME`]), ASN and
    /// organisation ([`EMBEDDED_ASN_DATABASE_NAME`]), registered country
    /// ([`EMBEDDED_REGISTERED_DATABASE_NAME`]), in that order.
    ///
    /// Cheap (a few milliseconds): reads the metadata and nothing else. The embedded databases
    /// are checked by this module's tests instead.
    pub fn embedded() -> Result<Resolver, GeoipError> {
        let readers = EMBEDDED_DATABASES
            .iter()
            .map(|(name, bytes)| Database::from_static(name, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resolver::with_databases(readers))
    }

    /// Opens database files in order; for each field the first database that has it answers.
    ///
    /// Each file is checked before use (see [`GeoipError`] for what is refused). With no paths,
    /// this is [`Resolver::embedded`].
    pub fn open(paths: &[PathBuf]) -> Result<Resolver, GeoipError> {
        if paths.is_empty() {
            return Self::embedded();
        }
        if paths.len() > GEOIP_MAX_DATABASES {
            return Err(GeoipError::TooManyDatabases {
                count: paths.len(),
                max: GEOIP_MAX_DATABASES,
            });
        }
        let readers = paths
            .iter()
            .map(|path| Database::open(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resolver::with_databases(readers))
    }

    fn with_databases(readers: Vec<Database>) -> Resolver {
        Resolver {
            databases: readers.iter().map(|db| db.info().clone()).collect(),
            readers,
            overrides: OverrideTable::default(),
            overlays: Vec::new(),
            cache: HashMap::default(),
            org_names: HashSet::new(),
            stats: GeoipStats::default(),
        }
    }

    /// Installs lab overrides, which win over every database. Replaces earlier overrides and
    /// empties the cache. When any are set, [`Resolver::databases`] starts with an `overrides`
    /// entry, which override answers point at.
    pub fn set_overrides(&mut self, overrides: Vec<GeoOverride>) {
        if self.has_overrides() {
            self.databases.remove(0);
        }
        self.overrides = OverrideTable::new(overrides);
        if self.has_overrides() {
            self.databases.insert(0, DatabaseInfo::overrides());
        }
        self.cache.clear();
    }

    fn has_overrides(&self) -> bool {
        self.overrides.len() > 0
    }

    /// Installs lab overlays, which win over every database but not over the overrides; for each
    /// field the first overlay in order that has it answers. Replaces earlier overlays and
    /// empties the cache. [`Resolver::databases`] lists each as `overlay:FILE`, after the
    /// overrides entry.
    pub fn set_overlays(&mut self, overlays: Vec<Overlay>) {
        let first = usize::from(self.has_overrides());
        let old = self.overlays.len();
        self.databases
            .drain(first..first.saturating_add(old).min(self.databases.len()));
        let infos: Vec<DatabaseInfo> = overlays.iter().map(Overlay::info).collect();
        self.databases.splice(first..first, infos);
        self.overlays = overlays;
        self.cache.clear();
    }

    /// Networks held by each entry of [`Resolver::databases`], in the same order: for a database,
    /// the networks with data found by walking its search tree (up to
    /// [`DATABASE_WALK_MAX_NETWORKS`] networks visited, then `truncated`); for the overrides and
    /// overlays, their distinct networks. Walks every tree: for `geoip info`, not for start-up.
    pub fn network_counts(&self) -> Result<Vec<NetworkCount>, GeoipError> {
        let mut counts = Vec::with_capacity(self.databases.len());
        if self.has_overrides() {
            counts.push(NetworkCount {
                networks: self.overrides.len(),
                truncated: false,
            });
        }
        for overlay in &self.overlays {
            counts.push(NetworkCount {
                networks: overlay.networks(),
                truncated: false,
            });
        }
        for reader in &self.readers {
            let walk = reader.walk()?;
            counts.push(NetworkCount {
                networks: walk.with_data,
                truncated: walk.truncated,
            });
        }
        Ok(counts)
    }

    /// What is known about `ip`. Non-public addresses get an empty answer unless an override
    /// covers them. IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn lookup(&mut self, ip: IpAddr) -> GeoInfo {
        let ip = ip.to_canonical();
        if let Some(hit) = self.cache.get(&ip) {
            self.stats.cache_hits += 1;
            return hit.clone();
        }
        self.stats.cache_misses += 1;
        let info = self.resolve(ip);
        if self.cache.len() >= GEOIP_CACHE_MAX_ENTRIES {
            self.cache.clear();
            self.stats.cache_clears += 1;
        }
        self.cache.insert(ip, info.clone());
        info
    }

    /// Asks the overrides, then the overlays, then (for public addresses) the databases in order.
    fn resolve(&mut self, ip: IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        // The overrides entry is always first in `databases` when there are overrides; the
        // overlays follow it.
        let tables = std::iter::once(&self.overrides)
            .filter(|_| self.has_overrides())
            .chain(self.overlays.iter().map(Overlay::table));
        for (i, table) in tables.enumerate() {
            let Some(answer) = table.lookup(ip) else {
                continue;
            };
            let source = u16::try_from(i).ok();
            let mut used = false;
            if info.country_source.is_none() && answer.country.is_some() {
                info.country = answer.country;
                info.country_source = source;
                used = true;
            }
            if info.asn_source.is_none() && (answer.asn.is_some() || answer.as_org.is_some()) {
                info.asn = answer.asn;
                info.as_org.clone_from(&answer.as_org);
                info.asn_source = source;
                used = true;
            }
            if used && info.label.is_none() {
                info.label.clone_from(&answer.label);
            }
        }
        if !is_public(ip) {
            return info;
        }
        let first_index = usize::from(self.has_overrides()) + self.overlays.len();
        let mut registered_done = false;
        for (i, database) in self.readers.iter().enumerate() {
            if info.country_source.is_some() && info.asn_source.is_some() && registered_done {
                break;
            }
            let fields = match database.lookup(ip) {
                Ok(Some(fields)) => fields,
                Ok(None) => continue,
                Err(_) => {
                    self.stats.lookup_errors += 1;
                    continue;
                }
            };
            let source = i
                .checked_add(first_index)
                .and_then(|index| u16::try_from(index).ok());
            if info.country_source.is_none() && fields.country.is_some() {
                info.country = fields.country;
                info.country_source = source;
            }
            if !registered_done && fields.registered_country.is_some() {
                info.registered_country = fields.registered_country;
                info.registered_country_source = source;
                registered_done = true;
            }
            if info.asn_source.is_none() && fields.has_as() {
                info.asn = fields.asn;
                info.as_org = fields.as_org.map(|name| intern(&mut self.org_names, name));
                info.asn_source = source;
            }
        }
        info
    }

    /// The databases in use, in lookup order.
    pub fn databases(&self) -> &[DatabaseInfo] {
        &self.databases
    }

    /// Database look-ups that failed at run time (each gave no answer).
    pub fn lookup_errors(&self) -> u64 {
        self.stats.lookup_errors
    }

    /// Look-ups answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.stats.cache_hits
    }

    /// Look-ups that missed the cache.
    pub fn cache_misses(&self) -> u64 {
        self.stats.cache_misses
    }

    /// Times the cache filled up and was emptied.
    pub fn cache_clears(&self) -> u64 {
        self.stats.cache_clears
    }

    /// All counters at once.
    pub fn stats(&self) -> GeoipStats {
        self.stats
    }
}

/// How many networks one entry of [`Resolver::databases`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NetworkCount {
    /// Networks with data (for a database, found by walking its search tree).
    pub networks: usize,
    /// Whether the walk stopped at [`DATABASE_WALK_MAX_NETWORKS`] networks visited, so that
    /// `networks` is a lower bound.
    pub truncated: bool,
}

/// The databases among `databases` built more than `max_age_days` whole days before `now`
/// (seconds since the Unix epoch), with their age in days. Overrides and overlays have no age.
pub fn stale_databases(
    databases: &[DatabaseInfo],
    now: u64,
    max_age_days: u64,
) -> Vec<(&DatabaseInfo, u64)> {
    databases
        .iter()
        .filter_map(|db| db.age_days(now).map(|age| (db, age)))
        .filter(|(_, age)| *age > max_age_days)
        .collect()
}

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One shared allocation per distinct organisation name.
fn intern(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(known) = names.get(name) {
        return Arc::clone(known);
    }
    if names.len() >= AS_ORG_INTERN_MAX_ENTRIES {
        names.clear();
    }
    let shared: Arc<str> = Arc::from(name);
    names.insert(Arc::clone(&shared));
    shared
}

#[cfg(test)]
mod tests;
