//! Capture files: pcap, pcapng, gzip, standard input, and several inputs merged by time.
//!
//! [`Replay`] owns every input given on the command line (files, the capture files of directories,
//! `-` for standard input), recognises each one's format by its first bytes (never by its name),
//! and hands out their frames as one stream in timestamp order.
//!
//! Guarantees:
//! - frames are borrowed from a per-input read buffer: no copy and no allocation per frame;
//! - memory per input is bounded by its read buffer plus [`RECORD_MAX_BYTES`], whatever a file
//!   claims;
//! - damage in one input is reported once, after every frame before it, and the other inputs go on;
//! - with several inputs, frames come out in timestamp order; ties go to the input given first.
//!   Each input is expected to be in time order itself: its frames are never reordered.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::chunk::{CHUNK_BYTES, CHUNK_MIN_BYTES, ChunkReader, ReadError, Record};
use super::pcap::PcapReader;
use super::pcapng::{self, PcapngReader};
use super::{CaptureError, Endian, Frame, RECORD_MAX_BYTES};

/// Most inputs one replay can merge: [`Frame::source`] is a `u16`.
pub const INPUTS_MAX: usize = u16::MAX as usize + 1;

/// Bytes looked at to recognise a format: every magic number below fits in them.
const MAGIC_LEN: usize = 4;
/// gzip member header ID1 ID2 (RFC 1952 section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// pcap magic for microsecond timestamps (draft-ietf-opsawg-pcap section 4); read in the file's
/// own byte order, so the order in which it matches gives the file's byte order.
const PCAP_MAGIC_MICRO: u32 = 0xA1B2_C3D4;
/// pcap magic for nanosecond timestamps (draft-ietf-opsawg-pcap section 4).
const PCAP_MAGIC_NANO: u32 = 0xA1B2_3C4D;

/// The display name of standard input, and the argument that selects it.
const STDIN_NAME: &str = "-";

/// Counters a replay keeps about its inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Frames handed out.
    pub frames: u64,
    /// Captured bytes handed out.
    pub captured_bytes: u64,
    /// pcapng blocks of types that carry no frame and are not needed to read one (statistics,
    /// name resolution, custom blocks, ...), skipped.
    pub skipped_blocks: u64,
    /// Inputs that ended with an error instead of a clean end of file.
    pub failed_inputs: u64,
}

/// What the first bytes of a stream say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Magic {
    Pcap { endian: Endian, nanos: bool },
    Pcapng,
    Gzip,
    Empty,
    Unknown,
}

fn recognise(prefix: &[u8]) -> Magic {
    if prefix.is_empty() {
        return Magic::Empty;
    }
    if prefix.starts_with(&GZIP_MAGIC) {
        return Magic::Gzip;
    }
    let Ok(magic) = <[u8; MAGIC_LEN]>::try_from(prefix) else {
        return Magic::Unknown;
    };
    if magic == pcapng::SHB_MAGIC {
        return Magic::Pcapng;
    }
    for endian in [Endian::Little, Endian::Big] {
        match endian.u32(magic) {
            PCAP_MAGIC_MICRO => {
                return Magic::Pcap {
                    endian,
                    nanos: false,
                };
            }
            PCAP_MAGIC_NANO => {
                return Magic::Pcap {
                    endian,
                    nanos: true,
                };
            }
            _ => {}
        }
    }
    Magic::Unknown
}

/// The first bytes of a stream, and the stream still positioned before them.
struct Sniffed {
    magic: [u8; MAGIC_LEN],
    len: usize,
    reader: Box<dyn Read + Send>,
    /// Reading stopped on this error (reported later, by `next_frame`).
    error: Option<io::Error>,
}

impl Sniffed {
    fn prefix(&self) -> &[u8] {
        self.magic.get(..self.len).unwrap_or_default()
    }
}

