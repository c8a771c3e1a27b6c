//! pcapng files: sections, interfaces and packet blocks.
//!
//! Follows draft-ietf-opsawg-pcapng ("PCAP Next Generation (pcapng) Capture File Format"). A file is
//! a sequence of blocks, each `type (4) | total length (4) | body | total length (4)`. A Section
//! Header Block starts each section and fixes its byte order; Interface Description Blocks number
//! the section's interfaces from 0; Enhanced, Simple and (obsolete) Packet Blocks carry frames.
//! Every other block type is skipped and counted.
//!
//! Guarantees: no block longer than [`RECORD_MAX_BYTES`] is read; a block whose length fields are
//! inconsistent, or whose contents do not fit in it, is reported with the offset of the block;
//! timestamps are converted exactly for both decimal and binary resolutions, saturating at the
//! ends of `i64`.

use super::chunk::{ChunkReader, ReadError, Record};
use super::{Endian, Fields, LinkType, RECORD_MAX_BYTES};

/// Section Header Block type; a palindrome, so it reads the same in both byte orders
/// (draft-ietf-opsawg-pcapng section 4.1).
pub(crate) const SHB_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
/// Byte-Order Magic of a Section Header Block, as the writer's machine stores it (section 4.1).
pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Interface Description Block (section 4.2).
const BLOCK_IDB: u32 = 1;
/// Packet Block, obsolete (appendix A).
const BLOCK_PB: u32 = 2;
/// Simple Packet Block (section 4.4).
const BLOCK_SPB: u32 = 3;
/// Enhanced Packet Block (section 4.3).
const BLOCK_EPB: u32 = 6;

/// Block type and total length fields (section 3.1).
const BLOCK_HEADER_LEN: usize = 8;
/// The trailing copy of the total length (section 3.1).
const BLOCK_TRAILER_LEN: usize = 4;
/// The smallest block: header and trailer with an empty body (section 3.1).
const BLOCK_MIN_LEN: usize = BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN;
/// Section Header Block body before options: byte-order magic, major, minor, section length.
const SHB_FIXED_LEN: usize = 16;
/// Interface Description Block body before options: link type, reserved, snaplen.
const IDB_FIXED_LEN: usize = 8;
/// Enhanced Packet Block body before the packet: interface, timestamp (2 × 4), captured length,
/// original length.
const EPB_FIXED_LEN: usize = 20;
/// Obsolete Packet Block body before the packet: interface (2), drops (2), timestamp (2 × 4),
/// captured length, original length.
const PB_FIXED_LEN: usize = 20;
/// Simple Packet Block body before the packet: original length.
const SPB_FIXED_LEN: usize = 4;
/// The only major version this reader understands (section 4.1: a reader must not read a section
/// whose major version it does not know).
const SUPPORTED_MAJOR_VERSION: u16 = 1;

/// Option codes (section 3.5 and 4.2).
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Default if_tsresol: microseconds (section 4.2).
const TSRESOL_DEFAULT: u8 = 6;
/// if_tsresol bit 7 set: the rest is a negative power of 2, else of 10 (section 4.2).
const TSRESOL_BINARY_FLAG: u8 = 0x80;

/// Most interfaces one section may describe: interface ids are `u32`, but a hostile file must not
/// make the reader keep an unbounded table.
pub(crate) const INTERFACES_MAX_PER_SECTION: usize = 1 << 16;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// How an interface's timestamp units become nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Multiply by this power of ten (resolutions of 10^-9 s and coarser).
    Mul(u128),
    /// Divide by this power of ten (resolutions finer than 10^-9 s); `None` when the divisor does
    /// not fit in `u128`, which makes every timestamp round to 0 ns.
    Div(Option<u128>),
    /// Units of 2^-n s: multiply by 10^9, then shift right by n.
    Shift(u32),
}

impl TsScale {
    /// Decodes an if_tsresol byte.
    fn from_tsresol(raw: u8) -> Self {
        let exponent = u32::from(raw & !TSRESOL_BINARY_FLAG);
        if raw & TSRESOL_BINARY_FLAG != 0 {
            TsScale::Shift(exponent)
        } else if exponent <= 9 {
            TsScale::Mul(10u128.pow(9 - exponent))
        } else {
            TsScale::Div(10u128.checked_pow(exponent - 9))
        }
    }

