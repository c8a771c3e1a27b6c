//! The end of the input on two threads: this thread ends the flows left in the table (last
//! judgements, the summary's tallies), a second one builds their records and writes them as
//! JSON.
//!
//! At the end of a replay every flow still open is ended and written at once: on the main
//! benchmark capture, 20,000 flow records after the reading thread has finished and while it
//! sits idle. The flows are ended a part at a time ([`FINISH_BATCH_FLOWS`]); while this thread
//! ends a part, the formatter turns the flows of the part before into records and JSON lines
//! (and frees them), and this thread then hands the records to the sinks with the alerts of
//! that part, in the order they were raised. The sinks never leave this thread, and the output
//! is the same as on one thread, byte for byte.

use std::sync::mpsc::{self, Receiver, SyncSender};

use super::{Core, Engine, FINISH_BATCH_FLOWS, FlowState, RecordNames, flow_record, flush_ended};
use crate::event::{Alert, Event, FlowRecord, InputSummary, ToJson};
use crate::flow::{EndReason, Flow, FlowTable};
use crate::geoip::DatabaseInfo;
use crate::sink::SinkError;

/// What ending the flows left at the end gives, in order: alerts raised, and flows done with
/// (their last evaluation made), whose records the formatter builds.
// Mostly flows: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Ending {
    Alert(Alert),
    Flow(Flow<FlowState>, EndReason),
}

/// An event of a formatted part.
enum Written {
    Alert(Alert),
    Flow(FlowRecord),
}

/// The formatter's copies of what records name by index (see [`RecordNames`]).
struct Names {
    rule_ids: Vec<String>,
    inputs: Vec<InputSummary>,
    databases: Vec<DatabaseInfo>,
    source_kind: &'static str,
}

/// What the formatter is handed: a part to format, or one written already, to free there.
enum ToFormatter {
    Part(Vec<Ending>),
    Written(Formatted),
}

/// A part of the endings, its flows turned into records and JSON lines by the formatter.
#[derive(Default)]
struct Formatted {
    /// The part's list, emptied, for the next part to fill without growing a new one.
    spare: Vec<Ending>,
    events: Vec<Written>,
    /// The flow records' JSON lines, newlines included, one after the other.
    json: Vec<u8>,
    /// Where each flow record's line ends in `json`, in the order of the records.
    ends: Vec<usize>,
}

impl Formatted {
    /// Formats `endings` into the buffers of `into` (a part written already, or empty ones).
    fn of(mut endings: Vec<Ending>, names: &Names, into: Formatted) -> Formatted {
        let names = RecordNames {
            rule_ids: &names.rule_ids,
            inputs: &names.inputs,
            databases: &names.databases,
            source_kind: names.source_kind,
        };
        let Formatted {
            mut events,
            mut json,
            mut ends,
            ..
        } = into;
        events.clear();
        json.clear();
        ends.clear();
        // A flow record is under 1 KiB of JSON unless it carries long names.
        json.reserve(endings.len() * 1024);
        ends.reserve(endings.len());
        events.reserve(endings.len());
        for ending in endings.drain(..) {
            events.push(match ending {
                Ending::Alert(alert) => Written::Alert(alert),
                Ending::Flow(flow, reason) => {
                    let record = flow_record(&flow, reason, &names);
                    record.write_json(&mut json);
                    json.push(b'\n');
                    ends.push(json.len());
                    Written::Flow(record)
                }
            });
        }
        Formatted {
            spare: endings,
            events,
            json,
            ends,
        }
    }
}

impl Core<'_> {
    /// Hands a formatted part to the sinks, in order.
    fn write_part(&mut self, part: &Formatted) -> Result<(), SinkError> {
        let mut ends = part.ends.iter();
        let mut start = 0;
        for event in &part.events {
            match event {
                Written::Alert(alert) => {
                    for sink in &mut self.sinks {
                        sink.emit(Event::Alert(alert))?;
                    }
                }
                Written::Flow(record) => {
                    let end = ends.next().copied().unwrap_or(start);
                    let line = part.json.get(start..end).unwrap_or_default();
                    start = end;
                    for sink in &mut self.sinks {
                        sink.emit_line(Event::Flow(record), line)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Engine<'_> {
    /// Ends every flow left with a formatter thread beside this one. `Ok(false)`: the thread
    /// could not be started, nothing was done, and the caller ends the flows itself.
    pub(super) fn end_flows_on_two_threads(&mut self) -> Result<bool, SinkError> {
        let Engine {
            flows, ended, core, ..
        } = self;
        let names = Names {
            rule_ids: core.rule_ids.clone(),
            inputs: core.inputs.clone(),
            databases: core.resolver.databases().to_vec(),
            source_kind: core.source_kind,
        };
        std::thread::scope(|scope| {
            // Room for a part to format and a written one to free while the formatter works.
            let (to_formatter, parts) = mpsc::sync_channel::<ToFormatter>(2);
            let (formatter_out, formatted) = mpsc::sync_channel::<Formatted>(1);
            let spawned = std::thread::Builder::new()
                .name("egresswatch-fmt".to_owned())
                .spawn_scoped(scope, move || {
                    // A written part, its records freed, whose buffers the next part reuses.
                    let mut used = Formatted::default();
                    for message in parts {
                        match message {
                            ToFormatter::Part(endings) => {
                                let into = std::mem::take(&mut used);
                                let part = Formatted::of(endings, &names, into);
                                if formatter_out.send(part).is_err() {
                                    break;
                                }
                            }
                            ToFormatter::Written(mut part) => {
                                part.events.clear();
                                used = part;
                            }
                        }
                    }
                });
            if spawned.is_err() {
                return Ok(false);
            }
            core.ending = Some(Vec::with_capacity(FINISH_BATCH_FLOWS));
            let result = end_in_parts(flows, ended, core, &to_formatter, &formatted);
            core.ending = None;
            // Dropping both ends of the channels lets the formatter finish, whatever it was
            // doing; the scope then waits for it.
            drop(to_formatter);
            drop(formatted);
            result.map(|()| true)
        })
    }
}

/// Ends the flows a part at a time, keeping one part with the formatter while the part before
/// is written.
fn end_in_parts(
    flows: &mut FlowTable<FlowState>,
    ended: &mut Vec<(Flow<FlowState>, EndReason)>,
    core: &mut Core<'_>,
    to_formatter: &SyncSender<ToFormatter>,
    formatted: &Receiver<Formatted>,
) -> Result<(), SinkError> {
    let mut with_formatter = 0usize;
    let mut spare = Vec::with_capacity(FINISH_BATCH_FLOWS);
    loop {
        let more = flows.drain_some(ended, FINISH_BATCH_FLOWS);
        flush_ended(core, ended)?;
        let next = if spare.capacity() > 0 {
            std::mem::take(&mut spare)
        } else {
            Vec::with_capacity(FINISH_BATCH_FLOWS)
        };
        let part = core.ending.replace(next).unwrap_or_default();
        if !part.is_empty() {
            if to_formatter.send(ToFormatter::Part(part)).is_err() {
                // The formatter is gone (it panicked): the scope reports it.
                return Ok(());
            }
            with_formatter += 1;
        }
        while with_formatter > usize::from(more) {
            let Ok(mut part) = formatted.recv() else {
                return Ok(());
            };
            with_formatter -= 1;
            core.write_part(&part)?;
            if spare.capacity() == 0 {
                spare = std::mem::take(&mut part.spare);
            }
            // Freed on the formatter, off this thread's path.
            if to_formatter.send(ToFormatter::Written(part)).is_err() {
                return Ok(());
            }
        }
        if !more {
            return Ok(());
        }
    }
}
