//! One opened MaxMind-format database: opening, checking at open, and per-address lookup.
//!
//! Files given by the user are read into memory (no memory map, so a file changed underneath cannot
//! crash the process) and checked before use: the MaxMind DB metadata must be found and be
//! consistent with the file, the data-section separator must be intact, a set of probe addresses
//! must decode, and a bounded walk of the search tree must decode every record it reaches and find
//! at least one field egresswatch reads. The embedded database is opened without the walk (start-up
//! must stay fast); a unit test runs the same checks on it instead.
//!
//! Format: MaxMind DB File Format Specification 2.0,
//! <https://maxmind.github.io/MaxMind-DB/>.

use std::borrow::Cow;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use maxminddb::{MaxMindDbError, Reader, WithinOptions};

use super::record::{Fields, Record};
use super::{DatabaseInfo, GeoipError};

/// The bytes behind a reader: borrowed for the embedded database, owned for files.
type Source = Cow<'static, [u8]>;

/// Largest database file accepted, in bytes. The biggest commercial MaxMind databases are a few
/// hundred MiB; anything larger is almost certainly not a database and would be read into memory.
pub const DATABASE_MAX_BYTES: u64 = 2 << 30;

/// Most networks visited by the search-tree walk at open. Covers the embedded database
/// (about 1.3 M networks) completely; bigger databases are checked up to this many networks, and
/// any damage beyond shows up as counted lookup errors.
pub const DATABASE_WALK_MAX_NETWORKS: usize = 1 << 21;

/// Slots of the walk's memory of decoded records (8 bytes each).
const WALK_DECODED_SLOTS: usize = 1 << 14;

/// "\xAB\xCD\xEFMaxMind.com", the marker that starts the metadata section (spec, "Database
/// Metadata").
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// The metadata section, marker included, is at most 128 KiB (spec, "Database Metadata").
const METADATA_MAX_BYTES: usize = 128 * 1024;

/// The data section separator is 16 zero bytes after the search tree (spec, "Data Section
/// Separator").
const DATA_SECTION_SEPARATOR_BYTES: usize = 16;

/// Addresses looked up at open to catch damage early: well-known resolvers and
/// the first and last addresses of each family.
const PROBES_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(1, 1, 1, 1),
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(81, 2, 69, 160),
    Ipv4Addr::new(114, 114, 114, 114),
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
];
const PROBES_V6: [Ipv6Addr; 4] = [
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    Ipv6Addr::new(0x2a02, 0xcf40, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
    Ipv6Addr::new(
        0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
    ),
];

/// The fields egresswatch reads, named in error messages.
pub const FIELDS_READ: &str = "country.iso_code, registered_country.iso_code, country_code, \
     country, asn, as_name, autonomous_system_number, autonomous_system_organization";

/// An opened database.
pub(crate) struct Database {
    reader: Reader<Source>,
    info: DatabaseInfo,
}

/// What the walk at open found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WalkSummary {
    /// Networks visited, with or without data.
    pub networks: usize,
    /// Records decoded (a record shared by many networks is mostly decoded once).
    pub records: usize,
    /// Records with at least one field egresswatch reads.
    pub known: usize,
    /// Networks with a record.
    pub with_data: usize,
    /// Whether the walk stopped at [`DATABASE_WALK_MAX_NETWORKS`].
    pub truncated: bool,
}

impl Database {
    /// Opens bytes compiled into the binary, without walking the tree.
    pub fn from_static(name: &str, bytes: &'static [u8]) -> Result<Database, GeoipError> {
        let size = bytes.len();
        let reader =
            Reader::from_source(Cow::Borrowed(bytes)).map_err(|e| GeoipError::Corrupt {
                path: name.to_owned(),
                detail: e.to_string(),
            })?;
        Ok(Database::new(reader, name.to_owned(), size))
    }

