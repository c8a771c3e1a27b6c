//! The live status line: one line on standard error (packets, flows, drops, alerts), redrawn in
//! place with `\r` and an erase-line sequence, only when standard error is a terminal. It is
//! cleared before any other line reaches the terminal (an alert, the summary table, a log
//! message), so those are never garbled, and it is never written when standard error is piped or
//! redirected to a file.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Write};
use std::rc::Rc;
use std::time::Duration;

use egresswatch::event::Event;
use egresswatch::sink::{Sink, SinkError};

/// How often the line is redrawn.
pub const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Carriage return and ANSI "erase in line" (to its end).
const CLEAR: &str = "\r\x1b[K";

/// The figures shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub packets: u64,
    pub flows_active: u64,
    pub drops: Option<u64>,
    pub alerts: u64,
}

/// The text of the line (without control characters).
pub fn render(f: &Figures) -> String {
    let drops = match f.drops {
        Some(0) => "0 drops".to_owned(),
        Some(n) => format!("{n} DROPPED"),
        None => "drops n/a".to_owned(),
    };
    format!(
        "live: {} packets, {} flows, {drops}, {} alerts",
        f.packets, f.flows_active, f.alerts
    )
}

/// The line's state; shared by the live loop (draws) and the terminal sink wrapper (clears).
#[derive(Default)]
pub struct StatusLine {
    enabled: bool,
    shown: bool,
}

/// A shared handle.
pub type Shared = Rc<RefCell<StatusLine>>;

impl StatusLine {
    /// On only when asked for and standard error is a terminal.
    pub fn new(wanted: bool) -> Shared {
        Rc::new(RefCell::new(StatusLine {
            enabled: wanted && io::stderr().is_terminal(),
            shown: false,
        }))
    }

    /// Whether the line is drawn at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Draws (or redraws) the line.
    pub fn draw(&mut self, figures: &Figures) {
        if !self.enabled {
            return;
        }
        let mut err = io::stderr().lock();
        let _ = write!(err, "{CLEAR}{}", render(figures));
        let _ = err.flush();
        self.shown = true;
    }

    /// Erases the line if it is shown, so that the next output starts on a clean line.
    pub fn clear(&mut self) {
        if !self.shown {
            return;
        }
        let mut err = io::stderr().lock();
        let _ = write!(err, "{CLEAR}");
        let _ = err.flush();
        self.shown = false;
    }
}

/// Wraps the terminal sink: clears the status line before every event reaches the terminal.
pub struct ClearingSink {
    pub inner: Box<dyn Sink>,
    pub status: Shared,
}

impl Sink for ClearingSink {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        if let Ok(mut s) = self.status.try_borrow_mut() {
            s.clear();
        }
        self.inner.emit(event)
    }

    fn emit_line(&mut self, event: Event<'_>, line: &[u8]) -> Result<(), SinkError> {
        if let Ok(mut s) = self.status.try_borrow_mut() {
            s.clear();
        }
        self.inner.emit_line(event, line)
    }

    fn wants_flows(&self) -> bool {
        self.inner.wants_flows()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Ok(mut s) = self.status.try_borrow_mut() {
            s.clear();
        }
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_drops_loudly_and_has_no_control_characters() {
        let mut f = Figures {
            packets: 12,
            flows_active: 3,
            drops: Some(0),
            alerts: 1,
        };
        assert_eq!(render(&f), "live: 12 packets, 3 flows, 0 drops, 1 alerts");
        f.drops = Some(7);
        assert!(render(&f).contains("7 DROPPED"));
        f.drops = None;
        assert!(!render(&f).chars().any(char::is_control));
    }

    #[test]
    fn a_disabled_line_is_never_shown() {
        let status = StatusLine::new(false);
        status.borrow_mut().draw(&Figures::default());
        assert!(!status.borrow().shown);
    }
}
