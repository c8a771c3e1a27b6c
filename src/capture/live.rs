//! Live capture: frames from network interfaces, as they happen.
//!
//! The default backend is Linux `AF_PACKET` through `pnet_datalink` ([`afpacket`]): no system
//! library is needed. Each interface is read by its own thread ([`Capture::spawn`]), which stamps
//! every frame with the wall clock, copies it into a [`Batch`] and hands whole batches to a
//! `deliver` callback (the CLI sends them over a bounded channel). A batch is handed over as soon
//! as the kernel's queue is empty, when it is full ([`BATCH_MAX_PACKETS`], [`BATCH_MAX_BYTES`]),
//! or when its first frame is [`BATCH_MAX_AGE`] old: a frame waits at most a few milliseconds
//! before the engine sees it, and on a quiet link well under one.
//!
//! Guarantees: opening fails before any thread starts, with an error that says what to do (a
//! missing privilege names the `setcap` remedy; an unknown interface lists the ones that exist);
//! memory stays bounded (a frame is cut at [`SNAPLEN`] bytes, a batch at [`BATCH_MAX_BYTES`]);
//! the threads stop within [`READ_TIMEOUT`] of the stop flag, after handing over what they hold.
//! Nothing here ever sends a packet or listens on a port.

mod afpacket;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Frame, LinkType};

/// Bytes kept of each frame; longer frames are cut (their `wire_len` stays true). 256 KiB is
/// libpcap's largest snaplen and covers the 64 KiB segments that GRO/TSO show on a capture.
pub const SNAPLEN: usize = 262_144;
/// Frames in one batch, at most.
pub const BATCH_MAX_PACKETS: usize = 256;
/// Bytes of frame data in one batch, at most (one frame over it still gets a batch of its own).
pub const BATCH_MAX_BYTES: usize = 1 << 20;
/// A batch is handed over once its first frame is this old, however full it is.
pub const BATCH_MAX_AGE: Duration = Duration::from_millis(5);
/// How long an idle thread waits for a frame before looking at the stop flag again.
pub const READ_TIMEOUT: Duration = Duration::from_millis(10);
/// Consecutive read errors (other than a timeout or an interrupted call) after which the
/// interface is given up, e.g. when it was removed.
pub const READ_ERRORS_MAX: u32 = 100;
/// How often an idle thread reports the kernel's drop counter (in an empty batch).
pub const DROPS_REPORT_EVERY: Duration = Duration::from_secs(1);
/// Kernel receive buffer asked for per socket (the kernel may grant less, see `rmem_max`).
pub const SOCKET_RCVBUF_BYTES: usize = 8 << 20;

/// The command that grants the capture privileges without running as root.
pub const SETCAP_REMEDY: &str = "sudo setcap cap_net_raw,cap_net_admin=eip $(which egresswatch)";

