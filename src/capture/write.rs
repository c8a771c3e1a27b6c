//! Writing captures: a small pcap / pcapng writer for evidence files and test fixtures.
//!
//! [`PcapWriter`] writes classic pcap (draft-ietf-opsawg-pcap) in either byte order with micro- or
//! nanosecond timestamps; [`PcapngWriter`] writes pcapng (draft-ietf-opsawg-pcapng) sections,
//! interfaces with any if_tsresol, Enhanced and Simple Packet Blocks. Both write straight to the
//! given [`Write`]r (wrap it in a `BufWriter` for files) and reuse one scratch buffer, so writing a
//! frame allocates nothing once the largest frame has been seen.
//!
//! Guarantees: what they write is read back by [`super::Replay`] to the same frames; a frame that
//! the format cannot represent (a timestamp before 1970 or past the format's range, a frame longer
//! than 4 GiB) is refused with [`io::ErrorKind::InvalidInput`], never written wrong.

use std::io::{self, Write};

use super::pcapng::{BYTE_ORDER_MAGIC, SHB_MAGIC};
use super::{Endian, LinkType};

/// Timestamp unit of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// Microseconds (magic 0xa1b2c3d4).
    Micro,
    /// Nanoseconds (magic 0xa1b23c4d).
    Nano,
}

/// pcap magic numbers (draft-ietf-opsawg-pcap section 4).
const PCAP_MAGIC_MICRO: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NANO: u32 = 0xA1B2_3C4D;
/// pcap format version 2.4 (draft-ietf-opsawg-pcap section 4).
const PCAP_VERSION: (u16, u16) = (2, 4);
/// Snaplen written in headers: libpcap's default maximum, 256 KiB.
const SNAPLEN_DEFAULT: u32 = 262_144;

/// pcapng block types and option codes (draft-ietf-opsawg-pcapng sections 4.1-4.4, 3.5).
const BLOCK_IDB: u32 = 1;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
/// Section length "not specified" (draft-ietf-opsawg-pcapng section 4.1).
const SECTION_LENGTH_UNKNOWN: u64 = u64::MAX;
/// if_tsresol bit 7: the exponent is of 2, not 10 (section 4.2).
const TSRESOL_BINARY_FLAG: u8 = 0x80;

const NANOS_PER_SEC: i64 = 1_000_000_000;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn frame_len(data: &[u8]) -> io::Result<u32> {
    u32::try_from(data.len()).map_err(|_| {
        invalid(format!(
            "a frame of {} bytes is too long for a capture file",
            data.len()
        ))
    })
}

fn non_negative(ts_ns: i64) -> io::Result<u64> {
    u64::try_from(ts_ns).map_err(|_| {
        invalid(format!(
            "timestamp {ts_ns} ns is before 1970, which capture files cannot store"
        ))
    })
}

