//! A MaxMind DB writer: builds `.mmdb` files in memory from networks and records.
//!
//! This module owns the search tree, the data section and the metadata of a MaxMind DB file
//! (format 2.0, <https://maxmind.github.io/MaxMind-DB/>), and, in [`csv`], turning CSV range files
//! into records of the layouts the resolver reads. It builds the lab overlays, the ASN database and
//! the fixtures tests need.
//!
//! Guarantees:
//! - [`MmdbWriter::build`] produces a file that the `maxminddb` crate, libmaxminddb and
//!   [`super::Resolver::open`] read back with exactly the answers inserted: every address gets the
//!   record of the last inserted network that covers it, or no record.
//! - **Overlaps: later wins.** Inserting a network replaces the record of every address it covers,
//!   whatever was inserted before (a larger or a smaller network); addresses outside it keep theirs.
//! - **IPv4 in an IPv6 database** sits at `::a.b.c.d/96+len` as the format describes ("IPv4
//!   addresses in an IPv6 tree"). There are **no aliases**: `::ffff:0:0/96` (IPv4-mapped) and
//!   `2002::/16` (6to4) are ordinary IPv6 space, so inserts there never disturb the IPv4 subtree.
//!   egresswatch's resolver looks IPv4-mapped addresses up as IPv4; other readers asked for
//!   `::ffff:a.b.c.d` get no answer. An IPv6 network that contains `::/96` also covers IPv4.
//! - Identical records are stored once; identical map keys, strings and sub-maps inside records
//!   are stored once and reached through pointers. The output is deterministic for a given
//!   sequence of inserts and build epoch.
//! - Nothing panics on any input; sizes beyond the format's limits or [`WRITER_MAX_NODES`] are a
//!   [`WriterError`].

pub mod csv;
mod encode;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use encode::DataWriter;

/// Most search-tree nodes a writer holds while inserting (16 bytes each, so 4 GiB at most). Far
/// above any real database: the full routing table of both families needs a few million.
pub const WRITER_MAX_NODES: usize = 1 << 28;

/// The 16 zero bytes between the search tree and the data section (spec, "Data Section
/// Separator").
const DATA_SECTION_SEPARATOR: [u8; 16] = [0; 16];

/// The marker that starts the metadata section (spec, "Database Metadata").
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// The format version written (spec, "binary_format_major_version" and "…minor…").
const BINARY_FORMAT_MAJOR_VERSION: u16 = 2;
const BINARY_FORMAT_MINOR_VERSION: u16 = 0;

/// Record sizes this writer chooses from, smallest first (spec, "Node Layout").
const RECORD_SIZES: [u16; 3] = [24, 28, 32];

/// A value in a database record: the data-section types egresswatch needs (spec, "Output Data
/// Section"). Maps keep their keys sorted, so equal records encode identically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Record {
    /// A map with UTF-8 string keys (type 7).
    Map(BTreeMap<String, Record>),
    /// An array (type 11).
    Array(Vec<Record>),
    /// A UTF-8 string (type 2).
    String(String),
    /// An unsigned 16-bit integer (type 5).
    U16(u16),
    /// An unsigned 32-bit integer (type 6).
    U32(u32),
    /// An unsigned 64-bit integer (type 9).
    U64(u64),
}

impl Record {
    /// A map from `(key, value)` pairs; a repeated key keeps the last value.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Record)>) -> Record {
        Record::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn string(text: impl Into<String>) -> Record {
        Record::String(text.into())
    }
}

/// Which address family the search tree is for (metadata `ip_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// An IPv4-only tree, 32 levels deep.
    V4,
    /// An IPv6 tree, 128 levels deep, with IPv4 at `::/96`.
    V6,
}

impl IpVersion {
    fn bits(self) -> u8 {
        match self {
            IpVersion::V4 => 32,
            IpVersion::V6 => 128,
        }
    }

    fn number(self) -> u16 {
        match self {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        }
    }
}

