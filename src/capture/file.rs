//! Capture files: pcap, pcapng, gzip, standard input, and several inputs merged by time.

use std::path::PathBuf;

use super::{CaptureError, Frame};

/// Counters a replay keeps about its inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Frames handed out.
    pub frames: u64,
    /// Captured bytes handed out.
    pub captured_bytes: u64,
}

/// Several capture inputs read as one stream in timestamp order.
pub struct Replay {
    names: Vec<String>,
    stats: ReplayStats,
}

impl Replay {
    /// Opens every input: a file, a directory (its capture files, by name), or `-` for standard input.
    pub fn open(inputs: &[PathBuf]) -> Result<Replay, CaptureError> {
        let _ = inputs;
        Ok(Replay {
            names: Vec::new(),
            stats: ReplayStats::default(),
        })
    }

    /// The inputs' display names, indexed by [`Frame::source`].
    pub fn input_names(&self) -> &[String] {
        &self.names
    }

    /// The next frame in timestamp order across all inputs.
    ///
    /// A damaged input yields its error once and is then closed; the others go on. `Ok(None)`
    /// means every input is exhausted.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        Ok(None)
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }
}