    /// Opens and checks a database file.
    pub fn open(path: &Path) -> Result<Database, GeoipError> {
        let name = path.display().to_string();
        let read_error = |source| GeoipError::Read {
            path: name.clone(),
            source,
        };
        // Read at most one byte past the limit, so that a device or a huge file is refused
        // without being read whole.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(DATABASE_MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > DATABASE_MAX_BYTES {
            return Err(GeoipError::TooLarge {
                path: name,
                size_bytes: size,
                max_bytes: DATABASE_MAX_BYTES,
            });
        }
        let database = Database::from_bytes(name, bytes)?;
        match database.check() {
            // Before blaming the type or the emptiness, make sure the tree is sound: a broken
            // tree reaches records that are not the database's (or none).
            Err(e @ (GeoipError::WrongType { .. } | GeoipError::Empty { .. })) => {
                let info = database.info();
                let (nodes, record_size) =
                    (info.node_count.unwrap_or(0), info.record_size.unwrap_or(0));
                let bytes = std::fs::read(path).unwrap_or_default();
                match search_tree_problem(&bytes, nodes, record_size) {
                    Some(detail) => {
                        Err(database.corrupt(format!("its search tree is corrupt: {detail}")))
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(_) => Ok(database),
        }
    }

    /// Opens owned bytes, checking that they look like a MaxMind DB and that the metadata
    /// agrees with the file; does not walk the tree.
    fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Database, GeoipError> {
        let tail_start = bytes.len().saturating_sub(METADATA_MAX_BYTES);
        let has_marker = bytes.get(tail_start..).is_some_and(|tail| {
            tail.windows(METADATA_MARKER.len())
                .any(|w| w == METADATA_MARKER)
        });
        if !has_marker {
            return Err(GeoipError::NotMaxMind {
                path: name,
                detail: "no MaxMind DB metadata marker in the last 128 KiB".to_owned(),
            });
        }
        let unusable = |e: MaxMindDbError| GeoipError::Corrupt {
            path: name.clone(),
            detail: format!("its metadata cannot be used: {e}"),
        };
        let (node_count, record_size) = {
            let borrowed = Reader::from_source(bytes.as_slice()).map_err(unusable)?;
            let metadata = borrowed.metadata();
            (metadata.node_count, metadata.record_size)
        };
        check_separator(&bytes, node_count, record_size).map_err(|detail| GeoipError::Corrupt {
            path: name.clone(),
            detail: detail.to_owned(),
        })?;
        let size = bytes.len();
        let reader = Reader::from_source(Cow::Owned(bytes)).map_err(unusable)?;
        Ok(Database::new(reader, name, size))
    }

    fn new(reader: Reader<Source>, name: String, size: usize) -> Database {
        let metadata = reader.metadata();
        let info = DatabaseInfo {
            name,
            database_type: metadata.database_type.clone(),
            build_epoch: metadata.build_epoch,
            ip_version: Some(metadata.ip_version),
            node_count: Some(metadata.node_count),
            record_size: Some(metadata.record_size),
            size_bytes: u64::try_from(size).ok(),
        };
        Database { reader, info }
    }

    /// How this database is described in a run's summary.
    pub fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    /// What the database says about `ip`. `Ok(None)`: no record, or an IPv6 address asked of an
    /// IPv4-only database.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<Fields<'_>>, MaxMindDbError> {
        Ok(self.record(ip)?.map(|record| record.fields()))
    }

    fn record(&self, ip: IpAddr) -> Result<Option<Record<'_>>, MaxMindDbError> {
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        self.reader.lookup(ip)?.decode::<Record<'_>>()
    }

    fn corrupt(&self, detail: String) -> GeoipError {
        GeoipError::Corrupt {
            path: self.info.name.clone(),
            detail,
        }
    }

    /// Every check of a file at open, after the metadata: probes, walk, record layout.
    pub fn check(&self) -> Result<WalkSummary, GeoipError> {
        self.probe()?;
        let walk = self.walk()?;
        if walk.records == 0 {
            return Err(GeoipError::Empty {
                path: self.info.name.clone(),
                database_type: self.info.database_type.clone(),
            });
        }
        if walk.known == 0 {
            return Err(GeoipError::WrongType {
                path: self.info.name.clone(),
                database_type: self.info.database_type.clone(),
            });
        }
        Ok(walk)
    }

    /// Looks up the probe addresses and decodes their records.
    fn probe(&self) -> Result<(), GeoipError> {
        let v6 = self.reader.metadata().ip_version == 6;
        let v4_probes = PROBES_V4.iter().map(|&a| IpAddr::V4(a));
        let v6_probes = PROBES_V6.iter().map(|&a| IpAddr::V6(a)).filter(|_| v6);
        for ip in v4_probes.chain(v6_probes) {
            if let Err(e) = self.record(ip) {
                return Err(self.corrupt(format!("looking up {ip} fails: {e}")));
            }
        }
        Ok(())
    }

