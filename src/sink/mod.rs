//! Sinks: where events go. JSON lines, the terminal view, and the JUnit report.
//!
//! Every sink receives the same [`Event`]s in the same order. The JSON sink writes each event as
//! one whole line with a single write, so a reader never sees half a line; the terminal view
//! never prints a control character that came from outside the program.

mod json;
mod junit;
mod terminal;

use std::io;

use crate::event::Event;

pub use json::JsonLines;
pub use junit::write_junit;
pub use terminal::{Terminal, sanitize};

/// A sink could not write.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
pub struct SinkError {
    /// The file or stream, e.g. `alerts.jsonl` or `standard output`.
    pub name: String,
    #[source]
    pub source: io::Error,
}

impl SinkError {
    /// The reader went away (`| head`): not a failure of the tool.
    pub fn is_broken_pipe(&self) -> bool {
        self.source.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Receives events.
pub trait Sink {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError>;
    /// [`Sink::emit`] for an event whose JSON line is written already: `line` is what
    /// [`ToJson`](crate::event::ToJson) writes for it, and a newline. A sink that writes JSON
    /// lines can copy it rather than write the event again; the others ignore it.
    fn emit_line(&mut self, event: Event<'_>, line: &[u8]) -> Result<(), SinkError> {
        let _ = line;
        self.emit(event)
    }
    /// Whether this sink writes flow records; when none does, the engine does not build them.
    fn wants_flows(&self) -> bool {
        true
    }
    /// Flushes everything; called once at the end of the run.
    fn finish(&mut self) -> Result<(), SinkError>;
}