/// Why live capture could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No interface has this name.
    #[error(
        "no network interface named {name:?}; interfaces here: {}",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    UnknownInterface {
        name: String,
        available: Vec<String>,
    },
    /// The process may not open packet sockets.
    #[error(
        "capturing on {name} needs the CAP_NET_RAW privilege ({source}): run as root, or grant it \
         once with `{SETCAP_REMEDY}`"
    )]
    Permission {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The interface could not be opened for another reason.
    #[error("cannot capture on {name}: {source}")]
    Open {
        name: String,
        #[source]
        source: io::Error,
    },
    /// Reading failed repeatedly; the interface was given up.
    #[error("capture on {name} stopped after {READ_ERRORS_MAX} read errors in a row: {source}")]
    Read {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The capture thread could not be started.
    #[error("cannot start the capture thread for {name}: {source}")]
    Thread {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Where one frame of a batch lies.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ts_ns: i64,
    start: usize,
    len: usize,
    wire_len: u32,
    index: u64,
}

/// Frames read from one interface, owned, in capture order.
#[derive(Debug)]
pub struct Batch {
    /// Index of the interface in the order the interfaces were given.
    pub source: u16,
    /// How to read the frames.
    pub link_type: LinkType,
    /// Frames the kernel dropped on this interface since capture started, when it says.
    pub kernel_drops: Option<u64>,
    data: Vec<u8>,
    slots: Vec<Slot>,
}

impl Batch {
    fn new(source: u16, link_type: LinkType) -> Batch {
        Batch {
            source,
            link_type,
            kernel_drops: None,
            data: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The frames, borrowed from the batch.
    pub fn frames(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        self.slots.iter().map(move |s| Frame {
            ts_ns: s.ts_ns,
            link_type: self.link_type,
            data: self.data.get(s.start..s.start + s.len).unwrap_or_default(),
            wire_len: s.wire_len,
            source: self.source,
            index: s.index,
        })
    }

    fn push(&mut self, ts_ns: i64, bytes: &[u8], wire_len: usize, index: u64) {
        let kept = bytes.get(..bytes.len().min(SNAPLEN)).unwrap_or_default();
        self.slots.push(Slot {
            ts_ns,
            start: self.data.len(),
            len: kept.len(),
            wire_len: u32::try_from(wire_len).unwrap_or(u32::MAX),
            index,
        });
        self.data.extend_from_slice(kept);
    }

    fn full(&self) -> bool {
        self.slots.len() >= BATCH_MAX_PACKETS || self.data.len() >= BATCH_MAX_BYTES
    }
}

/// What a capture thread hands over.
#[derive(Debug)]
pub enum Message {
    /// Frames.
    Batch(Batch),
    /// The interface was given up; no more messages come from it.
    Failed { source: u16, error: LiveError },
}

/// Options for opening an interface.
#[derive(Clone, Copy, Debug)]
pub struct LiveConfig {
    /// Ask the interface for frames not addressed to it.
    pub promiscuous: bool,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig { promiscuous: true }
    }
}

/// An opened interface, not yet read.
pub struct Capture {
    name: String,
    source: u16,
    link_type: LinkType,
    socket: afpacket::Socket,
}

impl Capture {
    /// Opens the interface `name`, to be reported as input number `source`.
    pub fn open(name: &str, source: u16, config: LiveConfig) -> Result<Capture, LiveError> {
        let Some(iface) = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == name)
        else {
            return Err(LiveError::UnknownInterface {
                name: name.to_owned(),
                available: interfaces().into_iter().map(|i| i.name).collect(),
            });
        };
        let socket = afpacket::Socket::open(&iface, config)?;
        Ok(Capture {
            name: name.to_owned(),
            source,
            link_type: link_type_of(name),
            socket,
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the interface's frames are read.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Reads the interface on a thread of its own until `stop` is set or `deliver` returns false
    /// (nobody listens any more). The thread hands over what it holds before it ends.
    pub fn spawn<F>(self, stop: Arc<AtomicBool>, deliver: F) -> Result<JoinHandle<()>, LiveError>
    where
        F: FnMut(Message) -> bool + Send + 'static,
    {
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("capture-{name}"))
            .spawn(move || self.read_loop(&stop, deliver))
            .map_err(|source| LiveError::Thread { name, source })
    }

    fn read_loop<F: FnMut(Message) -> bool>(mut self, stop: &AtomicBool, mut deliver: F) {
        let mut batch = Batch::new(self.source, self.link_type);
        let mut batch_started = Instant::now();
        let mut index: u64 = 0;
        let mut errors: u32 = 0;
        let mut drops_reported = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                batch.kernel_drops = self.socket.drops();
                deliver(Message::Batch(batch));
                return;
            }
            // Drain what is queued; `idle` once the queue is empty.
            let idle = match self.socket.recv() {
                Ok(Some((bytes, wire_len))) => {
                    errors = 0;
                    index += 1;
                    if batch.is_empty() {
                        batch_started = Instant::now();
                    }
                    batch.push(wall_clock_ns(), bytes, wire_len, index);
                    false
                }
                Ok(None) => true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
                Err(e) => {
                    errors += 1;
                    if errors >= READ_ERRORS_MAX {
                        batch.kernel_drops = self.socket.drops();
                        if !batch.is_empty() {
                            deliver(Message::Batch(batch));
                        }
                        deliver(Message::Failed {
                            source: self.source,
                            error: LiveError::Read {
                                name: self.name.clone(),
                                source: e,
                            },
                        });
                        return;
                    }
                    std::thread::sleep(READ_TIMEOUT);
                    true
                }
            };
            let due = if batch.is_empty() {
                // An idle interface still tells its drop counter now and then.
                idle && drops_reported.elapsed() >= DROPS_REPORT_EVERY
            } else {
                idle || batch.full() || batch_started.elapsed() >= BATCH_MAX_AGE
            };
            if due {
                drops_reported = Instant::now();
                let mut full =
                    std::mem::replace(&mut batch, Batch::new(self.source, self.link_type));
                full.kernel_drops = self.socket.drops();
                if !deliver(Message::Batch(full)) {
                    return;
                }
            }
            if idle {
                if let Err(e) = self.socket.wait(READ_TIMEOUT) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        tracing::debug!("poll on {}: {e}", self.name);
                    }
                }
            }
        }
    }
}

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn wall_clock_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The link type of an interface's frames, from its ARPHRD type in sysfs: interfaces without a
/// link-layer header (tun, PPP, IP tunnels) give raw IP; everything else is read as Ethernet.
fn link_type_of(name: &str) -> LinkType {
    // ARPHRD_PPP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT, ARPHRD_IPGRE, ARPHRD_NONE.
    const NO_LINK_HEADER: [u32; 6] = [512, 768, 769, 776, 778, 65534];
    let arphrd = std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match arphrd {
        Some(t) if NO_LINK_HEADER.contains(&t) => LinkType::RAW,
        _ => LinkType::ETHERNET,
    }
}

/// A capture interface, for `egresswatch interfaces`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    /// The kernel's operational state (`up`, `down`, `unknown`, `lowerlayerdown`, …).
    pub state: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub lower_up: bool,
    pub loopback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Addresses with prefix length, e.g. `192.0.2.5/24`.
    pub addresses: Vec<String>,
    /// `ethernet` or `raw-ip`: how frames are read.
    pub link: &'static str,
}

/// The interfaces that can be captured on, in index order.
pub fn interfaces() -> Vec<InterfaceInfo> {
    let mut list: Vec<InterfaceInfo> = pnet_datalink::interfaces()
        .into_iter()
        .map(|i| {
            let state = std::fs::read_to_string(format!("/sys/class/net/{}/operstate", i.name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned());
            InterfaceInfo {
                index: i.index,
                state,
                up: i.is_up(),
                lower_up: i.is_lower_up(),
                loopback: i.is_loopback(),
                mac: i.mac.filter(|m| !m.is_zero()).map(|m| m.to_string()),
                addresses: i.ips.iter().map(ToString::to_string).collect(),
                link: if link_type_of(&i.name) == LinkType::RAW {
                    "raw-ip"
                } else {
                    "ethernet"
                },
                name: i.name,
            }
        })
        .collect();
    list.sort_by_key(|i| i.index);
    list
}