/// Why a database could not be written. Each message says what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriterError {
    /// An IPv6 network given to an IPv4 database.
    #[error("{net} is an IPv6 network, but the database is IPv4-only; build an IPv6 database")]
    Ipv6InIpv4Database { net: IpNet },
    /// The tree would need more than [`WRITER_MAX_NODES`] nodes.
    #[error("the search tree needs more than {max} nodes; split the input into several databases")]
    TooManyNodes { max: usize },
    /// More distinct records than fit a `u32` index.
    #[error("more than {max} distinct records; split the input into several databases")]
    TooManyRecords { max: u32 },
    /// A string, map or array larger than one data field can hold.
    #[error(
        "a {kind} of {size} items or bytes is larger than a MaxMind DB field can hold ({max}); \
         shorten it"
    )]
    FieldTooLarge {
        kind: &'static str,
        size: usize,
        max: usize,
    },
    /// The tree and data section do not fit 32-bit records.
    #[error(
        "the database would be larger than 32-bit search-tree records can address (about 4 GiB); \
         split the input into several databases"
    )]
    TooLarge,
}

/// One record of a search-tree node while building.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Child {
    /// No data for the addresses below.
    Empty,
    /// Another node, by index into [`MmdbWriter::nodes`].
    Node(u32),
    /// A record, by index into the writer's record table.
    Data(u32),
}

/// Builds a MaxMind DB in memory: insert networks with their records, then [`MmdbWriter::build`].
///
/// ```
/// use egresswatch::geoip::writer::{IpVersion, MmdbWriter, Record};
/// let mut writer = MmdbWriter::new("lab-Country", IpVersion::V6);
/// let country = Record::map([("country", Record::map([("iso_code", Record::string("DE"))]))]);
/// writer.insert("198.51.100.0/24".parse().unwrap(), country).unwrap();
/// let bytes = writer.build().unwrap();
/// assert!(bytes.len() > 100);
/// ```
#[derive(Debug)]
pub struct MmdbWriter {
    database_type: String,
    ip_version: IpVersion,
    build_epoch: u64,
    languages: Vec<String>,
    description: BTreeMap<String, String>,
    /// Node 0 is the root. Nodes cut off by a later, larger insert stay here unused and are left
    /// out of the file.
    nodes: Vec<[Child; 2]>,
    /// Distinct records and their indexes.
    records: HashMap<Record, u32>,
}

/// Figures about a built database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildStats {
    /// Nodes in the file's search tree.
    pub node_count: u32,
    /// Bits per search-tree record.
    pub record_size: u16,
    /// Bytes of the data section.
    pub data_bytes: usize,
    /// Distinct records written.
    pub records: usize,
}

impl MmdbWriter {
    /// An empty database of this type (`database_type` metadata, e.g. `egresswatch-ASN`; names
    /// starting with `GeoIP` are reserved for MaxMind by the spec). The build epoch is now.
    pub fn new(database_type: impl Into<String>, ip_version: IpVersion) -> MmdbWriter {
        let build_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let database_type = database_type.into();
        let description = BTreeMap::from([(
            "en".to_owned(),
            format!("{database_type}, built by egresswatch"),
        )]);
        MmdbWriter {
            database_type,
            ip_version,
            build_epoch,
            languages: Vec::new(),
            description,
            nodes: vec![[Child::Empty; 2]],
            records: HashMap::new(),
        }
    }

    /// Sets the build time (seconds since the Unix epoch), e.g. for reproducible builds.
    pub fn build_epoch(&mut self, epoch: u64) -> &mut MmdbWriter {
        self.build_epoch = epoch;
        self
    }

    /// Sets the description in one language (metadata `description`).
    pub fn description(&mut self, language: &str, text: &str) -> &mut MmdbWriter {
        self.description
            .insert(language.to_owned(), text.to_owned());
        self
    }

    /// Sets the locales the records are localised to (metadata `languages`; empty by default).
    pub fn languages(&mut self, languages: Vec<String>) -> &mut MmdbWriter {
        self.languages = languages;
        self
    }

