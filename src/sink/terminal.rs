//! The terminal view: one readable line per alert as it happens, and a summary table per device
//! at the end. Colours only when asked for (the CLI turns them on for a terminal).

use std::fmt::Write as _;
use std::io::Write;

use super::{Sink, SinkError};
use crate::event::{Alert, DeviceRef, Event, Summary, Traffic};
use crate::policy::Severity;

/// Longest text from outside the program (names, organisations) shown on a terminal line.
pub const TERMINAL_TEXT_MAX_CHARS: usize = 80;

/// Makes text safe for a terminal: control characters (including ESC, so no ANSI sequence gets
/// through) become `�`, and text longer than `max_chars` is cut with a visible `…`.
pub fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '\u{fffd}' } else { c });
    }
    out
}

/// Human-readable byte counts: `512 B`, `1.5 KiB`, `12.3 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "\x1b[1;35m",
        Severity::High => "\x1b[1;31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
        Severity::Info => "\x1b[2m",
    }
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

/// The human view.
pub struct Terminal<W: Write> {
    out: W,
    name: String,
    colour: bool,
    alerts: bool,
    summary: bool,
}

impl<W: Write> Terminal<W> {
    pub fn new(out: W, name: String, colour: bool) -> Terminal<W> {
        Terminal {
            out,
            name,
            colour,
            alerts: true,
            summary: true,
        }
    }

    /// Chooses whether alert lines and the summary table are shown.
    pub fn show(mut self, alerts: bool, summary: bool) -> Terminal<W> {
        self.alerts = alerts;
        self.summary = summary;
        self
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn write(&mut self, text: &str) -> Result<(), SinkError> {
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|source| SinkError {
                name: self.name.clone(),
                source,
            })
    }

    fn device_label(d: &DeviceRef) -> String {
        match &d.name {
            Some(name) => format!("{} ({})", sanitize(name, TERMINAL_TEXT_MAX_CHARS), d.ip),
            None => d.ip.to_string(),
        }
    }

    fn alert_line(&self, a: &Alert) -> String {
        let sev = format!("{:<8}", a.rule.severity.as_str().to_uppercase());
        // A proxied target known only by name has no address: `?`.
        let ip = a
            .remote
            .ip
            .map_or_else(|| "?".to_owned(), |ip| ip.to_string());
        let mut remote = match a.remote.port {
            Some(p) if a.remote.ip.is_some_and(|ip| ip.is_ipv6()) => format!("[{ip}]:{p}"),
            Some(p) => format!("{ip}:{p}"),
            None => ip,
        };
        let _ = write!(remote, "/{}", a.transport);
        if let Some(name) = &a.remote.hostname {
            let _ = write!(remote, " ({})", sanitize(name, TERMINAL_TEXT_MAX_CHARS));
        }
        let mut geo = a
            .remote
            .country
            .map_or_else(|| "??".to_owned(), |c| c.to_string());
        if let Some(asn) = a.remote.asn {
            let _ = write!(geo, " AS{asn}");
        }
        if let Some(org) = &a.remote.as_org {
            let _ = write!(geo, " {}", sanitize(org, 40));
        }
        // The tunnel, proxy or redirecting server in between, with its country.
        if let Some(v) = &a.via {
            let country = v.country.map_or_else(|| "??".to_owned(), |c| c.to_string());
            let _ = write!(geo, " via {} {} {country}", v.kind, v.ip);
        }
        format!(
            "{} {} {} {} → {} {}  {}\n",
            a.timestamp,
            self.paint(severity_colour(a.rule.severity), &sev),
            self.paint(BOLD, &sanitize(&a.rule.id, TERMINAL_TEXT_MAX_CHARS)),
            Self::device_label(&a.device),
            remote,
            self.paint(BOLD, &geo),
            sanitize(&a.rule.reason, 160),
        )
    }

    fn traffic_row(out: &mut String, label: &str, t: &Traffic) {
        let _ = writeln!(
            out,
            "    {label:<12} {:>7} {:>12} {:>12}",
            t.flows,
            human_bytes(t.bytes_out),
            human_bytes(t.bytes_in)
        );
    }

