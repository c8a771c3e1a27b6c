//! The live JSON output: one destination shared by the JSON sink (alerts, flows, summary) and
//! the stats writer, which SIGHUP can reopen.
//!
//! `JsonLines` owns its writer and cannot be told to reopen it, so it writes into an [`Output`]
//! handle instead, and the live loop keeps a second handle to the same destination. Both run on
//! the one thread of the live loop, and every line is written whole and flushed before the next
//! step, so a reopen always falls between two lines: lines before it are in the old file (the
//! one a log rotator renamed), lines after it in the new one, none lost and none split.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use egresswatch::sink::SinkError;

/// Buffer in front of the file; every line is flushed anyway, so it only joins the pieces that
/// serde writes into one system call.
const OUTPUT_BUFFER_BYTES: usize = 1 << 16;

enum Target {
    Stdout(BufWriter<io::Stdout>),
    File { path: PathBuf, out: BufWriter<File> },
}

/// A handle on the live JSON output; clones write to the same place.
#[derive(Clone)]
pub struct Output {
    target: Rc<RefCell<Target>>,
    name: String,
}

impl Output {
    /// Standard output (never reopened).
    pub fn stdout() -> Output {
        Output {
            target: Rc::new(RefCell::new(Target::Stdout(BufWriter::with_capacity(
                OUTPUT_BUFFER_BYTES,
                io::stdout(),
            )))),
            name: "standard output".to_owned(),
        }
    }

    /// Creates (or truncates) the file, as `replay --json` does.
    pub fn create(path: &Path) -> Result<Output, SinkError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| SinkError {
            name: name.clone(),
            source,
        })?;
        Ok(Output {
            target: Rc::new(RefCell::new(Target::File {
                path: path.to_owned(),
                out: BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file),
            })),
            name,
        })
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Flushes what was written and opens the path again (creating it, or appending to it when
    /// it exists). Standard output is left as it is. When the path cannot be opened, writing goes
    /// on to the old file and the error is returned.
    pub fn reopen(&self) -> Result<bool, SinkError> {
        let fail = |source| SinkError {
            name: self.name.clone(),
            source,
        };
        let mut target = self.target.try_borrow_mut().map_err(|_| fail(busy()))?;
        let Target::File { path, out } = &mut *target else {
            return Ok(false);
        };
        out.flush().map_err(fail)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&*path)
            .map_err(fail)?;
        *out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
        Ok(true)
    }

    /// Writes one whole line and flushes it.
    pub fn write_line(&self, line: &[u8]) -> Result<(), SinkError> {
        let mut me = self.clone();
        me.write_all(line)
            .and_then(|()| me.flush())
            .map_err(|source| SinkError {
                name: self.name.clone(),
                source,
            })
    }
}

fn busy() -> io::Error {
    io::Error::other("the output is in use (a reentrant write)")
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *self.target.try_borrow_mut().map_err(|_| busy())? {
            Target::Stdout(out) => out.write(buf),
            Target::File { out, .. } => out.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut *self.target.try_borrow_mut().map_err(|_| busy())? {
            Target::Stdout(out) => out.write_all(buf),
            Target::File { out, .. } => out.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut *self.target.try_borrow_mut().map_err(|_| busy())? {
            Target::Stdout(out) => out.flush(),
            Target::File { out, .. } => out.flush(),
        }
    }
}