/// Writes a classic pcap file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    endian: Endian,
    resolution: TsResolution,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(
        mut w: W,
        link_type: LinkType,
        resolution: TsResolution,
        endian: Endian,
    ) -> io::Result<Self> {
        let magic = match resolution {
            TsResolution::Micro => PCAP_MAGIC_MICRO,
            TsResolution::Nano => PCAP_MAGIC_NANO,
        };
        let mut header = [0u8; 24];
        let fields: [&[u8]; 7] = [
            &endian.put_u32(magic),
            &endian.put_u16(PCAP_VERSION.0),
            &endian.put_u16(PCAP_VERSION.1),
            &endian.put_u32(0), // reserved (was thiszone)
            &endian.put_u32(0), // reserved (was sigfigs)
            &endian.put_u32(SNAPLEN_DEFAULT),
            &endian.put_u32(link_type.0),
        ];
        let mut at = 0;
        for field in fields {
            if let Some(dst) = header.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field);
            }
            at += field.len();
        }
        w.write_all(&header)?;
        Ok(PcapWriter {
            w,
            endian,
            resolution,
        })
    }

    /// Writes one record; `wire_len` is the packet's length on the wire (at least `data.len()`
    /// when the frame is whole).
    pub fn write_frame(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let ts = non_negative(ts_ns)?;
        let secs = u32::try_from(ts / NANOS_PER_SEC as u64).map_err(|_| {
            invalid(format!(
                "timestamp {ts_ns} ns is after 2106, which pcap cannot store"
            ))
        })?;
        let nanos = (ts % NANOS_PER_SEC as u64) as u32;
        let frac = match self.resolution {
            TsResolution::Micro => nanos / 1_000,
            TsResolution::Nano => nanos,
        };
        let caplen = frame_len(data)?;
        let e = self.endian;
        let mut header = [0u8; 16];
        for (dst, value) in header
            .chunks_exact_mut(4)
            .zip([secs, frac, caplen, wire_len])
        {
            dst.copy_from_slice(&e.put_u32(value));
        }
        self.w.write_all(&header)?;
        self.w.write_all(data)
    }

    /// Gives back the writer (unflushed).
    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Writes a pcapng file: one or more sections, each with its interfaces and packets.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    w: W,
    endian: Endian,
    /// if_tsresol byte of each interface of the current section.
    interfaces: Vec<u8>,
    /// Reused block buffer.
    scratch: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes a Section Header Block in byte order `endian`.
    pub fn new(w: W, endian: Endian) -> io::Result<Self> {
        let mut writer = PcapngWriter {
            w,
            endian,
            interfaces: Vec::new(),
            scratch: Vec::new(),
        };
        writer.new_section(endian)?;
        Ok(writer)
    }

    /// Starts a new section in byte order `endian`; interfaces are numbered from 0 again.
    pub fn new_section(&mut self, endian: Endian) -> io::Result<()> {
        self.endian = endian;
        self.interfaces.clear();
        let e = endian;
        self.scratch.clear();
        self.scratch.extend_from_slice(&SHB_MAGIC);
        self.scratch.extend_from_slice(&[0; 4]); // total length, set by finish_block
        self.scratch.extend_from_slice(&e.put_u32(BYTE_ORDER_MAGIC));
        self.scratch.extend_from_slice(&e.put_u16(1)); // major version
        self.scratch.extend_from_slice(&e.put_u16(0)); // minor version
        self.scratch
            .extend_from_slice(&e.put_u64(SECTION_LENGTH_UNKNOWN));
        self.finish_block()
    }

    /// Writes an Interface Description Block and returns the interface's id in this section.
    ///
    /// `tsresol` is the raw if_tsresol byte: 6 for microseconds, 9 for nanoseconds, `0x80 | n`
    /// for units of 2^-n seconds. `snaplen` 0 means no limit.
    pub fn add_interface(
        &mut self,
        link_type: LinkType,
        tsresol: u8,
        snaplen: u32,
    ) -> io::Result<u32> {
        let link = u16::try_from(link_type.0).map_err(|_| {
            invalid(format!(
                "link type {} does not fit pcapng's 16-bit field",
                link_type.0
            ))
        })?;
        let id = u32::try_from(self.interfaces.len())
            .map_err(|_| invalid("too many interfaces in one section".to_owned()))?;
        let e = self.endian;
        self.scratch.clear();
        self.scratch.extend_from_slice(&e.put_u32(BLOCK_IDB));
        self.scratch.extend_from_slice(&[0; 4]);
        self.scratch.extend_from_slice(&e.put_u16(link));
        self.scratch.extend_from_slice(&e.put_u16(0)); // reserved
        self.scratch.extend_from_slice(&e.put_u32(snaplen));
        self.scratch.extend_from_slice(&e.put_u16(OPT_IF_TSRESOL));
        self.scratch.extend_from_slice(&e.put_u16(1));
        self.scratch.extend_from_slice(&[tsresol, 0, 0, 0]);
        self.scratch.extend_from_slice(&e.put_u16(OPT_ENDOFOPT));
        self.scratch.extend_from_slice(&e.put_u16(0));
        self.finish_block()?;
        self.interfaces.push(tsresol);
        Ok(id)
    }

    /// Writes an Enhanced Packet Block on `interface`, its timestamp in that interface's unit.
    ///
    /// With a binary unit of 2^-n s the timestamp is rounded up to the next unit, so that it reads
    /// back exactly when 2^n ≥ 10^9 (n ≥ 30).
    pub fn write_epb(
        &mut self,
        interface: u32,
        ts_ns: i64,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        let tsresol = usize::try_from(interface)
            .ok()
            .and_then(|i| self.interfaces.get(i))
            .copied()
            .ok_or_else(|| {
                invalid(format!(
                    "interface {interface} was not added to this section ({} added)",
                    self.interfaces.len()
                ))
            })?;
        let units = to_units(non_negative(ts_ns)?, tsresol).ok_or_else(|| {
            invalid(format!(
                "timestamp {ts_ns} ns does not fit 64 bits in units of if_tsresol {tsresol:#x}"
            ))
        })?;
        let caplen = frame_len(data)?;
        let e = self.endian;
        self.scratch.clear();
        self.scratch.extend_from_slice(&e.put_u32(BLOCK_EPB));
        self.scratch.extend_from_slice(&[0; 4]);
        self.scratch.extend_from_slice(&e.put_u32(interface));
        self.scratch
            .extend_from_slice(&e.put_u32((units >> 32) as u32));
        self.scratch.extend_from_slice(&e.put_u32(units as u32));
        self.scratch.extend_from_slice(&e.put_u32(caplen));
        self.scratch.extend_from_slice(&e.put_u32(wire_len));
        self.scratch.extend_from_slice(data);
        self.finish_block()
    }

    /// Writes a Simple Packet Block (no timestamp, interface 0). `wire_len` is the original
    /// length; a reader takes the captured length from the block size, the original length and
    /// interface 0's snaplen.
    pub fn write_spb(&mut self, data: &[u8], wire_len: u32) -> io::Result<()> {
        if self.interfaces.is_empty() {
            return Err(invalid(
                "a simple packet block needs interface 0; add an interface first".to_owned(),
            ));
        }
        frame_len(data)?;
        let e = self.endian;
        self.scratch.clear();
        self.scratch.extend_from_slice(&e.put_u32(BLOCK_SPB));
        self.scratch.extend_from_slice(&[0; 4]);
        self.scratch.extend_from_slice(&e.put_u32(wire_len));
        self.scratch.extend_from_slice(data);
        self.finish_block()
    }

    /// Pads the block in `scratch` to 4 bytes, fills in both length fields and writes it.
    fn finish_block(&mut self) -> io::Result<()> {
        let padded = self.scratch.len().next_multiple_of(4);
        self.scratch.resize(padded, 0);
        let total = padded + 4;
        let total = u32::try_from(total)
            .map_err(|_| invalid(format!("a block of {total} bytes is too long for pcapng")))?;
        let len = self.endian.put_u32(total);
        if let Some(dst) = self.scratch.get_mut(4..8) {
            dst.copy_from_slice(&len);
        }
        self.scratch.extend_from_slice(&len);
        self.w.write_all(&self.scratch)
    }

    /// Gives back the writer (unflushed).
    pub fn into_inner(self) -> W {
        self.w
    }

    /// The writer, borrowed (e.g. to read a byte count it keeps).
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    /// Flushes the writer.
    pub fn flush_inner(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Nanoseconds to units of an if_tsresol; `None` when they do not fit in 64 bits.
fn to_units(ts_ns: u64, tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & !TSRESOL_BINARY_FLAG);
    let ns = u128::from(ts_ns);
    let units = if tsresol & TSRESOL_BINARY_FLAG != 0 {
        // ceil(ns × 2^n / 10^9): the reader's floor(units × 10^9 / 2^n) then gives ns back
        // whenever one unit is at most a nanosecond.
        let scaled = ns.checked_mul(1u128.checked_shl(exponent)?)?;
        scaled.div_ceil(NANOS_PER_SEC as u128)
    } else if exponent <= 9 {
        ns / 10u128.pow(9 - exponent)
    } else {
        ns.checked_mul(10u128.checked_pow(exponent - 9)?)?
    };
    u64::try_from(units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_for_decimal_and_binary_resolutions() {
        assert_eq!(to_units(1_500_000_000, 6), Some(1_500_000));
        assert_eq!(to_units(1_500_000_123, 9), Some(1_500_000_123));
        assert_eq!(to_units(1_000_000_000, 0x80 | 30), Some(1 << 30));
        assert_eq!(to_units(u64::MAX, 0x80 | 30), None);
        assert_eq!(to_units(1, 0x80 | 127), None);
    }

    #[test]
    fn refuses_what_the_format_cannot_hold() -> io::Result<()> {
        let mut w = PcapWriter::new(
            Vec::new(),
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
        )?;
        assert!(w.write_frame(-1, b"x", 1).is_err());
        assert!(w.write_frame(i64::MAX, b"x", 1).is_err());
        let mut ng = PcapngWriter::new(Vec::new(), Endian::Big)?;
        assert!(ng.write_spb(b"x", 1).is_err());
        assert!(ng.write_epb(0, 0, b"x", 1).is_err());
        assert!(ng.add_interface(LinkType(70_000), 6, 0).is_err());
        Ok(())
    }
}