    fn summary_text(&self, s: &Summary) -> String {
        let mut out = String::new();
        let c = &s.counters;
        let _ = writeln!(
            out,
            "\n{}",
            self.paint(
                BOLD,
                &format!(
                    "egresswatch summary: {} packets in {} input(s), {} flows, {} alerts ({} suppressed as duplicates); policy {}",
                    c.frames,
                    s.inputs.len(),
                    c.flows,
                    c.alerts,
                    c.alerts_suppressed,
                    sanitize(&s.policy, TERMINAL_TEXT_MAX_CHARS)
                )
            )
        );
        for input in &s.inputs {
            if let Some(err) = &input.error {
                let _ = writeln!(
                    out,
                    "  {} {}",
                    self.paint("\x1b[1;31m", "input error:"),
                    sanitize(err, 300)
                );
            }
        }
        if !c.unsupported_link_types.is_empty() {
            let list: Vec<String> = c
                .unsupported_link_types
                .iter()
                .map(|(lt, n)| format!("{lt} ({n} frames)"))
                .collect();
            let _ = writeln!(out, "  unsupported link types skipped: {}", list.join(", "));
        }
        if c.flows_evicted > 0 {
            let _ = writeln!(
                out,
                "  {} flows evicted because the flow table was full (raise --max-flows)",
                c.flows_evicted
            );
        }
        // Devices whose traffic never left (only internal, multicast or other non-public
        // destinations) are summed up in one line; the JSON summary lists them all.
        let (shown, quiet): (Vec<_>, Vec<_>) = s.devices.iter().partition(|d| {
            !d.alerts.is_empty()
                || d.countries.keys().any(|c| c != "non-public")
                || !d.resolvers.is_empty()
        });
        if !quiet.is_empty() {
            let _ = writeln!(
                out,
                "  {} device(s) with only local, multicast or other non-public traffic (listed in the JSON summary)",
                quiet.len()
            );
        }
        for d in shown {
            let _ = writeln!(
                out,
                "\n  device {}{}",
                self.paint(BOLD, &Self::device_label(&d.device)),
                d.device
                    .mac
                    .map(|m| format!("  mac {m}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "    {:<12} {:>7} {:>12} {:>12}",
                "country", "flows", "bytes out", "bytes in"
            );
            let mut countries: Vec<_> = d.countries.iter().collect();
            countries.sort_by(|a, b| b.1.bytes_out.cmp(&a.1.bytes_out).then(a.0.cmp(b.0)));
            for (country, t) in countries {
                Self::traffic_row(&mut out, country, t);
            }
            if d.internal.flows > 0 {
                Self::traffic_row(&mut out, "(internal)", &d.internal);
            }
            Self::resolver_rows(&mut out, d);
            for (rule, n) in &d.alerts {
                let _ = writeln!(
                    out,
                    "    alert {} ×{} ({}){}",
                    sanitize(rule, TERMINAL_TEXT_MAX_CHARS),
                    n.alerts,
                    n.severity,
                    if n.suppressed > 0 {
                        format!(", {} more suppressed", n.suppressed)
                    } else {
                        String::new()
                    }
                );
            }
        }
        out
    }
}

/// Resolvers: one line per resolver a device sent DNS queries to.
impl<W: Write> Terminal<W> {
    fn resolver_rows(out: &mut String, d: &crate::event::DeviceSummary) {
        for r in &d.resolvers {
            let name = r
                .hostname
                .as_deref()
                .map(|h| format!(" {}", sanitize(h, TERMINAL_TEXT_MAX_CHARS)))
                .unwrap_or_default();
            let country = r.country.map_or_else(|| "-".to_owned(), |c| c.to_string());
            let queries = if r.queries > 0 {
                format!(", {} queries", r.queries)
            } else {
                String::new()
            };
            let flows = if r.flows == 1 { "flow" } else { "flows" };
            let _ = writeln!(
                out,
                "    resolver {} {}{} ({country}): {} {flows}{queries}, {} out",
                r.kind,
                r.ip,
                name,
                r.flows,
                human_bytes(r.bytes_out)
            );
        }
        if d.resolvers_dropped > 0 {
            let _ = writeln!(
                out,
                "    {} more resolver flows not listed (per-device cap)",
                d.resolvers_dropped
            );
        }
    }
}

impl<W: Write> Sink for Terminal<W> {
    fn emit(&mut self, event: Event<'_>) -> Result<(), SinkError> {
        match event {
            Event::Alert(a) if self.alerts => {
                let line = self.alert_line(a);
                self.write(&line)
            }
            Event::Summary(s) if self.summary => {
                let text = self.summary_text(s);
                self.write(&text)
            }
            _ => Ok(()),
        }
    }

    fn wants_flows(&self) -> bool {
        false
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.write("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escapes_and_caps_length() {
        assert_eq!(sanitize("a\x1b[31mb\nc", 80), "a\u{fffd}[31mb\u{fffd}c");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("abc", 3), "abc");
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