    /// Converts a count of units to nanoseconds, rounding toward zero.
    fn to_nanos(self, units: u64) -> u128 {
        let units = u128::from(units);
        match self {
            // units < 2^64 and factor ≤ 10^9 < 2^30: the product fits in u128.
            TsScale::Mul(factor) => units * factor,
            TsScale::Div(Some(divisor)) => units / divisor,
            TsScale::Div(None) => 0,
            // units × 10^9 < 2^94; a shift of up to 127 is defined for u128.
            TsScale::Shift(n) => (units * NANOS_PER_SEC) >> n,
        }
    }
}

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// if_tsoffset in nanoseconds.
    offset_ns: i64,
}

impl Interface {
    fn ts_ns(&self, units: u64) -> i64 {
        let nanos = i64::try_from(self.scale.to_nanos(units)).unwrap_or(i64::MAX);
        nanos.saturating_add(self.offset_ns)
    }
}

/// Reads the packets of one pcapng stream.
pub(crate) struct PcapngReader {
    /// Byte order of the current section; set by each Section Header Block.
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks, which carry none.
    last_ts_ns: i64,
}

/// What one block turned out to be.
enum Block {
    Packet(Record),
    Other,
    Skipped,
}

impl PcapngReader {
    pub(crate) fn new() -> Self {
        PcapngReader {
            endian: Endian::Little,
            interfaces: Vec::new(),
            last_ts_ns: 0,
        }
    }

    /// The next packet, `Ok(None)` at a clean end of file. Blocks that carry no packet are read
    /// on the way; `skipped` counts those of types this reader does not use.
    pub(crate) fn next(
        &mut self,
        src: &mut ChunkReader,
        skipped: &mut u64,
    ) -> Result<Option<Record>, ReadError> {
        loop {
            match self.next_block(src)? {
                None => return Ok(None),
                Some(Block::Packet(record)) => return Ok(Some(record)),
                Some(Block::Other) => {}
                Some(Block::Skipped) => *skipped += 1,
            }
        }
    }

