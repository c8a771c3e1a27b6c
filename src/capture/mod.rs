//! Packet sources: where frames come from.
//!
//! This stage owns reading capture files (pcap in both byte orders with micro- or nanosecond
//! timestamps, pcapng with several sections and interfaces, gzip-compressed files, standard input)
//! and merging several inputs into one stream in timestamp order. It hands out borrowed [`Frame`]s
//! and never interprets their bytes: decoding belongs to [`crate::decode`].
//!
//! Guarantees: memory stays bounded whatever a file claims (a record that says it is 1.4 GB long is
//! refused, not allocated); "end of input" is not an error; damage is reported once, as
//! [`CaptureError::Damaged`] with the file name and byte offset, after every frame before it has
//! been handed out.

mod chunk;
pub mod file;
pub mod live;
mod pcap;
mod pcapng;
pub mod prefetch;
pub mod write;

pub use file::{Replay, ReplayStats};
pub use prefetch::Prefetch;
pub use write::{PcapWriter, PcapngWriter, TsResolution};

/// The largest record or block, in bytes, that a capture file may claim.
///
/// A pcap record header or pcapng block header that claims more is reported as
/// [`CaptureError::Damaged`] before anything is allocated for it: the length fields of a damaged
/// or hostile file cannot make the reader allocate more than this (plus its read buffer) per input.
/// 16 MiB is far above any real link MTU (the largest snaplen libpcap uses is 256 KiB) and leaves room
/// for pcapng blocks that carry more than a packet.
pub const RECORD_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Byte order of a capture file or of one pcapng section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first (written by x86 and most ARM machines).
    Little,
    /// Most significant byte first ("network byte order").
    Big,
}

impl Endian {
    /// Reads a 16-bit field in this byte order.
    #[inline]
    pub(crate) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    /// Reads a 32-bit field in this byte order.
    #[inline]
    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// Reads a 64-bit field in this byte order.
    #[inline]
    pub(crate) fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }

    /// Writes a 16-bit field in this byte order.
    #[inline]
    pub(crate) fn put_u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Writes a 32-bit field in this byte order.
    #[inline]
    pub(crate) fn put_u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Writes a 64-bit field in this byte order.
    #[inline]
    pub(crate) fn put_u64(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// Reads fixed-size fields one after another from a byte slice, in one byte order.
///
/// Every read is checked: a slice that is too short gives `None`, never a panic.
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
    endian: Endian,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(bytes: &'a [u8], endian: Endian) -> Self {
        Fields {
            rest: bytes,
            endian,
        }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take::<2>().map(|b| self.endian.u16(b))
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(|b| self.endian.u32(b))
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(|b| self.endian.u64(b))
    }

    /// Skips `n` bytes; `None` if fewer are left.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.rest = self.rest.get(n..)?;
        Some(())
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
///
/// An open set: a number this crate does not know is data, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the host byte order of the capturing machine.
    pub const NULL: Self = Self(0);
    /// IEEE 802.3 Ethernet.
    pub const ETHERNET: Self = Self(1);
    /// Raw IP on some BSDs (DLT_RAW is 12 on most, 14 on OpenBSD).
    pub const RAW_12: Self = Self(12);
    /// Raw IP on OpenBSD's numbering.
    pub const RAW_14: Self = Self(14);
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: Self = Self(101);
    /// OpenBSD loopback: like NULL, but the family is in network byte order.
    pub const LOOP: Self = Self(108);
    /// Linux "cooked" capture, version 1.
    pub const LINUX_SLL: Self = Self(113);
    /// Raw IPv4 only.
    pub const IPV4: Self = Self(228);
    /// Raw IPv6 only.
    pub const IPV6: Self = Self(229);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: Self = Self(276);
}

/// One captured frame, borrowed from its source until the next call to `next_frame`.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// How to read `data`.
    pub link_type: LinkType,
    /// The captured bytes; shorter than `wire_len` when the capture cut the packet (snaplen).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub wire_len: u32,
    /// Index of the input this frame came from, in the order the inputs were given.
    pub source: u16,
    /// 1-based index of this frame within its input.
    pub index: u64,
}

/// Why a source could not deliver frames.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start like a pcap, pcapng or gzip file.
    #[error("{path}: not a pcap, pcapng or gzip file (it starts with {magic})")]
    UnknownFormat { path: String, magic: String },
    /// The file is damaged or cut short; every frame before `offset` was delivered.
    ///
    /// For gzip-compressed inputs the offset counts bytes of the decompressed stream.
    #[error("{path}: damaged at byte offset {offset}: {what}")]
    Damaged {
        path: String,
        offset: u64,
        what: String,
    },
}
