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

impl<W: Write> JsonLines<W> {
    fn selected(&self, event: &Event<'_>) -> bool {
        match event {
            Event::Alert(_) => self.events.alert,
            Event::Flow(_) => self.events.flow,
            Event::Summary(_) => self.events.summary,
            Event::Dns(_) => self.events.dns,
        }
    }

    /// Writes one whole line (newline included) with one `write_all`: a buffered writer never
    /// splits a line it can hold.
    fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        if let Err(e) = self.out.write_all(line) {
            return Err(self.fail(e));
        }
        if self.flush_each {
            self.out.flush().map_err(|e| self.fail(e))?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        if !self.selected(&event) {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match event {
            Event::Alert(a) => a.write_json(&mut line),
            Event::Flow(f) => f.write_json(&mut line),
            Event::Summary(s) => {
                write_summary(&mut line, s).map_err(|e| self.fail(e.into()))?;
            }
            Event::Dns(d) => d.write_json(&mut line),
        }
        line.push(b'\n');
        let written = self.write_line(&line);
        self.line = line;
        written
    }

    fn emit_line(&mut self, event: Event<'_>, line: &[u8]) -> Result<(), SinkError> {
        if !self.selected(&event) {
            return Ok(());
        }
        self.write_line(line)
    }

    fn wants_flows(&self) -> bool {
        self.events.flow
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.fail(e))
    }
}
