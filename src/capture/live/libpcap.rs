//! The libpcap backend (Cargo feature `libpcap`, `--backend libpcap`): one `pcap_t` per interface
//! through the `pcap` crate.
//!
//! The handle is opened with libpcap's block buffering (small frames packed densely, a block
//! handed over when full or [`PCAP_BLOCK_TIMEOUT_MS`] old) unless `--immediate` asks for immediate
//! mode (a frame is readable as soon as the kernel has it; on Linux libpcap then uses a ring of
//! fixed slots, each as large as a frame may be, which drops at high rates), with nanosecond
//! timestamps, the configured snaplen and buffer size,
//! an optional BPF filter compiled by libpcap, and switched to non-blocking: like the `AF_PACKET`
//! backend, [`Handle::recv`] drains what is queued and [`Handle::wait`] polls the selectable
//! descriptor only when nothing is. Timestamps are the kernel's (from the packet header), and the
//! drop counter is libpcap's `pcap_stats` (`ps_drop` + `ps_ifdrop`), kept as a 64-bit total.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use pcap::{Active, Capture, Precision};

use super::{LiveConfig, LiveError, PCAP_BLOCK_TIMEOUT_MS};
use crate::capture::LinkType;

/// An activated libpcap handle on one interface.
pub(super) struct Handle {
    cap: Capture<Active>,
    link_type: LinkType,
    /// Last raw counters (32 bits, they wrap) and the 64-bit totals built from them.
    last_drop: u32,
    last_ifdrop: u32,
    drops: u64,
    stats_known: bool,
}

/// Turns a libpcap error into ours, telling a permission problem apart.
fn open_error(name: &str, e: &pcap::Error) -> LiveError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let source = io::Error::other(text);
    if lower.contains("permission") || lower.contains("not permitted") {
        LiveError::Permission {
            name: name.to_owned(),
            source,
        }
    } else {
        LiveError::Open {
            name: name.to_owned(),
            source,
        }
    }
}

impl Handle {
    pub(super) fn open(name: &str, config: &LiveConfig) -> Result<Handle, LiveError> {
        let snaplen = i32::try_from(config.snaplen).unwrap_or(i32::MAX);
        let buffer = i32::try_from(config.buffer_bytes).unwrap_or(i32::MAX);
        let inactive = Capture::from_device(name).map_err(|e| open_error(name, &e))?;
        let cap = inactive
            .promisc(config.promiscuous)
            .snaplen(snaplen)
            .buffer_size(buffer)
            .immediate_mode(config.immediate)
            .precision(Precision::Nano)
            .timeout(PCAP_BLOCK_TIMEOUT_MS)
            .open()
            .map_err(|e| open_error(name, &e))?;
        let mut cap = cap.setnonblock().map_err(|e| open_error(name, &e))?;
        if let Some(expr) = &config.filter {
            cap.filter(expr, true).map_err(|e| LiveError::Filter {
                expression: expr.clone(),
                message: e.to_string(),
            })?;
        }
        let link = cap.get_datalink().0;
        Ok(Handle {
            link_type: LinkType(u32::try_from(link).unwrap_or(u32::MAX)),
            cap,
            last_drop: 0,
            last_ifdrop: 0,
            drops: 0,
            stats_known: true,
        })
    }

    /// The link type libpcap reports for the interface.
    pub(super) fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The next queued frame (kernel timestamp in ns, bytes, length on the wire), or `None`.
    pub(super) fn recv(&mut self) -> io::Result<Option<(i64, &[u8], usize)>> {
        match self.cap.next_packet() {
            Ok(packet) => {
                let ts = packet.header.ts;
                // With Precision::Nano the "microseconds" field holds nanoseconds.
                #[allow(clippy::useless_conversion)] // time_t and suseconds_t are i64 here only
                let ts_ns = i64::from(ts.tv_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(ts.tv_usec));
                let wire = usize::try_from(packet.header.len).unwrap_or(usize::MAX);
                Ok(Some((ts_ns, packet.data, wire)))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// Waits until a frame is queued, at most `timeout`.
    pub(super) fn wait(&self, timeout: Duration) -> io::Result<()> {
        // The descriptor is open while the handle lives.
        super::poll_readable(self.cap.as_raw_fd(), timeout)
    }

    /// Frames dropped since the handle was opened (kernel and interface drops), if libpcap says.
    pub(super) fn drops(&mut self) -> Option<u64> {
        if !self.stats_known {
            return None;
        }
        let Ok(stat) = self.cap.stats() else {
            self.stats_known = false;
            return None;
        };
        let add = u64::from(stat.dropped.wrapping_sub(self.last_drop))
            + u64::from(stat.if_dropped.wrapping_sub(self.last_ifdrop));
        self.last_drop = stat.dropped;
        self.last_ifdrop = stat.if_dropped;
        self.drops = self.drops.saturating_add(add);
        Some(self.drops)
    }
}