    /// Distinct records inserted so far (including ones later fully overwritten).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Gives every address in `net` this record, replacing what earlier inserts gave them.
    /// Host bits of `net` are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn insert(&mut self, net: IpNet, record: Record) -> Result<(), WriterError> {
        let (key, depth) = self.tree_key(net)?;
        let id = self.intern(record)?;
        self.insert_at(key, depth, Child::Data(id))
    }

    /// Gives every address in each of `nets` this record: [`MmdbWriter::insert`] for each, with
    /// the record stored once.
    pub fn insert_all(&mut self, nets: &[IpNet], record: Record) -> Result<(), WriterError> {
        let keys = nets
            .iter()
            .map(|&net| self.tree_key(net))
            .collect::<Result<Vec<_>, _>>()?;
        let id = self.intern(record)?;
        keys.into_iter()
            .try_for_each(|(key, depth)| self.insert_at(key, depth, Child::Data(id)))
    }

    /// Removes any record from the addresses in `net`.
    pub fn remove(&mut self, net: IpNet) -> Result<(), WriterError> {
        let (key, depth) = self.tree_key(net)?;
        self.insert_at(key, depth, Child::Empty)
    }

    /// The network as a left-aligned 128-bit key and a depth in the tree.
    fn tree_key(&self, net: IpNet) -> Result<(u128, u8), WriterError> {
        match (net, self.ip_version) {
            (IpNet::V4(v4), IpVersion::V4) => {
                Ok((u128::from(u32::from(v4.network())) << 96, v4.prefix_len()))
            }
            // IPv4 at ::a.b.c.d/96+len (spec, "IPv4 addresses in an IPv6 tree").
            (IpNet::V4(v4), IpVersion::V6) => Ok((
                u128::from(u32::from(v4.network())),
                v4.prefix_len().saturating_add(96),
            )),
            (IpNet::V6(v6), IpVersion::V6) => Ok((u128::from(v6.network()), v6.prefix_len())),
            (IpNet::V6(_), IpVersion::V4) => Err(WriterError::Ipv6InIpv4Database { net }),
        }
    }

    fn intern(&mut self, record: Record) -> Result<u32, WriterError> {
        if let Some(&id) = self.records.get(&record) {
            return Ok(id);
        }
        let id = u32::try_from(self.records.len())
            .map_err(|_| WriterError::TooManyRecords { max: u32::MAX })?;
        self.records.insert(record, id);
        Ok(id)
    }

    /// Sets the record at `depth` along `key`'s path to `value`, splitting leaves on the way:
    /// a split node starts with the leaf's value on both sides, so addresses beside the new
    /// network keep their answer.
    fn insert_at(&mut self, key: u128, depth: u8, value: Child) -> Result<(), WriterError> {
        let Some(last) = depth.checked_sub(1) else {
            // ::/0 (or 0.0.0.0/0 in an IPv4 tree): both halves of the root.
            if let Some(root) = self.nodes.first_mut() {
                *root = [value; 2];
            }
            return Ok(());
        };
        let mut node = 0usize;
        for level in 0..last {
            let side = bit(key, level);
            let child = self.child(node, side);
            node = match child {
                Child::Node(next) => usize::try_from(next).unwrap_or(usize::MAX),
                leaf => {
                    let next = self.push_node([leaf; 2])?;
                    self.set_child(node, side, Child::Node(next));
                    usize::try_from(next).unwrap_or(usize::MAX)
                }
            };
        }
        self.set_child(node, bit(key, last), value);
        Ok(())
    }

    fn child(&self, node: usize, side: usize) -> Child {
        self.nodes
            .get(node)
            .and_then(|n| n.get(side))
            .copied()
            .unwrap_or(Child::Empty)
    }

    fn set_child(&mut self, node: usize, side: usize, value: Child) {
        if let Some(slot) = self.nodes.get_mut(node).and_then(|n| n.get_mut(side)) {
            *slot = value;
        }
    }

    fn push_node(&mut self, node: [Child; 2]) -> Result<u32, WriterError> {
        let too_many = WriterError::TooManyNodes {
            max: WRITER_MAX_NODES,
        };
        if self.nodes.len() >= WRITER_MAX_NODES {
            return Err(too_many);
        }
        let id = u32::try_from(self.nodes.len()).map_err(|_| too_many)?;
        self.nodes.push(node);
        Ok(id)
    }

    /// The database file.
    pub fn build(&self) -> Result<Vec<u8>, WriterError> {
        self.build_with_stats().map(|(bytes, _)| bytes)
    }

    /// The database file and figures about it.
    pub fn build_with_stats(&self) -> Result<(Vec<u8>, BuildStats), WriterError> {
        // 1. Merge leaves: a node whose two records are the same leaf is that leaf (the root
        // stays a node: the format starts with one).
        let mut nodes = self.nodes.clone();
        for side in 0..2 {
            let merged = simplify(&mut nodes, self.child(0, side), 0);
            if let Some(slot) = nodes.first_mut().and_then(|n| n.get_mut(side)) {
                *slot = merged;
            }
        }

        // 2. Number the nodes still reachable, breadth first, root first.
        let mut number = vec![u32::MAX; nodes.len()];
        let mut order: Vec<u32> = vec![0];
        if let Some(root) = number.first_mut() {
            *root = 0;
        }
        let mut next = 0usize;
        while let Some(&old) = order.get(next) {
            next += 1;
            for child in node_at(&nodes, old) {
                if let Child::Node(n) = child {
                    let index = usize::try_from(n).unwrap_or(usize::MAX);
                    if let Some(slot) = number.get_mut(index)
                        && *slot == u32::MAX
                    {
                        *slot =
                            u32::try_from(order.len()).map_err(|_| WriterError::TooManyNodes {
                                max: WRITER_MAX_NODES,
                            })?;
                        order.push(n);
                    }
                }
            }
        }
        let node_count = u32::try_from(order.len()).map_err(|_| WriterError::TooManyNodes {
            max: WRITER_MAX_NODES,
        })?;

        // 3. The data section: every record reached, in tree order.
        let mut by_id: Vec<Option<&Record>> = vec![None; self.records.len()];
        for (record, &id) in &self.records {
            if let Some(slot) = by_id.get_mut(usize::try_from(id).unwrap_or(usize::MAX)) {
                *slot = Some(record);
            }
        }
        let mut data = DataWriter::new(true);
        let mut offsets: Vec<Option<u32>> = vec![None; by_id.len()];
        let mut records_written = 0usize;
        for &old in &order {
            for child in node_at(&nodes, old) {
                let Child::Data(id) = child else { continue };
                let index = usize::try_from(id).unwrap_or(usize::MAX);
                let (Some(slot), Some(Some(record))) = (offsets.get_mut(index), by_id.get(index))
                else {
                    continue;
                };
                if slot.is_none() {
                    *slot = Some(data.record(record)?);
                    records_written += 1;
                }
            }
        }
        let data_bytes = data.into_bytes();

        // 4. Smallest record size that holds the largest value: a data pointer is
        // node_count + 16 + offset (spec, "Search Lookup Algorithm").
        let largest = u64::from(node_count)
            + DATA_SECTION_SEPARATOR.len() as u64
            + u64::try_from(data_bytes.len()).unwrap_or(u64::MAX);
        let record_size = RECORD_SIZES
            .into_iter()
            .find(|&bits| largest < 1u64 << bits)
            .ok_or(WriterError::TooLarge)?;

        // 5. The tree, the separator, the data, the metadata.
        let value = |child: Child| -> u32 {
            match child {
                Child::Empty => node_count,
                Child::Node(n) => number
                    .get(usize::try_from(n).unwrap_or(usize::MAX))
                    .copied()
                    .unwrap_or(node_count),
                Child::Data(id) => offsets
                    .get(usize::try_from(id).unwrap_or(usize::MAX))
                    .copied()
                    .flatten()
                    .map_or(node_count, |offset| {
                        // Fits: checked against the record size above.
                        node_count
                            .saturating_add(DATA_SECTION_SEPARATOR.len() as u32)
                            .saturating_add(offset)
                    }),
            }
        };
        let node_bytes = usize::from(record_size) / 4;
        let tree_bytes = order.len().saturating_mul(node_bytes);
        let mut out = Vec::with_capacity(
            tree_bytes
                .saturating_add(DATA_SECTION_SEPARATOR.len())
                .saturating_add(data_bytes.len())
                .saturating_add(1024),
        );
        for &old in &order {
            let [left, right] = node_at(&nodes, old);
            write_node(&mut out, record_size, value(left), value(right));
        }
        out.extend_from_slice(&DATA_SECTION_SEPARATOR);
        out.extend_from_slice(&data_bytes);
        out.extend_from_slice(METADATA_MARKER);
        let metadata = self.metadata(node_count, record_size);
        let mut meta = DataWriter::new(false);
        meta.record(&metadata)?;
        out.extend_from_slice(&meta.into_bytes());
        let stats = BuildStats {
            node_count,
            record_size,
            data_bytes: data_bytes.len(),
            records: records_written,
        };
        Ok((out, stats))
    }

    /// The metadata map with every key the spec requires, and `languages` and `description`.
    fn metadata(&self, node_count: u32, record_size: u16) -> Record {
        let strings = |items: &[String]| Record::Array(items.iter().map(Record::string).collect());
        Record::map([
            ("node_count", Record::U32(node_count)),
            ("record_size", Record::U16(record_size)),
            ("ip_version", Record::U16(self.ip_version.number())),
            ("database_type", Record::string(&self.database_type)),
            ("languages", strings(&self.languages)),
            (
                "binary_format_major_version",
                Record::U16(BINARY_FORMAT_MAJOR_VERSION),
            ),
            (
                "binary_format_minor_version",
                Record::U16(BINARY_FORMAT_MINOR_VERSION),
            ),
            ("build_epoch", Record::U64(self.build_epoch)),
            (
                "description",
                Record::map(
                    self.description
                        .iter()
                        .map(|(k, v)| (k.clone(), Record::string(v))),
                ),
            ),
        ])
    }

    /// Whether `ip` has a record, and which: a reference lookup straight in the tree being built,
    /// for tests and spot checks (it scans the record table, so it is slow on big databases).
    /// IPv4 addresses in an IPv6 tree are looked up at `::a.b.c.d`.
    pub fn get(&self, ip: IpAddr) -> Option<&Record> {
        let key = match (ip, self.ip_version) {
            (IpAddr::V4(v4), IpVersion::V4) => u128::from(u32::from(v4)) << 96,
            (IpAddr::V4(v4), IpVersion::V6) => u128::from(u32::from(v4)),
            (IpAddr::V6(v6), IpVersion::V6) => u128::from(v6),
            (IpAddr::V6(_), IpVersion::V4) => return None,
        };
        let mut node = 0usize;
        for level in 0..self.ip_version.bits() {
            match self.child(node, bit(key, level)) {
                Child::Node(next) => node = usize::try_from(next).unwrap_or(usize::MAX),
                Child::Empty => return None,
                Child::Data(id) => {
                    return self
                        .records
                        .iter()
                        .find_map(|(record, &i)| (i == id).then_some(record));
                }
            }
        }
        None
    }
}

