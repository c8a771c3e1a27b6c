//! Classic pcap files: libpcap's original format.
//!
//! Layout (draft-ietf-opsawg-pcap, "PCAP Capture File Format", sections 4 and 5): a 24-byte file
//! header (magic, version, two unused fields, snaplen, link type) then records, each a 16-byte
//! header (seconds, fraction, captured length, original length) followed by the captured bytes.
//! The magic number, read in the writer's byte order, gives both the byte order and the timestamp
//! unit; [`super::file`] has already matched it before this parser runs.
//!
//! Guarantees: no record is allocated or read whose captured length exceeds
//! [`RECORD_MAX_BYTES`]; a file cut short inside a header or a record is reported with the offset
//! where that header or record starts.

use super::chunk::{ChunkReader, ReadError, Record};
use super::{Endian, Fields, LinkType, RECORD_MAX_BYTES};

/// Length of the file header (draft-ietf-opsawg-pcap section 4).
pub(crate) const FILE_HEADER_LEN: usize = 24;

/// Length of each record header (draft-ietf-opsawg-pcap section 5).
pub(crate) const RECORD_HEADER_LEN: usize = 16;

/// The link type is the low 16 bits of the header's LinkType field; bits 16-31 carry the FCS
/// length and flags (draft-ietf-opsawg-pcap section 4, "LinkType and additional information").
const LINKTYPE_MASK: u32 = 0xFFFF;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MICRO: i64 = 1_000;

/// Reads the records of one classic pcap stream.
pub(crate) struct PcapReader {
    endian: Endian,
    /// Timestamp fractions count nanoseconds (magic 0xa1b23c4d) rather than microseconds.
    nanos: bool,
    /// Known once the file header has been read.
    link_type: Option<LinkType>,
}

impl PcapReader {
    pub(crate) fn new(endian: Endian, nanos: bool) -> Self {
        PcapReader {
            endian,
            nanos,
            link_type: None,
        }
    }

    /// The next record, `Ok(None)` at a clean end of file.
    #[inline]
    pub(crate) fn next(&mut self, src: &mut ChunkReader) -> Result<Option<Record>, ReadError> {
        let link_type = match self.link_type {
            Some(link_type) => link_type,
            None => self.read_file_header(src)?,
        };
        let offset = src.offset();
        let got = src.fill(RECORD_HEADER_LEN)?;
        if got == 0 {
            return Ok(None);
        }
        let mut f = Fields::new(src.head(), self.endian);
        let (Some(secs), Some(frac), Some(caplen), Some(orig_len)) =
            (f.u32(), f.u32(), f.u32(), f.u32())
        else {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "the file ends {got} bytes into a {RECORD_HEADER_LEN}-byte record header"
                ),
            });
        };
        let data_len = caplen as usize;
        if data_len > RECORD_MAX_BYTES {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "record at offset {offset} claims {caplen} bytes, more than the {} MiB limit",
                    RECORD_MAX_BYTES >> 20
                ),
            });
        }
        let total = RECORD_HEADER_LEN + data_len;
        let got = src.fill(total)?;
        if got < total {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "record at offset {offset} claims {caplen} captured bytes but the file ends after {} of them",
                    got.saturating_sub(RECORD_HEADER_LEN)
                ),
            });
        }
        let start = src.head_index() + RECORD_HEADER_LEN;
        src.consume(total);
        let frac_ns = if self.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * NANOS_PER_MICRO
        };
        Ok(Some(Record {
            ts_ns: i64::from(secs)
                .saturating_mul(NANOS_PER_SEC)
                .saturating_add(frac_ns),
            link_type,
            data: start..start + data_len,
            wire_len: orig_len.max(caplen),
        }))
    }

    /// Reads the 24-byte file header and returns the file's link type.
    #[cold]
    fn read_file_header(&mut self, src: &mut ChunkReader) -> Result<LinkType, ReadError> {
        let got = src.fill(FILE_HEADER_LEN)?;
        let mut f = Fields::new(src.head(), self.endian);
        // magic (4), version major (2), version minor (2), reserved (4), reserved (4), snaplen (4).
        // Version and snaplen are informative only: files with version 2.0 or snaplen 0 exist and
        // are read like any other.
        let link_field = f.skip(FILE_HEADER_LEN - 4).and_then(|()| f.u32());
        let Some(link_field) = link_field else {
            return Err(ReadError::Damaged {
                offset: 0,
                what: format!(
                    "the file ends after {got} bytes, inside its {FILE_HEADER_LEN}-byte pcap file header"
                ),
            });
        };
        src.consume(FILE_HEADER_LEN);
        let link_type = LinkType(link_field & LINKTYPE_MASK);
        self.link_type = Some(link_type);
        Ok(link_type)
    }
}
