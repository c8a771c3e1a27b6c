//! JSON lines: one event per line, each written whole (the text by [`ToJson`], which writes
//! what serde_json would for the events' `Serialize` form).

use std::io::Write;

use super::{Sink, SinkError};
use crate::event::{Event, EventSet, ToJson, write_summary};

/// Writes the selected events as JSON lines.
pub struct JsonLines<W: Write> {
    out: W,
    name: String,
    events: EventSet,
    /// Flush after every line (live mode, tailing operators) rather than at the end.
    flush_each: bool,
    line: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W, name: String, events: EventSet, flush_each: bool) -> JsonLines<W> {
        JsonLines {
            out,
            name,
            events,
            flush_each,
            line: Vec::with_capacity(1024),
        }
    }

    fn fail(&self, source: std::io::Error) -> SinkError {
        SinkError {
            name: self.name.clone(),
            source,
        }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        self.line.clear();
        match event {
            Event::Alert(a) if self.events.alert => a.write_json(&mut self.line),
            Event::Flow(f) if self.events.flow => f.write_json(&mut self.line),
            Event::Summary(s) if self.events.summary => {
                write_summary(&mut self.line, s).map_err(|e| self.fail(e.into()))?;
            }
            Event::Dns(d) if self.events.dns => d.write_json(&mut self.line),
            _ => return Ok(()),
        }
        self.line.push(b'\n');
        // One write_all of a whole line: a buffered writer never splits a line it can hold.
        if let Err(e) = self.out.write_all(&self.line) {
            return Err(self.fail(e));
        }
        if self.flush_each {
            self.out.flush().map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn wants_flows(&self) -> bool {
        self.events.flow
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.fail(e))
    }
}
