//! A read buffer that hands out records as slices of itself.
//!
//! [`ChunkReader`] reads its input in large chunks into one buffer it owns. Parsers look at the
//! unread bytes ([`ChunkReader::head`]), ask for more when a record does not fit yet
//! ([`ChunkReader::fill`]) and mark a record as read ([`ChunkReader::consume`]). Frames are then
//! handed out as slices of the buffer: no copy and no allocation per packet.
//!
//! Guarantees: the buffer only moves or grows inside `fill`, so a slice located before the next
//! `fill` stays valid; the buffer never grows past the larger of the chunk size and the largest
//! `fill` request, and callers cap those at [`super::RECORD_MAX_BYTES`] plus a header.

use std::io::{self, Read};
use std::ops::Range;

use super::LinkType;

/// Default read size: large enough to keep system calls (and gzip calls) rare, small enough for
/// the kernel's copy to land in the core's L2 cache, where the record parser and the decoder
/// read it next (the reading thread used 4% less CPU on the main benchmark capture than with
/// 1 MiB reads, three measurements).
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;

/// Smallest read size used when many inputs share the memory budget of a merge.
pub(crate) const CHUNK_MIN_BYTES: usize = 64 * 1024;

/// One record found by a format parser, located in its [`ChunkReader`]'s buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) ts_ns: i64,
    pub(crate) link_type: LinkType,
    /// Where the captured bytes are in [`ChunkReader::buffer`]; valid until the next `fill`.
    pub(crate) data: Range<usize>,
    pub(crate) wire_len: u32,
}

/// Why a format parser stopped, before the input's name is attached.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The bytes are not what the format says; `offset` is where the bad record or block starts.
    Damaged { offset: u64, what: String },
    /// Reading failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Buffered reader over one input stream; see the module documentation.
pub(crate) struct ChunkReader {
    inner: Box<dyn Read + Send>,
    /// Allocated on the first `fill`, so inputs waiting their turn cost no memory.
    buf: Vec<u8>,
    /// Index in `buf` of the first unread byte.
    start: usize,
    /// Index in `buf` one past the last byte read from `inner`.
    end: usize,
    /// Offset in the stream of `buf[0]`.
    base: u64,
    /// Size of the buffer to allocate, and so of the reads.
    chunk: usize,
    /// `inner` returned end of file.
    eof: bool,
}

impl ChunkReader {
    /// Wraps `inner`, reading up to `chunk` bytes at a time.
    pub(crate) fn new(inner: Box<dyn Read + Send>, chunk: usize) -> Self {
        ChunkReader {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            chunk: chunk.max(1),
            eof: false,
        }
    }

    /// Offset in the stream of the first unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.start as u64)
    }

    /// Index in [`Self::buffer`] of the first unread byte.
    #[inline]
    pub(crate) fn head_index(&self) -> usize {
        self.start
    }

    /// The unread bytes already in the buffer.
    #[inline]
    pub(crate) fn head(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The whole buffer, for slicing out records located with [`Self::head_index`].
    #[inline]
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Makes at least `n` unread bytes available unless the input ends first.
    ///
    /// Returns how many unread bytes are available: `n` or more, or fewer at end of input.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        let available = self.end - self.start;
        if available >= n || self.eof {
            return Ok(available);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<usize> {
        // Fewer than `n` bytes are unread, so moving them costs less than the record itself.
        self.compact();
        let wanted = n.max(self.chunk);
        if self.buf.len() < wanted {
            self.buf.resize(wanted, 0);
        }
        while self.end - self.start < n {
            let Some(free) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.inner.read(free) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end = (self.end + k).min(self.buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Moves the unread bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.base = self.base.saturating_add(self.start as u64);
        self.end -= self.start;
        self.start = 0;
    }

    /// Marks `n` bytes as read; never more than are available.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Reads and discards up to `limit` more bytes of the input (after damage, to find out
    /// whether a decompressor under it reports the stream corrupt). Returns the bytes read, or
    /// the input's error.
    pub(crate) fn drain(&mut self, limit: u64) -> io::Result<u64> {
        let mut scratch = [0u8; 16 * 1024];
        let mut read = 0u64;
        while read < limit && !self.eof {
            match self.inner.read(&mut scratch) {
                Ok(0) => self.eof = true,
                Ok(k) => read += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(read)
    }

    /// Frees the buffer once the input is done.
    pub(crate) fn release(&mut self) {
        self.base = self.offset();
        self.buf = Vec::new();
        self.start = 0;
        self.end = 0;
        self.eof = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most 3 bytes per call, to exercise refills.
    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(buf.get_mut(..n).unwrap_or_default())
        }
    }

    #[test]
    fn fill_consume_and_compact_keep_offsets() -> io::Result<()> {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut r = ChunkReader::new(Box::new(Trickle(io::Cursor::new(data.clone()))), 16);
        let mut seen = Vec::new();
        loop {
            let got = r.fill(10)?;
            if got == 0 {
                break;
            }
            assert!(got >= 10 || got == data.len() - seen.len());
            let take = got.min(10);
            assert_eq!(r.offset(), seen.len() as u64);
            seen.extend_from_slice(r.head().get(..take).unwrap_or_default());
            r.consume(take);
        }
        assert_eq!(seen, data);
        Ok(())
    }

    #[test]
    fn grows_for_a_large_request_then_reports_a_short_end() -> io::Result<()> {
        let mut r = ChunkReader::new(Box::new(io::Cursor::new(vec![7u8; 100])), 8);
        assert!(r.fill(40)? >= 40);
        r.consume(40);
        assert!(r.fill(50)? >= 50);
        r.consume(50);
        assert_eq!(r.fill(20)?, 10);
        assert_eq!(r.offset(), 90);
        r.consume(10);
        assert_eq!(r.fill(1)?, 0);
        Ok(())
    }
}
