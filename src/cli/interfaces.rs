//! `egresswatch interfaces`: the interfaces `live` can capture on, with addresses and state.

use std::io::{self, Write};

use clap::Args;

use egresswatch::capture::live::interfaces;
use egresswatch::sink::{SinkError, sanitize};

use super::Failure;

/// Longest interface name shown (Linux allows 15 bytes).
const NAME_MAX_CHARS: usize = 32;

#[derive(Args, Debug)]
pub struct InterfacesArgs {
    /// One JSON object per interface instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the interfaces and returns the exit code.
pub fn run(args: &InterfacesArgs) -> Result<u8, Failure> {
    let list = interfaces();
    let mut text = String::new();
    if args.json {
        for i in &list {
            let line = serde_json::to_string(i).map_err(|e| SinkError {
                name: "standard output".to_owned(),
                source: e.into(),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
    } else {
        text.push_str(&format!(
            "{:>5}  {:<16} {:<8} {:<24} {:<8} {:<17}  {}\n",
            "INDEX", "NAME", "STATE", "FLAGS", "LINK", "MAC", "ADDRESSES"
        ));
        for i in &list {
            let flags: Vec<&str> = [
                (i.up, "up"),
                (i.lower_up, "carrier"),
                (i.loopback, "loopback"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            text.push_str(&format!(
                "{:>5}  {:<16} {:<8} {:<24} {:<8} {:<17}  {}\n",
                i.index,
                sanitize(&i.name, NAME_MAX_CHARS),
                i.state,
                if flags.is_empty() {
                    "-".to_owned()
                } else {
                    flags.join(",")
                },
                i.link,
                i.mac.as_deref().unwrap_or("-"),
                if i.addresses.is_empty() {
                    "-".to_owned()
                } else {
                    i.addresses.join(" ")
                }
            ));
        }
    }
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(source) => Err(SinkError {
            name: "standard output".to_owned(),
            source,
        }
        .into()),
    }
}