    fn next_block(&mut self, src: &mut ChunkReader) -> Result<Option<Block>, ReadError> {
        let offset = src.offset();
        let got = src.fill(BLOCK_HEADER_LEN + 4)?;
        if got == 0 {
            return Ok(None);
        }
        let damaged = |what: String| ReadError::Damaged { offset, what };
        if got < BLOCK_HEADER_LEN {
            return Err(damaged(format!(
                "the file ends {got} bytes into a {BLOCK_HEADER_LEN}-byte block header"
            )));
        }
        let head = src.head();
        let is_shb = head.starts_with(&SHB_MAGIC);
        if is_shb {
            // The section's byte order comes from its byte-order magic, which follows the length.
            let Some(magic) = head.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                return Err(damaged(format!(
                    "the file ends {got} bytes into a section header block"
                )));
            };
            self.endian = if u32::from_le_bytes(magic) == BYTE_ORDER_MAGIC {
                Endian::Little
            } else if u32::from_be_bytes(magic) == BYTE_ORDER_MAGIC {
                Endian::Big
            } else {
                return Err(damaged(format!(
                    "section header block at offset {offset} has byte-order magic {}, not 1a2b3c4d in either byte order",
                    hex(&magic)
                )));
            };
        }
        let mut f = Fields::new(head, self.endian);
        let (Some(block_type), Some(total_len)) = (f.u32(), f.u32()) else {
            return Err(damaged(format!(
                "the file ends {got} bytes into a {BLOCK_HEADER_LEN}-byte block header"
            )));
        };
        let len = total_len as usize;
        if len > RECORD_MAX_BYTES {
            return Err(damaged(format!(
                "block at offset {offset} claims {total_len} bytes, more than the {} MiB limit",
                RECORD_MAX_BYTES >> 20
            )));
        }
        if len < BLOCK_MIN_LEN || !len.is_multiple_of(4) {
            return Err(damaged(format!(
                "block at offset {offset} (type {block_type:#x}) has total length {total_len}; \
                 it must be a multiple of 4 and at least {BLOCK_MIN_LEN}"
            )));
        }
        let got = src.fill(len)?;
        if got < len {
            return Err(damaged(format!(
                "block at offset {offset} (type {block_type:#x}) claims {total_len} bytes but the file ends after {got} of them"
            )));
        }
        let block = src.head().get(..len).unwrap_or_default();
        let trailer = block
            .get(len - BLOCK_TRAILER_LEN..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| self.endian.u32(b));
        if trailer != Some(total_len) {
            return Err(damaged(format!(
                "block at offset {offset} (type {block_type:#x}) starts with length {total_len} but ends with {}",
                trailer.unwrap_or(0)
            )));
        }
        let body = block
            .get(BLOCK_HEADER_LEN..len - BLOCK_TRAILER_LEN)
            .unwrap_or_default();
        let body_index = src.head_index() + BLOCK_HEADER_LEN;
        let block = if is_shb {
            self.section_header(body, offset)?;
            Block::Other
        } else {
            match block_type {
                BLOCK_IDB => {
                    self.interface_description(body, offset)?;
                    Block::Other
                }
                BLOCK_EPB => {
                    Block::Packet(self.timestamped_packet(body, body_index, offset, false)?)
                }
                BLOCK_SPB => Block::Packet(self.simple_packet(body, body_index, offset)?),
                BLOCK_PB => Block::Packet(self.timestamped_packet(body, body_index, offset, true)?),
                _ => Block::Skipped,
            }
        };
        src.consume(len);
        Ok(Some(block))
    }

    fn section_header(&mut self, body: &[u8], offset: u64) -> Result<(), ReadError> {
        let mut f = Fields::new(body, self.endian);
        let (Some(_magic), Some(major), Some(minor)) = (f.u32(), f.u16(), f.u16()) else {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "section header block at offset {offset} is shorter than its {SHB_FIXED_LEN} fixed bytes"
                ),
            });
        };
        if f.u64().is_none() {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "section header block at offset {offset} is shorter than its {SHB_FIXED_LEN} fixed bytes"
                ),
            });
        }
        if major != SUPPORTED_MAJOR_VERSION {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "section at offset {offset} is pcapng version {major}.{minor}; only version 1 can be read"
                ),
            });
        }
        self.interfaces.clear();
        Ok(())
    }

    fn interface_description(&mut self, body: &[u8], offset: u64) -> Result<(), ReadError> {
        let damaged = |what: String| ReadError::Damaged { offset, what };
        let mut f = Fields::new(body, self.endian);
        let (Some(link_type), Some(_reserved), Some(snaplen)) = (f.u16(), f.u16(), f.u32()) else {
            return Err(damaged(format!(
                "interface description block at offset {offset} is shorter than its {IDB_FIXED_LEN} fixed bytes"
            )));
        };
        if self.interfaces.len() >= INTERFACES_MAX_PER_SECTION {
            return Err(damaged(format!(
                "interface description block at offset {offset} describes more than {INTERFACES_MAX_PER_SECTION} interfaces in one section"
            )));
        }
        let mut tsresol = TSRESOL_DEFAULT;
        let mut tsoffset_secs: i64 = 0;
        // Options (section 3.5): code (2), length (2), value padded to 4 bytes; stops at
        // opt_endofopt or at the end of the body.
        while !f.rest().is_empty() {
            let (Some(code), Some(opt_len)) = (f.u16(), f.u16()) else {
                return Err(damaged(format!(
                    "interface description block at offset {offset} ends inside an option header"
                )));
            };
            if code == OPT_ENDOFOPT {
                break;
            }
            let opt_len = usize::from(opt_len);
            let value = f.rest().get(..opt_len);
            let Some(value) = value else {
                return Err(damaged(format!(
                    "interface description block at offset {offset} has option {code} of {opt_len} bytes running past the end of the block"
                )));
            };
            match code {
                OPT_IF_TSRESOL => {
                    if let Some(&raw) = value.first() {
                        tsresol = raw;
                    }
                }
                OPT_IF_TSOFFSET => {
                    if let Some(raw) = Fields::new(value, self.endian).u64() {
                        // if_tsoffset is a signed 64-bit count of seconds.
                        tsoffset_secs = i64::from_be_bytes(raw.to_be_bytes());
                    }
                }
                _ => {}
            }
            // A final option may omit its padding; accept that.
            let padded = opt_len.next_multiple_of(4).min(f.rest().len());
            if f.skip(padded).is_none() {
                break;
            }
        }
        self.interfaces.push(Interface {
            link_type: LinkType(u32::from(link_type)),
            snaplen,
            scale: TsScale::from_tsresol(tsresol),
            offset_ns: tsoffset_secs.saturating_mul(1_000_000_000),
        });
        Ok(())
    }

    fn interface(&self, id: u32, offset: u64, what: &str) -> Result<Interface, ReadError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i))
            .copied()
            .ok_or_else(|| ReadError::Damaged {
                offset,
                what: format!(
                    "{what} at offset {offset} names interface {id}, but its section describes {} interface(s)",
                    self.interfaces.len()
                ),
            })
    }

    /// Reads an Enhanced Packet Block (section 4.3) or an obsolete Packet Block (appendix A):
    /// the same fields, but a 16-bit interface id and a drops counter in the obsolete one.
    fn timestamped_packet(
        &mut self,
        body: &[u8],
        body_index: usize,
        offset: u64,
        obsolete: bool,
    ) -> Result<Record, ReadError> {
        let (what, fixed_len) = if obsolete {
            ("packet block", PB_FIXED_LEN)
        } else {
            ("enhanced packet block", EPB_FIXED_LEN)
        };
        let mut f = Fields::new(body, self.endian);
        let id = if obsolete {
            f.u16()
                .map(u32::from)
                .and_then(|id| f.u16().map(|_drops| id))
        } else {
            f.u32()
        };
        let (Some(id), Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) =
            (id, f.u32(), f.u32(), f.u32(), f.u32())
        else {
            return Err(too_short(what, offset, fixed_len));
        };
        let interface = self.interface(id, offset, what)?;
        let room = body.len().saturating_sub(fixed_len);
        let data_len = caplen as usize;
        if data_len > room {
            return Err(ReadError::Damaged {
                offset,
                what: format!(
                    "{what} at offset {offset} says it captured {caplen} bytes but has room for only {room}"
                ),
            });
        }
        let ts_ns = interface.ts_ns((u64::from(ts_high) << 32) | u64::from(ts_low));
        self.last_ts_ns = ts_ns;
        let start = body_index + fixed_len;
        Ok(Record {
            ts_ns,
            link_type: interface.link_type,
            data: start..start + data_len,
            wire_len: orig_len.max(caplen),
        })
    }

    fn simple_packet(
        &mut self,
        body: &[u8],
        body_index: usize,
        offset: u64,
    ) -> Result<Record, ReadError> {
        const WHAT: &str = "simple packet block";
        let Some(orig_len) = Fields::new(body, self.endian).u32() else {
            return Err(too_short(WHAT, offset, SPB_FIXED_LEN));
        };
        let interface = self.interface(0, offset, WHAT)?;
        // Section 4.4: the captured length is the smallest of the original length, the bytes the
        // block holds and the interface's snaplen (0 meaning no limit).
        let room = body.len().saturating_sub(SPB_FIXED_LEN);
        let mut data_len = room.min(orig_len as usize);
        if interface.snaplen != 0 {
            data_len = data_len.min(interface.snaplen as usize);
        }
        let start = body_index + SPB_FIXED_LEN;
        Ok(Record {
            ts_ns: self.last_ts_ns,
            link_type: interface.link_type,
            data: start..start + data_len,
            // data_len ≤ orig_len, so the original length is the wire length.
            wire_len: orig_len,
        })
    }
}