/// Reads up to [`MAGIC_LEN`] bytes and returns them with a reader that still yields them first.
fn sniff(mut reader: Box<dyn Read + Send>) -> Sniffed {
    let mut magic = [0u8; MAGIC_LEN];
    let mut len = 0;
    let mut error = None;
    while let Some(free) = magic.get_mut(len..).filter(|free| !free.is_empty()) {
        match reader.read(free) {
            Ok(0) => break,
            Ok(k) => len = (len + k).min(MAGIC_LEN),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let replayed = Cursor::new(magic).take(len as u64).chain(reader);
    Sniffed {
        magic,
        len,
        reader: Box::new(replayed),
        error,
    }
}

/// How an input's bytes are read.
enum Format {
    Pcap(PcapReader),
    Pcapng(PcapngReader),
    /// Known to be unreadable before the first frame; the error is reported once.
    Broken(Option<ReadError>),
}

/// One input of a replay.
struct Input {
    name: String,
    reader: ChunkReader,
    format: Format,
    /// The stream is decompressed from gzip: decoder errors mean damage, and offsets count
    /// decompressed bytes.
    gzip: bool,
    /// Compressed bytes the gzip decoder has read so far (gzip inputs only).
    compressed: Option<Arc<AtomicU64>>,
    /// Frames read so far, including `pending`.
    frames: u64,
    /// The frame read ahead and not handed out yet.
    pending: Option<Record>,
    done: bool,
}

impl Input {
    /// Reads the next frame into `pending`; `Ok(false)` at the end of the input.
    #[inline]
    fn advance(&mut self, stats: &mut ReplayStats) -> Result<bool, CaptureError> {
        self.pending = None;
        if self.done {
            return Ok(false);
        }
        let result = match &mut self.format {
            Format::Pcap(p) => p.next(&mut self.reader),
            Format::Pcapng(p) => p.next(&mut self.reader, &mut stats.skipped_blocks),
            Format::Broken(error) => Err(error.take().unwrap_or_else(|| ReadError::Damaged {
                offset: 0,
                what: "the input could not be read".to_owned(),
            })),
        };
        match result {
            Ok(Some(record)) => {
                self.frames += 1;
                self.pending = Some(record);
                Ok(true)
            }
            Ok(None) => {
                self.close();
                Ok(false)
            }
            Err(error) => {
                let error = self.error(error);
                self.close();
                stats.failed_inputs += 1;
                Err(error)
            }
        }
    }

    fn close(&mut self) {
        self.done = true;
        self.reader.release();
    }

    /// Attaches the input's name, and reads a gzip decoder's complaints as damage.
    fn error(&mut self, error: ReadError) -> CaptureError {
        match error {
            // Corrupt deflate data often decompresses to garbage before the decoder notices:
            // what looks like an impossible record may be that garbage. Read on (bounded) to
            // see whether the decoder reports the stream corrupt, and say so if it does.
            ReadError::Damaged { offset, what } if self.gzip => {
                match self.reader.drain(GZIP_DRAIN_MAX_BYTES) {
                    Err(source) if is_gzip_damage(&source) => CaptureError::Damaged {
                        path: self.name.clone(),
                        offset,
                        what: format!(
                            "the gzip stream is corrupt ({source}; noticed {}); what it \
                             decompressed to here is not a readable record ({what})",
                            self.compressed_position()
                        ),
                    },
                    _ => CaptureError::Damaged {
                        path: self.name.clone(),
                        offset,
                        what,
                    },
                }
            }
            ReadError::Damaged { offset, what } => CaptureError::Damaged {
                path: self.name.clone(),
                offset,
                what,
            },
            ReadError::Io(source) if self.gzip && is_gzip_damage(&source) => {
                CaptureError::Damaged {
                    path: self.name.clone(),
                    offset: self.reader.offset(),
                    what: format!(
                        "the gzip stream is damaged or cut short ({source}; noticed {})",
                        self.compressed_position()
                    ),
                }
            }
            ReadError::Io(source) => CaptureError::Io {
                path: self.name.clone(),
                source,
            },
        }
    }
}

/// An input recognised, not yet given its read buffer.
struct Opened {
    name: String,
    reader: Box<dyn Read + Send>,
    format: Format,
    gzip: bool,
    compressed: Option<Arc<AtomicU64>>,
}

/// Decompressed bytes read past damage in a gzip input to find out whether the stream itself is
/// corrupt.
pub const GZIP_DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// An I/O error that is the gzip decoder's complaint (corrupt or cut short), not the disk's.
fn is_gzip_damage(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// Counts the bytes read through it (the compressed side of a gzip decoder).
struct Counted {
    inner: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.count.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

impl Input {
    /// Where the gzip decoder was in the compressed file when it complained. It reads ahead
    /// in blocks, so this bounds the damage's position from above.
    fn compressed_position(&self) -> String {
        match &self.compressed {
            Some(c) => format!("by compressed byte offset {}", c.load(Ordering::Relaxed)),
            None => "in the compressed stream".to_owned(),
        }
    }
}

/// Recognises `reader`'s format. `explicit` inputs (named on the command line, or a reader) of an
/// unknown format are an error; others (files found in a directory) are skipped with a warning.
fn recognise_input(
    name: String,
    reader: Box<dyn Read + Send>,
    explicit: bool,
) -> Result<Option<Opened>, CaptureError> {
    let mut sniffed = sniff(reader);
    let gzip = sniffed.error.is_none() && recognise(sniffed.prefix()) == Magic::Gzip;
    let mut compressed = None;
    if gzip {
        let count = Arc::new(AtomicU64::new(0));
        compressed = Some(count.clone());
        let counted = Counted {
            inner: sniffed.reader,
            count,
        };
        sniffed = sniff(Box::new(MultiGzDecoder::new(counted)));
    }
    let broken = |error: ReadError| Opened {
        name: name.clone(),
        reader: Box::new(io::empty()),
        format: Format::Broken(Some(error)),
        gzip,
        compressed: compressed.clone(),
    };
    if let Some(error) = sniffed.error {
        return Ok(Some(broken(ReadError::Io(error))));
    }
    let prefix = sniffed.prefix();
    let format = match recognise(prefix) {
        Magic::Pcap { endian, nanos } => Format::Pcap(PcapReader::new(endian, nanos)),
        Magic::Pcapng => Format::Pcapng(PcapngReader::new()),
        Magic::Empty => {
            let what = if gzip {
                "file is empty once decompressed"
            } else {
                "file is empty"
            };
            return Ok(Some(broken(ReadError::Damaged {
                offset: 0,
                what: what.to_owned(),
            })));
        }
        Magic::Gzip | Magic::Unknown => {
            let magic = if gzip {
                format!(
                    "{} (gzip), which decompresses to {}",
                    pcapng::hex(&GZIP_MAGIC),
                    pcapng::hex(prefix)
                )
            } else {
                pcapng::hex(prefix)
            };
            if explicit {
                return Err(CaptureError::UnknownFormat { path: name, magic });
            }
            tracing::warn!(
                file = %name,
                starts_with = %magic,
                "skipping a file that is not a pcap, pcapng or gzip capture"
            );
            return Ok(None);
        }
    };
    Ok(Some(Opened {
        name,
        reader: sniffed.reader,
        format,
        gzip,
        compressed,
    }))
}

fn io_error(path: &Path, source: io::Error) -> CaptureError {
    CaptureError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The regular files of a directory (symbolic links followed, not recursive), sorted by name.
fn directory_files(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = dir.join(entry.file_name());
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable directory entry");
            }
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Several capture inputs read as one stream in timestamp order.
pub struct Replay {
    names: Vec<String>,
    inputs: Vec<Input>,
    stats: ReplayStats,
    /// Merge only: inputs before this index have been read ahead once.
    primed: usize,
    /// Merge only: the input whose frame was handed out last, to read ahead again.
    refill: Option<usize>,
    /// Merge only: (timestamp, input) of every input holding a frame read ahead.
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Replay {
    /// Opens every input: a file, a directory (its capture files, by name), or `-` for standard input.
    ///
    /// Fails when a path cannot be opened or listed, or a file named explicitly is not a pcap,
    /// pcapng or gzip file. Files in a directory that are not captures are skipped with a warning.
    /// Damage, including an empty file, is reported later by [`Replay::next_frame`].
    pub fn open(inputs: &[PathBuf]) -> Result<Replay, CaptureError> {
        let mut opened = Vec::new();
        for path in inputs {
            if path.as_os_str() == STDIN_NAME {
                opened.extend(recognise_input(
                    STDIN_NAME.to_owned(),
                    Box::new(io::stdin()),
                    true,
                )?);
                continue;
            }
            let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
            if meta.is_dir() {
                for file in directory_files(path)? {
                    let reader = File::open(&file).map_err(|e| io_error(&file, e))?;
                    opened.extend(recognise_input(
                        file.display().to_string(),
                        Box::new(reader),
                        false,
                    )?);
                }
            } else {
                let reader = File::open(path).map_err(|e| io_error(path, e))?;
                opened.extend(recognise_input(
                    path.display().to_string(),
                    Box::new(reader),
                    true,
                )?);
            }
        }
        Self::build(opened)
    }

    /// Reads one stream (standard input, a test's bytes, a fuzzer's input) named `name`.
    ///
    /// Fails only when the stream is not a pcap, pcapng or gzip stream.
    pub fn from_reader(name: String, reader: Box<dyn Read + Send>) -> Result<Replay, CaptureError> {
        Self::from_readers(vec![(name, reader)])
    }

    /// Reads several named streams merged by timestamp, like [`Replay::open`] does with files.
    pub fn from_readers(
        readers: Vec<(String, Box<dyn Read + Send>)>,
    ) -> Result<Replay, CaptureError> {
        let mut opened = Vec::with_capacity(readers.len());
        for (name, reader) in readers {
            opened.extend(recognise_input(name, reader, true)?);
        }
        Self::build(opened)
    }

    fn build(opened: Vec<Opened>) -> Result<Replay, CaptureError> {
        if opened.len() > INPUTS_MAX {
            return Err(CaptureError::Io {
                path: opened
                    .get(INPUTS_MAX)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} capture inputs given; at most {INPUTS_MAX} can be merged",
                        opened.len()
                    ),
                ),
            });
        }
        // Several inputs share the memory a single input would get, down to a floor.
        let chunk = (CHUNK_BYTES / opened.len().max(1)).clamp(CHUNK_MIN_BYTES, CHUNK_BYTES);
        let inputs: Vec<Input> = opened
            .into_iter()
            .map(|o| Input {
                name: o.name,
                reader: ChunkReader::new(o.reader, chunk),
                format: o.format,
                gzip: o.gzip,
                compressed: o.compressed,
                frames: 0,
                pending: None,
                done: false,
            })
            .collect();
        Ok(Replay {
            names: inputs.iter().map(|i| i.name.clone()).collect(),
            heap: BinaryHeap::with_capacity(inputs.len()),
            inputs,
            stats: ReplayStats::default(),
            primed: 0,
            refill: None,
        })
    }

    /// The inputs' display names, indexed by [`Frame::source`]: paths as given (a directory's
    /// files as the directory joined with the file name), `-` for standard input.
    pub fn input_names(&self) -> &[String] {
        &self.names
    }

    /// The next frame in timestamp order across all inputs.
    ///
    /// A damaged input yields its error once and is then closed; the others go on. `Ok(None)`
    /// means every input is exhausted.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.inputs.len() == 1 {
            // One input: no merge bookkeeping at all.
            let Some(input) = self.inputs.first_mut() else {
                return Ok(None);
            };
            if !input.advance(&mut self.stats)? {
                return Ok(None);
            }
            return self.emit(0);
        }
        while self.primed < self.inputs.len() {
            let i = self.primed;
            self.primed += 1;
            self.read_ahead(i)?;
        }
        if let Some(i) = self.refill.take() {
            self.read_ahead(i)?;
        }
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill = Some(i);
        self.emit(i)
    }

    /// Reads input `i`'s next frame and queues it for the merge.
    fn read_ahead(&mut self, i: usize) -> Result<(), CaptureError> {
        let Some(input) = self.inputs.get_mut(i) else {
            return Ok(());
        };
        if input.advance(&mut self.stats)?
            && let Some(record) = &input.pending
        {
            self.heap.push(Reverse((record.ts_ns, i)));
        }
        Ok(())
    }

    /// Hands out input `i`'s frame read ahead.
    #[inline]
    fn emit(&mut self, i: usize) -> Result<Option<Frame<'_>>, CaptureError> {
        let Some(input) = self.inputs.get(i) else {
            return Ok(None);
        };
        let Some(record) = &input.pending else {
            return Ok(None);
        };
        let Some(data) = input.reader.buffer().get(record.data.clone()) else {
            // Unreachable: parsers only locate records inside the bytes they have read.
            return Err(CaptureError::Damaged {
                path: input.name.clone(),
                offset: input.reader.offset(),
                what: "internal error: a record was located outside the read buffer".to_owned(),
            });
        };
        debug_assert!(data.len() <= RECORD_MAX_BYTES);
        self.stats.frames += 1;
        self.stats.captured_bytes += data.len() as u64;
        Ok(Some(Frame {
            ts_ns: record.ts_ns,
            link_type: record.link_type,
            data,
            wire_len: record.wire_len,
            source: u16::try_from(i).unwrap_or(u16::MAX),
            index: input.frames,
        }))
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    use super::*;
    use crate::capture::write::{PcapWriter, PcapngWriter, TsResolution};
    use crate::capture::{LinkType, RECORD_MAX_BYTES};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A frame copied out of the replay, to compare after the borrow ends.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Owned {
        ts_ns: i64,
        link_type: LinkType,
        data: Vec<u8>,
        wire_len: u32,
        source: u16,
        index: u64,
    }

    /// Reads a replay to the end: its frames and every error, in order of appearance.
    fn drain(replay: &mut Replay) -> (Vec<Owned>, Vec<CaptureError>) {
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        // Each input ends at most once, so this many errors means a loop that never ends.
        for _ in 0..1_000_000 {
            match replay.next_frame() {
                Ok(Some(f)) => frames.push(Owned {
                    ts_ns: f.ts_ns,
                    link_type: f.link_type,
                    data: f.data.to_vec(),
                    wire_len: f.wire_len,
                    source: f.source,
                    index: f.index,
                }),
                Ok(None) => break,
                Err(e) => errors.push(e),
            }
        }
        (frames, errors)
    }

    fn replay_bytes(bytes: Vec<u8>) -> Result<Replay, CaptureError> {
        Replay::from_reader("test".to_owned(), Box::new(Cursor::new(bytes)))
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<(Vec<Owned>, Vec<CaptureError>), CaptureError> {
        let mut replay = replay_bytes(bytes)?;
        Ok(drain(&mut replay))
    }

    fn damaged_at(error: &CaptureError) -> Option<(u64, &str)> {
        match error {
            CaptureError::Damaged { offset, what, .. } => Some((*offset, what.as_str())),
            _ => None,
        }
    }

    /// Three frames with nanosecond detail, 1-byte to 1500-byte payloads.
    fn sample_frames() -> Vec<(i64, Vec<u8>, u32)> {
        vec![
            (1_600_000_000_123_456_789, vec![1u8; 60], 60),
            (1_600_000_001_000_000_001, vec![2u8; 1500], 1514),
            (1_600_000_002_999_999_999, vec![3u8; 1], 1),
        ]
    }

    fn pcap(
        link: LinkType,
        res: TsResolution,
        endian: Endian,
        frames: &[(i64, Vec<u8>, u32)],
    ) -> io::Result<Vec<u8>> {
        let mut w = PcapWriter::new(Vec::new(), link, res, endian)?;
        for (ts, data, wire) in frames {
            w.write_frame(*ts, data, *wire)?;
        }
        Ok(w.into_inner())
    }

    /// A pcapng block built by hand: type, length, body padded to 4 bytes, length.
    fn block(e: Endian, block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().next_multiple_of(4);
        let total = (padded + 12) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&e.put_u32(block_type));
        out.extend_from_slice(&e.put_u32(total));
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        out.extend_from_slice(&e.put_u32(total));
        out
    }

    fn shb_and_idb(e: Endian, link: LinkType) -> io::Result<Vec<u8>> {
        let mut w = PcapngWriter::new(Vec::new(), e)?;
        w.add_interface(link, 9, 0)?;
        Ok(w.into_inner())
    }

    #[test]
    fn pcap_round_trips_in_both_byte_orders_and_resolutions() -> TestResult {
        for endian in [Endian::Little, Endian::Big] {
            for res in [TsResolution::Micro, TsResolution::Nano] {
                let frames = sample_frames();
                let bytes = pcap(LinkType::LINUX_SLL, res, endian, &frames)?;
                let (got, errors) = read_bytes(bytes)?;
                assert!(errors.is_empty(), "{endian:?} {res:?}: {errors:?}");
                assert_eq!(got.len(), frames.len());
                for (i, (f, (ts, data, wire))) in got.iter().zip(&frames).enumerate() {
                    let want_ts = match res {
                        TsResolution::Micro => ts - ts % 1_000,
                        TsResolution::Nano => *ts,
                    };
                    assert_eq!(f.ts_ns, want_ts, "{endian:?} {res:?}");
                    assert_eq!(f.link_type, LinkType::LINUX_SLL);
                    assert_eq!(&f.data, data);
                    assert_eq!(f.wire_len, *wire);
                    assert_eq!(f.source, 0);
                    assert_eq!(f.index, i as u64 + 1);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn pcap_link_type_ignores_fcs_bits_and_caplen_over_wire_len_is_kept() -> TestResult {
        let mut bytes = pcap(LinkType::ETHERNET, TsResolution::Micro, Endian::Little, &[])?;
        // LinkType field with the FCS-present flag and length set in its upper bits.
        bytes
            .get_mut(20..24)
            .ok_or("short")?
            .copy_from_slice(&0x1400_0001u32.to_le_bytes());
        let mut w = PcapWriter::new(
            Vec::new(),
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
        )?;
        w.write_frame(5_000, &[9; 20], 10)?;
        bytes.extend_from_slice(w.into_inner().get(24..).ok_or("short")?);
        let (got, errors) = read_bytes(bytes)?;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.len(), 1);
        assert_eq!(
            got.first().map(|f| (f.link_type, f.wire_len)),
            Some((LinkType::ETHERNET, 20))
        );
        Ok(())
    }

    #[test]
    fn pcapng_sections_interfaces_and_resolutions() -> TestResult {
        let mut w = PcapngWriter::new(Vec::new(), Endian::Little)?;
        let ns = w.add_interface(LinkType::ETHERNET, 9, 0)?;
        let bin = w.add_interface(LinkType::RAW, 0x80 | 30, 0)?;
        assert_eq!((ns, bin), (0, 1));
        w.write_epb(ns, 1_000_000_000_000_000_001, &[1; 10], 10)?;
        w.write_epb(bin, 1_000_000_000_123_456_789, &[2; 11], 40)?;
        w.new_section(Endian::Big)?;
        let us = w.add_interface(LinkType::LINUX_SLL2, 6, 0)?;
        assert_eq!(us, 0, "interface ids restart in each section");
        w.write_epb(us, 1_000_000_001_000_002_999, &[3; 12], 12)?;
        let (got, errors) = read_bytes(w.into_inner())?;
        assert!(errors.is_empty(), "{errors:?}");
        let summary: Vec<_> = got
            .iter()
            .map(|f| (f.ts_ns, f.link_type, f.data.len(), f.wire_len, f.index))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1_000_000_000_000_000_001, LinkType::ETHERNET, 10, 10, 1),
                (1_000_000_000_123_456_789, LinkType::RAW, 11, 40, 2),
                (1_000_000_001_000_002_000, LinkType::LINUX_SLL2, 12, 12, 3),
            ]
        );
        Ok(())
    }

    #[test]
    fn pcapng_simple_packets_take_snaplen_and_the_last_timestamp() -> TestResult {
        let mut w = PcapngWriter::new(Vec::new(), Endian::Big)?;
        w.add_interface(LinkType::ETHERNET, 6, 4)?;
        w.write_epb(0, 7_000, &[1; 4], 100)?;
        w.write_spb(&[5; 10], 10)?; // cut to the snaplen, 4
        w.write_spb(&[6; 3], 3)?; // padded to 4 in the block: the original length wins
        let (got, errors) = read_bytes(w.into_inner())?;
        assert!(errors.is_empty(), "{errors:?}");
        let summary: Vec<_> = got
            .iter()
            .map(|f| (f.ts_ns, f.data.clone(), f.wire_len))
            .collect();
        assert_eq!(
            summary,
            vec![
                (7_000, vec![1; 4], 100),
                (7_000, vec![5; 4], 10),
                (7_000, vec![6; 3], 3)
            ]
        );
        Ok(())
    }

    #[test]
    fn pcapng_obsolete_packet_block_and_tsoffset() -> TestResult {
        let e = Endian::Big;
        let mut bytes = PcapngWriter::new(Vec::new(), e)?.into_inner();
        // IDB by hand: Ethernet, snaplen 0, if_tsresol 3 (ms), if_tsoffset 100 s.
        let mut idb = Vec::new();
        idb.extend_from_slice(&e.put_u16(1));
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&e.put_u32(0));
        idb.extend_from_slice(&e.put_u16(9));
        idb.extend_from_slice(&e.put_u16(1));
        idb.extend_from_slice(&[3, 0, 0, 0]);
        idb.extend_from_slice(&e.put_u16(14));
        idb.extend_from_slice(&e.put_u16(8));
        idb.extend_from_slice(&e.put_u64(100));
        idb.extend_from_slice(&[0; 4]);
        bytes.extend(block(e, 1, &idb));
        // Packet Block: interface 0, drops 7, timestamp 2500 ms, 5 of 9 bytes captured.
        let mut pb = Vec::new();
        pb.extend_from_slice(&e.put_u16(0));
        pb.extend_from_slice(&e.put_u16(7));
        pb.extend_from_slice(&e.put_u32(0));
        pb.extend_from_slice(&e.put_u32(2_500));
        pb.extend_from_slice(&e.put_u32(5));
        pb.extend_from_slice(&e.put_u32(9));
        pb.extend_from_slice(b"hello");
        bytes.extend(block(e, 2, &pb));
        let (got, errors) = read_bytes(bytes)?;
        assert!(errors.is_empty(), "{errors:?}");
        let summary: Vec<_> = got
            .iter()
            .map(|f| (f.ts_ns, f.data.clone(), f.wire_len))
            .collect();
        assert_eq!(summary, vec![(102_500_000_000, b"hello".to_vec(), 9)]);
        Ok(())
    }

    #[test]
    fn pcapng_unknown_blocks_are_skipped_and_counted() -> TestResult {
        let e = Endian::Little;
        let mut bytes = shb_and_idb(e, LinkType::ETHERNET)?;
        bytes.extend(block(e, 0x0000_0BAD, b"custom block body"));
        bytes.extend(block(e, 5, &[0; 12])); // Interface Statistics Block
        let mut w = PcapngWriter::new(Vec::new(), e)?;
        w.add_interface(LinkType::ETHERNET, 9, 0)?;
        let header_len = w.into_inner().len();
        let mut w = PcapngWriter::new(Vec::new(), e)?;
        w.add_interface(LinkType::ETHERNET, 9, 0)?;
        w.write_epb(0, 1, &[1; 3], 3)?;
        bytes.extend_from_slice(w.into_inner().get(header_len..).ok_or("short")?);
        let mut replay = replay_bytes(bytes)?;
        let (got, errors) = drain(&mut replay);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.len(), 1);
        assert_eq!(replay.stats().skipped_blocks, 2);
        assert_eq!(replay.stats().frames, 1);
        assert_eq!(replay.stats().captured_bytes, 3);
        Ok(())
    }

    #[test]
    fn pcapng_bad_block_lengths_are_damage_at_the_block() -> TestResult {
        let e = Endian::Little;
        let good = shb_and_idb(e, LinkType::ETHERNET)?;
        let at = good.len() as u64;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not a multiple of 4", {
                let mut b = block(e, 0xBAD, &[0; 4]);
                b.get_mut(4..8)
                    .ok_or("short")?
                    .copy_from_slice(&e.put_u32(13));
                b
            }),
            ("shorter than 12", {
                let mut b = block(e, 0xBAD, &[]);
                b.get_mut(4..8)
                    .ok_or("short")?
                    .copy_from_slice(&e.put_u32(8));
                b
            }),
            ("trailer differs", {
                let mut b = block(e, 0xBAD, &[0; 4]);
                let n = b.len();
                b.get_mut(n - 4..)
                    .ok_or("short")?
                    .copy_from_slice(&e.put_u32(20));
                b
            }),
            (
                "cut short",
                block(e, 0xBAD, &[0; 40]).get(..30).ok_or("short")?.to_vec(),
            ),
            ("huge", {
                let mut b = block(e, 0xBAD, &[0; 4]);
                b.get_mut(4..8)
                    .ok_or("short")?
                    .copy_from_slice(&e.put_u32(0xFFFF_FFF0));
                b
            }),
            ("unknown interface", {
                let mut body = Vec::new();
                for v in [3u32, 0, 0, 1, 1] {
                    body.extend_from_slice(&e.put_u32(v));
                }
                body.push(0xAA);
                block(e, 6, &body)
            }),
            ("caplen past the block", {
                let mut body = Vec::new();
                for v in [0u32, 0, 0, 64, 64] {
                    body.extend_from_slice(&e.put_u32(v));
                }
                block(e, 6, &body)
            }),
        ];
        for (case, tail) in cases {
            let mut bytes = good.clone();
            bytes.extend(tail);
            let (got, errors) = read_bytes(bytes)?;
            assert!(got.is_empty(), "{case}");
            assert_eq!(errors.len(), 1, "{case}: {errors:?}");
            let (offset, what) = errors.first().and_then(damaged_at).ok_or(case)?;
            assert_eq!(offset, at, "{case}: {what}");
        }
        Ok(())
    }

    #[test]
    fn gzip_inputs_are_decompressed_and_damage_counts_decompressed_bytes() -> TestResult {
        let frames = sample_frames();
        let plain = pcap(LinkType::ETHERNET, TsResolution::Nano, Endian::Big, &frames)?;
        // Two gzip members back to back, split inside a record: read as one stream.
        let (a, b) = plain.split_at(40);
        let mut gz = Vec::new();
        for part in [a, b] {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(part)?;
            gz.extend(enc.finish()?);
        }
        let (got, errors) = read_bytes(gz.clone())?;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            got.iter().map(|f| f.ts_ns).collect::<Vec<_>>(),
            frames.iter().map(|f| f.0).collect::<Vec<_>>()
        );

        // Damage inside a gzip file: the offset counts decompressed bytes.
        let mut cut = plain.clone();
        cut.truncate(plain.len() - 1);
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&cut)?;
        let (got, errors) = read_bytes(enc.finish()?)?;
        assert_eq!(got.len(), 2);
        let last_record = (24 + 16 + 60 + 16 + 1500) as u64;
        assert_eq!(
            errors.first().and_then(damaged_at).map(|d| d.0),
            Some(last_record)
        );

        // A gzip stream cut short is damage too, not an I/O error.
        let (_, errors) = read_bytes(gz.get(..gz.len() - 30).ok_or("short")?.to_vec())?;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors.first().and_then(damaged_at).is_some(), "{errors:?}");
        Ok(())
    }

    #[test]
    fn empty_and_unknown_inputs() -> TestResult {
        // Empty: the replay opens; the damage comes from next_frame.
        let (got, errors) = read_bytes(Vec::new())?;
        assert!(got.is_empty());
        assert_eq!(
            errors.first().and_then(damaged_at),
            Some((0, "file is empty"))
        );
        // Unknown format, named explicitly: an error at open.
        match replay_bytes(b"PK\x03\x04 a zip file".to_vec()) {
            Err(CaptureError::UnknownFormat { magic, .. }) => assert_eq!(magic, "50 4b 03 04"),
            other => return Err(format!("expected UnknownFormat, got {:?}", other.err()).into()),
        }
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"just text")?;
        match replay_bytes(enc.finish()?) {
            Err(CaptureError::UnknownFormat { magic, .. }) => {
                assert!(magic.contains("(gzip)"), "{magic}")
            }
            other => return Err(format!("expected UnknownFormat, got {:?}", other.err()).into()),
        }
        Ok(())
    }

    #[test]
    fn truncated_headers_and_records_report_where_they_start() -> TestResult {
        let frames = sample_frames();
        let whole = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
            &frames,
        )?;
        let second = (24 + 16 + 60) as u64;
        let third = second + 16 + 1500;
        // Cut inside the file header.
        let (got, errors) = read_bytes(whole.get(..10).ok_or("short")?.to_vec())?;
        assert!(got.is_empty());
        assert_eq!(errors.first().and_then(damaged_at).map(|d| d.0), Some(0));
        // Cut inside the third record header.
        let (got, errors) = read_bytes(whole.get(..third as usize + 7).ok_or("short")?.to_vec())?;
        assert_eq!(got.len(), 2);
        let (offset, what) = errors.first().and_then(damaged_at).ok_or("no damage")?;
        assert_eq!(offset, third);
        assert!(
            what.contains("7 bytes into a 16-byte record header"),
            "{what}"
        );
        // Cut inside the second record's data.
        let (got, errors) =
            read_bytes(whole.get(..second as usize + 100).ok_or("short")?.to_vec())?;
        assert_eq!(got.len(), 1);
        let (offset, what) = errors.first().and_then(damaged_at).ok_or("no damage")?;
        assert_eq!(offset, second);
        assert!(
            what.contains("claims 1500 captured bytes but the file ends after 84"),
            "{what}"
        );
        assert_eq!(errors.len(), 1);
        Ok(())
    }

    #[test]
    fn a_huge_caplen_is_refused_without_reading_it() -> TestResult {
        let mut bytes = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
            &sample_frames(),
        )?;
        let at = bytes.len() as u64;
        for v in [1u32, 0, 0xFFFF_FFFF, 60] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut replay = replay_bytes(bytes)?;
        let (got, errors) = drain(&mut replay);
        assert_eq!(got.len(), 3);
        let (offset, what) = errors.first().and_then(damaged_at).ok_or("no damage")?;
        assert_eq!(offset, at);
        assert_eq!(
            what,
            format!("record at offset {at} claims 4294967295 bytes, more than the 16 MiB limit")
        );
        assert_eq!(replay.stats().failed_inputs, 1);
        // The largest allowed record still reads.
        let big = vec![0u8; RECORD_MAX_BYTES];
        let bytes = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Big,
            &[(0, big, 0)],
        )?;
        let (got, errors) = read_bytes(bytes)?;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.first().map(|f| f.data.len()), Some(RECORD_MAX_BYTES));
        Ok(())
    }

    #[test]
    fn records_straddling_chunks_are_read_whole() -> TestResult {
        // Enough frames of odd sizes to cross several chunk boundaries (256 KiB each).
        let frames: Vec<_> = (0..3000)
            .map(|i| {
                (
                    i64::from(i) * 1_000,
                    vec![(i % 251) as u8; 700 + (i as usize % 97)],
                    2000,
                )
            })
            .collect();
        let bytes = pcap(
            LinkType::ETHERNET,
            TsResolution::Nano,
            Endian::Little,
            &frames,
        )?;
        let (got, errors) = read_bytes(bytes)?;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.len(), frames.len());
        for (f, (ts, data, _)) in got.iter().zip(&frames) {
            assert_eq!((f.ts_ns, &f.data), (*ts, data));
        }
        Ok(())
    }

    #[test]
    fn several_inputs_merge_by_time_ties_to_the_first() -> TestResult {
        let a = pcap(
            LinkType::ETHERNET,
            TsResolution::Nano,
            Endian::Little,
            &[
                (10, vec![0xA1], 1),
                (30, vec![0xA2], 1),
                (30, vec![0xA3], 1),
                (50, vec![0xA4], 1),
            ],
        )?;
        let mut w = PcapngWriter::new(Vec::new(), Endian::Big)?;
        w.add_interface(LinkType::RAW, 9, 0)?;
        for (ts, byte) in [(5, 0xB1), (30, 0xB2), (40, 0xB3)] {
            w.write_epb(0, ts, &[byte], 1)?;
        }
        let mut replay = Replay::from_readers(vec![
            ("a".to_owned(), Box::new(Cursor::new(a))),
            ("b".to_owned(), Box::new(Cursor::new(w.into_inner()))),
        ])?;
        assert_eq!(replay.input_names(), ["a", "b"]);
        let (got, errors) = drain(&mut replay);
        assert!(errors.is_empty(), "{errors:?}");
        let order: Vec<_> = got
            .iter()
            .map(|f| {
                (
                    f.ts_ns,
                    f.data.first().copied().unwrap_or(0),
                    f.source,
                    f.index,
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (5, 0xB1, 1, 1),
                (10, 0xA1, 0, 1),
                (30, 0xA2, 0, 2),
                (30, 0xA3, 0, 3),
                (30, 0xB2, 1, 2),
                (40, 0xB3, 1, 3),
                (50, 0xA4, 0, 4),
            ]
        );
        assert_eq!(replay.stats().frames, 7);
        Ok(())
    }

    #[test]
    fn a_damaged_input_stops_alone() -> TestResult {
        let frames = sample_frames();
        let whole = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
            &frames,
        )?;
        let cut = whole.get(..whole.len() - 1).ok_or("short")?.to_vec();
        let mut replay = Replay::from_readers(vec![
            ("cut".to_owned(), Box::new(Cursor::new(cut))),
            ("empty".to_owned(), Box::new(Cursor::new(Vec::new()))),
            ("whole".to_owned(), Box::new(Cursor::new(whole))),
        ])?;
        let (got, errors) = drain(&mut replay);
        assert_eq!(got.len(), 5);
        let paths: Vec<_> = errors
            .iter()
            .map(|e| match e {
                CaptureError::Damaged { path, .. } => path.as_str(),
                _ => "other",
            })
            .collect();
        assert_eq!(paths, ["empty", "cut"]);
        assert_eq!(replay.stats().failed_inputs, 2);
        Ok(())
    }

    #[test]
    fn open_reads_files_and_directories_by_name() -> TestResult {
        let dir = tempfile::tempdir()?;
        let frames = sample_frames();
        let one = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
            frames.get(..1).ok_or("short")?,
        )?;
        let two = pcap(
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Big,
            frames.get(1..).ok_or("short")?,
        )?;
        fs::write(dir.path().join("b.cap"), &two)?;
        fs::write(dir.path().join("a.pcap"), &one)?;
        fs::write(dir.path().join("notes.txt"), b"not a capture")?;
        fs::create_dir(dir.path().join("sub"))?;
        let mut replay = Replay::open(&[dir.path().to_path_buf()])?;
        let names: Vec<String> = replay.input_names().to_vec();
        assert_eq!(
            names,
            [dir.path().join("a.pcap"), dir.path().join("b.cap")]
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        );
        let (got, errors) = drain(&mut replay);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(got.iter().map(|f| f.source).collect::<Vec<_>>(), [0, 1, 1]);

        // Named explicitly, the text file is an error; a missing file too.
        assert!(matches!(
            Replay::open(&[dir.path().join("notes.txt")]),
            Err(CaptureError::UnknownFormat { .. })
        ));
        assert!(matches!(
            Replay::open(&[dir.path().join("missing.pcap")]),
            Err(CaptureError::Io { .. })
        ));
        // An empty file opens, and next_frame reports it.
        fs::write(dir.path().join("empty.pcap"), b"")?;
        let mut replay = Replay::open(&[dir.path().join("empty.pcap")])?;
        let (_, errors) = drain(&mut replay);
        assert_eq!(
            errors.first().and_then(damaged_at),
            Some((0, "file is empty"))
        );
        Ok(())
    }

    /// Every way a single input can end: frames, then `Ok(None)` or one error then `Ok(None)`.
    fn check_ends_cleanly(bytes: Vec<u8>) -> Result<(), TestCaseError> {
        let mut replay = match replay_bytes(bytes) {
            Ok(r) => r,
            Err(CaptureError::UnknownFormat { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("open: {e}"))),
        };
        let mut errors = 0;
        for _ in 0..100_000 {
            match replay.next_frame() {
                Ok(Some(f)) => prop_assert!(f.data.len() <= RECORD_MAX_BYTES),
                Ok(None) => {
                    prop_assert!(errors <= 1);
                    return Ok(());
                }
                Err(CaptureError::Damaged { .. }) => errors += 1,
                Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
            }
        }
        Err(TestCaseError::fail("never ended"))
    }

    proptest! {
        #[test]
        fn random_bytes_after_a_pcap_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
            big_endian in any::<bool>(),
            nanos in any::<bool>(),
        ) {
            let endian = if big_endian { Endian::Big } else { Endian::Little };
            let res = if nanos { TsResolution::Nano } else { TsResolution::Micro };
            let mut bytes = pcap(LinkType::ETHERNET, res, endian, &[])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            bytes.extend(tail);
            check_ends_cleanly(bytes)?;
        }

        #[test]
        fn random_bytes_after_a_pcapng_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
            big_endian in any::<bool>(),
        ) {
            let endian = if big_endian { Endian::Big } else { Endian::Little };
            let mut bytes = shb_and_idb(endian, LinkType::ETHERNET)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            bytes.extend(tail);
            check_ends_cleanly(bytes)?;
        }

        #[test]
        fn random_blocks_with_valid_framing_never_panic(
            blocks in proptest::collection::vec(
                (prop_oneof![Just(1u32), Just(2), Just(3), Just(6), Just(0x0A0D_0D0A), any::<u32>()],
                 proptest::collection::vec(any::<u8>(), 0..64)),
                0..12),
            big_endian in any::<bool>(),
        ) {
            let endian = if big_endian { Endian::Big } else { Endian::Little };
            let mut bytes = shb_and_idb(endian, LinkType::ETHERNET)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (block_type, body) in blocks {
                bytes.extend(block(endian, block_type, &body));
            }
            check_ends_cleanly(bytes)?;
        }
    }

    /// Prints the read cost per frame; a figure, not a check. Run it optimised:
    /// `cargo test --release --lib throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints a timing; meaningful only in an optimised build"]
    fn throughput_of_700_byte_frames() -> TestResult {
        const FRAMES: usize = 200_000;
        let frame = vec![0x5Au8; 700];
        let mut w = PcapWriter::new(
            Vec::with_capacity(FRAMES * 716 + 24),
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
        )?;
        for i in 0..FRAMES {
            w.write_frame(i as i64 * 1_000, &frame, 700)?;
        }
        let bytes = w.into_inner();
        let file = tempfile::NamedTempFile::new()?;
        fs::write(file.path(), &bytes)?;
        for (label, from_file) in [("memory", false), ("file", true)] {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let mut replay = if from_file {
                    Replay::open(&[file.path().to_path_buf()])?
                } else {
                    replay_bytes(bytes.clone())?
                };
                let start = std::time::Instant::now();
                let mut sum = 0u64;
                while let Some(f) = replay.next_frame()? {
                    sum = sum.wrapping_add(u64::from(f.data.first().copied().unwrap_or(0)));
                }
                let ns = start.elapsed().as_nanos() as f64 / FRAMES as f64;
                assert_eq!(sum, 0x5A * FRAMES as u64);
                best = best.min(ns);
            }
            println!("{label}: {best:.1} ns per 700-byte frame");
        }
        Ok(())
    }

    /// The shared captures, or `None` (with a note) where the folder is missing.
    fn shared_pcaps() -> Option<PathBuf> {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps"));
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!(
                "note: {} is missing; skipping the shared-capture test",
                dir.display()
            );
            None
        }
    }

    fn read_shared(
        dir: &Path,
        name: &str,
    ) -> Result<(Vec<Owned>, Vec<CaptureError>), CaptureError> {
        let mut replay = Replay::open(&[dir.join(name)])?;
        Ok(drain(&mut replay))
    }

    #[test]
    fn every_shared_capture_reads_to_the_end_or_to_damage() -> TestResult {
        let Some(dir) = shared_pcaps() else {
            return Ok(());
        };
        for file in directory_files(&dir)? {
            let name = file.display().to_string();
            let is_capture_name = file
                .extension()
                .is_some_and(|ext| ext == "pcap" || ext == "pcapng");
            let mut replay = match Replay::open(std::slice::from_ref(&file)) {
                Ok(r) => r,
                Err(CaptureError::UnknownFormat { .. }) if !is_capture_name => continue,
                Err(e) => return Err(format!("{name}: {e}").into()),
            };
            let (_, errors) = drain(&mut replay);
            assert!(errors.len() <= 1, "{name}: {errors:?}");
            for e in &errors {
                assert!(matches!(e, CaptureError::Damaged { .. }), "{name}: {e}");
            }
        }
        Ok(())
    }

    #[test]
    fn every_manifest_count_matches() -> TestResult {
        let Some(dir) = shared_pcaps() else {
            return Ok(());
        };
        let manifest = fs::read_to_string(dir.join("MANIFEST.tsv"))?;
        let mut checked = 0;
        for line in manifest.lines().skip(1) {
            let columns: Vec<&str> = line.split('\t').collect();
            let (Some(name), Some(packets)) = (columns.get(3), columns.get(7)) else {
                continue;
            };
            // Damaged files have prose in the count column; they are checked one by one below.
            let Ok(count) = packets.parse::<usize>() else {
                continue;
            };
            let (frames, errors) = read_shared(&dir, name)?;
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert_eq!(frames.len(), count, "{name}");
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} manifest rows had a count");
        Ok(())
    }

    #[test]
    fn shared_captures_have_their_manifest_frame_counts() -> TestResult {
        let Some(dir) = shared_pcaps() else {
            return Ok(());
        };
        for (name, count) in [
            ("ndpi_wechat.pcap", 1672),
            ("ndpi_dns.pcap", 5),
            ("ndpi_nfsv3_bigendian.pcap", 128),
            ("zeek_pcapng-multi-interface.pcapng", 6),
            ("pcapngtg_be_test102_all_blocks.pcapng", 5),
            ("tcpdump_empty.pcap", 0),
            ("zeek_echo-connections.pcap", 82_582),
        ] {
            let (frames, errors) = read_shared(&dir, name)?;
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert_eq!(frames.len(), count, "{name}");
        }

        let (frames, errors) = read_shared(&dir, "sv_bug-6875-01_fuzz.pcap")?;
        assert_eq!(frames.len(), 1);
        let (offset, what) = errors.first().and_then(damaged_at).ok_or("no damage")?;
        assert_eq!(offset, 228);
        assert!(what.contains("1409179648"), "{what}");

        let (frames, errors) = read_shared(&dir, "ndpi_fuzz-2021-10-13_truncated.pcap")?;
        assert!(frames.is_empty());
        assert_eq!(errors.first().and_then(damaged_at).map(|d| d.0), Some(24));

        let (frames, _) = read_shared(&dir, "tcpdump_tcp-handshake-nano.pcap")?;
        assert_eq!(frames.len(), 3);
        assert!(
            frames.iter().any(|f| f.ts_ns % 1_000 != 0),
            "nanoseconds were lost"
        );
        assert!(frames.iter().all(|f| f.link_type == LinkType::LINUX_SLL));

        let (frames, _) = read_shared(&dir, "zeek_tcp_truncated-header_snaplen68.pcap")?;
        assert!(
            frames
                .iter()
                .all(|f| f.data.len() <= 68 && f.wire_len as usize > f.data.len())
        );

        let (frames, _) = read_shared(&dir, "pcapngtg_be_test102_all_blocks.pcapng")?;
        let links: Vec<u32> = frames.iter().map(|f| f.link_type.0).collect();
        assert!(links.contains(&0) && links.contains(&1), "{links:?}");
        Ok(())
    }
}
