//! `--write-pcap`: what was captured, kept as pcapng evidence, written by the capture threads.
//!
//! Every batch a capture thread reads is written here before it is handed to the engine, so the
//! file holds exactly the frames captured, in the order each interface read them (frames of
//! several interfaces are interleaved batch by batch). Each file is a complete pcapng: a section
//! header, one Interface Description Block per `-i` (in the order given: interface id = input
//! number, with its link type, snaplen and nanosecond timestamps) and Enhanced Packet Blocks.
//!
//! Rotation (`--write-pcap-size`): once a file has reached the size, the next frame starts a new
//! file, named `FILE.1`, `FILE.2`, … in the order written (the first is `FILE` itself); nothing is
//! deleted. Data is flushed at least every [`FLUSH_EVERY`] (idle capture threads still pass by
//! once a second) and by [`Evidence::finish`] at exit, so a reader sees only whole blocks of
//! what was flushed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Batch;
use crate::capture::write::PcapngWriter;
use crate::capture::{Endian, LinkType};

/// Longest time written frames wait in the buffer before they reach the file.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Buffer in front of each file.
const BUFFER_BYTES: usize = 1 << 20;
/// if_tsresol for nanoseconds.
const TSRESOL_NANO: u8 = 9;

/// Counts the bytes that go through to the file.
struct Counting {
    file: BufWriter<File>,
    written: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The evidence files of a run.
pub struct Evidence {
    base: PathBuf,
    /// Start a new file once the current one is this large; `None`: never.
    rotate_bytes: Option<u64>,
    /// Link type and snaplen of each interface, by input number.
    interfaces: Vec<(LinkType, u32)>,
    writer: Option<PcapngWriter<Counting>>,
    /// Files opened so far (the current one is number `files - 1`).
    files: u32,
    frames_in_file: u64,
    frames: u64,
    last_flush: Instant,
    /// The first error; once set, nothing more is written.
    error: Option<String>,
}

impl Evidence {
    /// Creates `path` (truncating it) with an interface block per `(link type, snaplen)`.
    pub fn create(
        path: &Path,
        interfaces: Vec<(LinkType, u32)>,
        rotate_bytes: Option<u64>,
    ) -> io::Result<Evidence> {
        let mut evidence = Evidence {
            base: path.to_owned(),
            rotate_bytes,
            interfaces,
            writer: None,
            files: 0,
            frames_in_file: 0,
            frames: 0,
            last_flush: Instant::now(),
            error: None,
        };
        evidence.open_next()?;
        Ok(evidence)
    }

    /// The path of file number `n` (0 is the path given).
    pub fn path_of(base: &Path, n: u32) -> PathBuf {
        if n == 0 {
            base.to_owned()
        } else {
            let mut name = base.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        }
    }

    fn open_next(&mut self) -> io::Result<()> {
        if let Some(mut old) = self.writer.take() {
            old.flush_inner()?;
        }
        let path = Self::path_of(&self.base, self.files);
        let file = File::create(&path).map_err(|e| with_path(&path, e))?;
        let counting = Counting {
            file: BufWriter::with_capacity(BUFFER_BYTES, file),
            written: 0,
        };
        let mut writer = PcapngWriter::new(counting, Endian::Little)?;
        for &(link, snaplen) in &self.interfaces {
            writer.add_interface(link, TSRESOL_NANO, snaplen)?;
        }
        self.writer = Some(writer);
        self.files += 1;
        self.frames_in_file = 0;
        Ok(())
    }

    /// Writes the frames of a batch; flushes when the last flush is [`FLUSH_EVERY`] old.
    /// An error is kept (see [`Evidence::error`]) and ends the writing.
    pub fn write(&mut self, batch: &Batch) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_write(batch) {
            self.error = Some(format!(
                "{}: {e}",
                Self::path_of(&self.base, self.files.saturating_sub(1)).display()
            ));
        }
    }

    fn try_write(&mut self, batch: &Batch) -> io::Result<()> {
        for frame in batch.frames() {
            let full = self.writer.as_ref().is_some_and(|w| {
                self.rotate_bytes
                    .is_some_and(|max| w.get_ref().written >= max && self.frames_in_file > 0)
            });
            if full {
                self.open_next()?;
            }
            if let Some(w) = self.writer.as_mut() {
                w.write_epb(
                    u32::from(batch.source),
                    frame.ts_ns.max(0),
                    frame.data,
                    frame.wire_len,
                )?;
                self.frames_in_file += 1;
                self.frames += 1;
            }
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        match self.writer.as_mut() {
            Some(w) => w.flush_inner(),
            None => Ok(()),
        }
    }

    /// Flushes what is buffered; returns the first error of the run, if any.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.error.is_none()
            && let Err(e) = self.flush()
        {
            self.error = Some(format!(
                "{}: {e}",
                Self::path_of(&self.base, self.files.saturating_sub(1)).display()
            ));
        }
        self.error.clone().map_or(Ok(()), Err)
    }

    /// The first write error, if any (writing stopped there).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Frames written, over all files.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Files written.
    pub fn files(&self) -> u32 {
        self.files
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::Replay;

    fn batch(source: u16, n: u64) -> Batch {
        let mut b = Batch::new(source, LinkType::ETHERNET);
        for i in 0..n {
            let frame = vec![u8::try_from(i % 251).unwrap_or(0); 100];
            b.push(
                1_700_000_000_000_000_000 + i64::try_from(i).unwrap_or(0),
                &frame,
                120,
                i + 1,
            );
        }
        b
    }

    #[test]
    fn rotates_into_complete_files_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ev.pcapng");
        let mut ev = Evidence::create(
            &base,
            vec![(LinkType::ETHERNET, 65_535), (LinkType::RAW, 65_535)],
            Some(2_000),
        )
        .unwrap();
        ev.write(&batch(0, 30));
        ev.write(&batch(1, 30));
        ev.finish().unwrap();
        assert_eq!(ev.frames(), 60);
        assert!(ev.files() > 2, "files: {}", ev.files());
        let mut total = 0;
        for n in 0..ev.files() {
            let path = Evidence::path_of(&base, n);
            let mut replay = Replay::open(std::slice::from_ref(&path)).unwrap();
            let mut count = 0;
            while let Some(frame) = replay.next_frame().unwrap() {
                assert_eq!(frame.data.len(), 100);
                assert_eq!(frame.wire_len, 120);
                count += 1;
            }
            assert!(count > 0, "{} is empty", path.display());
            total += count;
        }
        assert_eq!(total, 60);
        assert!(!Evidence::path_of(&base, ev.files()).exists());
    }
}