fn too_short(what: &str, offset: u64, fixed: usize) -> ReadError {
    ReadError::Damaged {
        offset,
        what: format!("{what} at offset {offset} is shorter than its {fixed} fixed bytes"),
    }
}

/// Bytes as lowercase hex pairs, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_resolutions_convert_exactly() {
        assert_eq!(TsScale::from_tsresol(6).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(9).to_nanos(42), 42);
        assert_eq!(TsScale::from_tsresol(0).to_nanos(3), 3_000_000_000);
        assert_eq!(TsScale::from_tsresol(12).to_nanos(1_234_567), 1_234);
        assert_eq!(TsScale::from_tsresol(127).to_nanos(u64::MAX), 0);
        // 2^-30 s units: 2^30 units are exactly one second.
        assert_eq!(
            TsScale::from_tsresol(0x80 | 30).to_nanos(1 << 30),
            1_000_000_000
        );
        assert_eq!(TsScale::from_tsresol(0x80 | 1).to_nanos(3), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(0x80 | 127).to_nanos(u64::MAX), 0);
        // Large values saturate instead of wrapping.
        let iface = Interface {
            link_type: LinkType::ETHERNET,
            snaplen: 0,
            scale: TsScale::from_tsresol(0),
            offset_ns: 0,
        };
        assert_eq!(iface.ts_ns(u64::MAX), i64::MAX);
    }

    #[test]
    fn hex_formats_pairs() {
        assert_eq!(hex(&[0x4d, 0x5a, 0x00]), "4d 5a 00");
    }
}