    /// Walks the search tree, up to [`DATABASE_WALK_MAX_NETWORKS`] networks, decoding each record
    /// reached.
    pub fn walk(&self) -> Result<WalkSummary, GeoipError> {
        let options = WithinOptions::default().include_networks_without_data();
        let networks = self
            .reader
            .networks(options)
            .map_err(|e| self.corrupt(format!("its search tree cannot be walked: {e}")))?;
        let mut summary = WalkSummary::default();
        // Offsets of records already decoded, direct-mapped by offset: records are shared by many
        // networks, so most repeats are skipped without an unbounded set.
        let mut decoded = vec![usize::MAX; WALK_DECODED_SLOTS];
        for network in networks {
            if summary.networks >= DATABASE_WALK_MAX_NETWORKS {
                summary.truncated = true;
                break;
            }
            summary.networks += 1;
            let network =
                network.map_err(|e| self.corrupt(format!("its search tree is broken: {e}")))?;
            let Some(offset) = network.offset() else {
                continue;
            };
            summary.with_data += 1;
            let slot = decoded.get_mut(offset % WALK_DECODED_SLOTS);
            match slot {
                Some(seen) if *seen == offset => continue,
                Some(seen) => *seen = offset,
                None => {}
            }
            let record = network.decode::<Record<'_>>().map_err(|e| {
                let at = network
                    .network()
                    .map_or_else(|_| "a network".to_owned(), |n| n.to_string());
                self.corrupt(format!("the record for {at} cannot be read: {e}"))
            })?;
            summary.records += 1;
            if record.is_some_and(|r| r.has_known_field()) {
                summary.known += 1;
            }
        }
        Ok(summary)
    }
}

/// Nodes of the search tree visited by [`search_tree_problem`], at most (a bitset of them costs
/// node count / 8 bytes).
pub const TREE_CHECK_MAX_NODES: u32 = 64 * 1024 * 1024;

/// Reads the search tree as the format defines it (spec, "Search Tree Section"), from the root,
/// and says what is wrong with it: a record that points into the 16-byte separator or past the
/// data section, or nodes the root never reaches (the metadata's node count does not describe
/// the tree). `None` when it is sound, or too large to check.
pub fn search_tree_problem(bytes: &[u8], node_count: u32, record_size: u16) -> Option<String> {
    let node_bytes = usize::from(record_size) / 4;
    if !matches!(record_size, 24 | 28 | 32) || node_count == 0 || node_count > TREE_CHECK_MAX_NODES
    {
        return None;
    }
    let n = usize::try_from(node_count).ok()?;
    let tree_len = n.checked_mul(node_bytes)?;
    let metadata_at = bytes
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)?;
    let data_len = metadata_at.checked_sub(tree_len.checked_add(DATA_SECTION_SEPARATOR_BYTES)?)?;
    let record = |node: usize, right: bool| -> Option<u64> {
        let b = bytes.get(node * node_bytes..(node + 1) * node_bytes)?;
        let v = match (record_size, right) {
            (24, false) => u32::from_be_bytes([0, b[0], b[1], b[2]]),
            (24, true) => u32::from_be_bytes([0, b[3], b[4], b[5]]),
            (28, false) => u32::from_be_bytes([b[3] >> 4, b[0], b[1], b[2]]),
            (28, true) => u32::from_be_bytes([b[3] & 0x0f, b[4], b[5], b[6]]),
            (_, false) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            (_, true) => u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        };
        Some(u64::from(v))
    };
    let nodes = n as u64;
    let separator = DATA_SECTION_SEPARATOR_BYTES as u64;
    let mut seen = vec![0u64; n.div_ceil(64)];
    let mut stack = vec![0usize];
    let mut reached = 0u64;
    while let Some(node) = stack.pop() {
        let (word, bit) = (node / 64, 1u64 << (node % 64));
        if seen.get(node / 64).is_some_and(|w| w & bit != 0) {
            continue;
        }
        if let Some(w) = seen.get_mut(word) {
            *w |= bit;
        }
        reached += 1;
        for right in [false, true] {
            let v = record(node, right)?;
            if v < nodes {
                stack.push(v as usize);
            } else if v > nodes && v < nodes + separator {
                return Some(format!(
                    "node {node} points into the 16-byte separator after the tree (record {v})"
                ));
            } else if v >= nodes + separator + data_len as u64 {
                return Some(format!(
                    "node {node} points past the data section (record {v}, the data section \
                     holds {data_len} bytes)"
                ));
            }
        }
    }
    (reached < nodes)
        .then(|| format!("the metadata counts {nodes} nodes but the root reaches only {reached}"))
}