/// Bit `level` of a left-aligned key, counting from the most significant: 0 left, 1 right
/// (spec, "Search Lookup Algorithm").
fn bit(key: u128, level: u8) -> usize {
    let shift = 127u32.saturating_sub(u32::from(level));
    usize::from(key >> shift & 1 == 1)
}

fn node_at(nodes: &[[Child; 2]], index: u32) -> [Child; 2] {
    nodes
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .copied()
        .unwrap_or([Child::Empty; 2])
}

/// Merges, below `child`, every node whose two records are the same leaf into that leaf;
/// returns what `child` becomes. Recursion is at most 128 deep (one level per address bit).
fn simplify(nodes: &mut [[Child; 2]], child: Child, depth: u8) -> Child {
    let Child::Node(n) = child else { return child };
    if depth > 128 {
        return child;
    }
    let mut pair = node_at(nodes, n);
    for side in &mut pair {
        *side = simplify(nodes, *side, depth.saturating_add(1));
    }
    if let Some(slot) = nodes.get_mut(usize::try_from(n).unwrap_or(usize::MAX)) {
        *slot = pair;
    }
    match pair {
        [a, b] if a == b && !matches!(a, Child::Node(_)) => a,
        _ => child,
    }
}

/// Appends one node of two records in the layout of `record_size` (spec, "Node Layout"):
/// big-endian; with 28 bits the high nibbles of both records share the middle byte, left first.
fn write_node(out: &mut Vec<u8>, record_size: u16, left: u32, right: u32) {
    let [l0, l1, l2, l3] = left.to_be_bytes();
    let [r0, r1, r2, r3] = right.to_be_bytes();
    match record_size {
        24 => out.extend_from_slice(&[l1, l2, l3, r1, r2, r3]),
        28 => out.extend_from_slice(&[l1, l2, l3, (l0 & 0x0f) << 4 | (r0 & 0x0f), r1, r2, r3]),
        _ => out.extend_from_slice(&[l0, l1, l2, l3, r0, r1, r2, r3]),
    }
}

#[cfg(test)]
mod tests;