/// Checks that the 16 bytes between the search tree and the data section are zero, which catches
/// a `node_count` or `record_size` that does not match the file.
fn check_separator(bytes: &[u8], node_count: u32, record_size: u16) -> Result<(), &'static str> {
    // The tree is node_count × record_size × 2 bits = node_count × record_size / 4 bytes (spec,
    // "Search Tree Section").
    let separator = usize::try_from(node_count)
        .ok()
        .and_then(|nodes| nodes.checked_mul(usize::from(record_size)))
        .map(|bits| bits / 4)
        .and_then(|start| bytes.get(start..start.checked_add(DATA_SECTION_SEPARATOR_BYTES)?));
    match separator {
        Some(separator) if separator.iter().all(|&b| b == 0) => Ok(()),
        Some(_) => Err(
            "the 16-byte separator after the search tree is not zero: the metadata's \
             node_count or record_size does not match the file",
        ),
        None => Err("the search tree and its separator do not fit in the file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_tree_check_finds_unreachable_nodes_and_stray_records() {
        // Two 24-bit nodes: the root's left child is node 1, both of node 1's records and the
        // root's right record point at data offset 0. Then the separator, 1 byte of data, the
        // metadata marker.
        let tree = |root_right: u32, node_count: u32| {
            let mut b = Vec::new();
            let rec = |v: u32| v.to_be_bytes()[1..].to_vec();
            let data = node_count + 16;
            b.extend(rec(1));
            b.extend(rec(root_right));
            b.extend(rec(data));
            b.extend(rec(data));
            b.extend([0u8; 16]);
            b.push(0xe0); // an empty map
            b.extend_from_slice(METADATA_MARKER);
            b
        };
        assert_eq!(search_tree_problem(&tree(18, 2), 2, 24), None);
        let stray = search_tree_problem(&tree(5, 2), 2, 24).unwrap();
        assert!(stray.contains("separator"), "{stray}");
        let past = search_tree_problem(&tree(40, 2), 2, 24).unwrap();
        assert!(past.contains("past the data section"), "{past}");
        // The root's left record pointing at the root itself: node 1 is never reached.
        let mut cyclic = tree(18, 2);
        cyclic[..3].copy_from_slice(&[0, 0, 0]);
        let lost = search_tree_problem(&cyclic, 2, 24).unwrap();
        assert!(lost.contains("reaches only 1"), "{lost}");
    }

    #[test]
    fn separator_must_be_zero_and_inside_the_file() {
        // 2 nodes of 24-bit records = 12 bytes of tree, then 16 zero bytes.
        let mut bytes = vec![0xFF; 12];
        bytes.extend_from_slice(&[0; 16]);
        bytes.push(0xAA);
        assert_eq!(check_separator(&bytes, 2, 24), Ok(()));
        assert!(check_separator(&bytes, 3, 24).is_err());
        assert!(check_separator(&bytes, 2, 32).is_err());
        assert!(check_separator(&bytes, u32::MAX, 32).is_err());
        assert!(check_separator(&[], 1, 24).is_err());
    }

    #[test]
    fn ipv6_asked_of_an_ipv4_database_is_no_answer() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/mmdb/test-data/MaxMind-DB-test-ipv4-24.mmdb"
        );
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("note: {path} is missing; skipping this test");
            return;
        };
        let database = Database::from_bytes(path.to_owned(), bytes).unwrap();
        assert_eq!(database.info().ip_version, Some(4));
        assert_eq!(
            database.lookup("2001:4860::1".parse().unwrap()).unwrap(),
            None
        );
        assert!(database.lookup("1.1.1.1".parse().unwrap()).is_ok());
        // Its records are test maps without any field egresswatch reads.
        assert!(matches!(
            database.check(),
            Err(GeoipError::WrongType { .. })
        ));
    }
}
