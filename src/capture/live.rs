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
pub mod evidence;
#[cfg(feature = "libpcap")]
mod libpcap;

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
/// Kernel receive buffer asked for per socket (the kernel may grant less, see `rmem_max`); with
/// libpcap, the size of its ring buffer. `--buffer-size` changes it.
pub const SOCKET_RCVBUF_BYTES: usize = 8 << 20;
/// libpcap without immediate mode: a buffer block is handed over at the latest this long after
/// its first frame.
pub const PCAP_BLOCK_TIMEOUT_MS: i32 = 1;
/// Smallest `--snaplen` accepted: an Ethernet, IPv6 and TCP header with options.
pub const SNAPLEN_MIN: usize = 128;
/// Smallest `--buffer-size` accepted.
pub const BUFFER_MIN_BYTES: usize = 64 << 10;
/// How often a reading thread looks whether its interface still exists and is up (and how often a
/// waiting one looks whether it is back).
pub const STATE_CHECK_EVERY: Duration = Duration::from_millis(250);

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
    /// The interface went down or disappeared while capturing.
    #[error("interface {name} {what} at {at} (capture stopped; what was captured before is kept)")]
    Down {
        name: String,
        /// `went down` or `disappeared`.
        what: &'static str,
        /// When it was noticed (RFC 3339, UTC).
        at: String,
    },
    /// The BPF filter expression does not compile.
    #[error("--filter {expression:?} is not a valid BPF filter expression: {message}")]
    Filter { expression: String, message: String },
    /// The backend asked for was not built into this binary.
    #[error(
        "the libpcap backend is not built into this binary: rebuild with `cargo build --release \
         --features libpcap` (needs libpcap-dev), or use --backend afpacket"
    )]
    BackendUnavailable,
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
    /// Something to tell (`--wait-for-interface`: the interface went down, or is back).
    Notice { source: u16, text: String },
}

/// Which capture backend reads the interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux `AF_PACKET` through `pnet_datalink` (always built).
    AfPacket,
    /// libpcap through the `pcap` crate (Cargo feature `libpcap`).
    Libpcap,
}

impl Backend {
    /// Parses `afpacket` or `libpcap`.
    pub fn parse(text: &str) -> Result<Backend, String> {
        match text {
            "afpacket" | "af_packet" | "af-packet" => Ok(Backend::AfPacket),
            "libpcap" | "pcap" => Ok(Backend::Libpcap),
            other => Err(format!(
                "unknown capture backend {other:?}: afpacket or libpcap"
            )),
        }
    }

    /// Whether this binary can use the backend.
    pub fn built(self) -> bool {
        match self {
            Backend::AfPacket => true,
            Backend::Libpcap => cfg!(feature = "libpcap"),
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfPacket => "afpacket",
            Backend::Libpcap => "libpcap",
        }
    }
}

/// Options for opening an interface.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Ask the interface for frames not addressed to it.
    pub promiscuous: bool,
    /// Which backend reads frames.
    pub backend: Backend,
    /// Bytes kept of each frame, at most [`SNAPLEN`].
    pub snaplen: usize,
    /// Kernel buffer (`SO_RCVBUF`) or libpcap ring size, in bytes.
    pub buffer_bytes: usize,
    /// A BPF filter expression (libpcap backend only).
    pub filter: Option<String>,
    /// Wait for an interface that is missing or down (at start or later) instead of failing.
    pub wait_for_interface: bool,
    /// libpcap: immediate mode (a frame is readable at once); off, libpcap's block buffering with
    /// a [`PCAP_BLOCK_TIMEOUT_MS`] timeout packs small frames densely into the buffer.
    pub immediate: bool,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            promiscuous: true,
            backend: Backend::AfPacket,
            snaplen: SNAPLEN,
            buffer_bytes: SOCKET_RCVBUF_BYTES,
            filter: None,
            wait_for_interface: false,
            immediate: true,
        }
    }
}

/// A frame as a reader returns it: timestamp (when the backend gives one), bytes, wire length.
pub(crate) type Received<'a> = (Option<i64>, &'a [u8], usize);

/// An open reader of either backend.
enum Reader {
    AfPacket(afpacket::Socket),
    #[cfg(feature = "libpcap")]
    Libpcap(libpcap::Handle),
}

impl Reader {
    fn open(name: &str, config: &LiveConfig) -> Result<(Reader, LinkType), LiveError> {
        match config.backend {
            Backend::AfPacket => {
                let Some(iface) = pnet_datalink::interfaces()
                    .into_iter()
                    .find(|i| i.name == name)
                else {
                    return Err(unknown_interface(name));
                };
                let socket = afpacket::Socket::open(&iface, config)?;
                Ok((Reader::AfPacket(socket), link_type_of(name)))
            }
            #[cfg(feature = "libpcap")]
            Backend::Libpcap => {
                let handle = libpcap::Handle::open(name, config)?;
                let link = handle.link_type();
                Ok((Reader::Libpcap(handle), link))
            }
            #[cfg(not(feature = "libpcap"))]
            Backend::Libpcap => Err(LiveError::BackendUnavailable),
        }
    }

    /// The next frame: its timestamp when the backend gives one, bytes, length on the wire.
    fn recv(&mut self) -> io::Result<Option<Received<'_>>> {
        match self {
            Reader::AfPacket(s) => s.recv(),
            #[cfg(feature = "libpcap")]
            Reader::Libpcap(h) => Ok(h.recv()?.map(|(t, b, w)| (Some(t), b, w))),
        }
    }

    fn wait(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Reader::AfPacket(s) => s.wait(timeout),
            #[cfg(feature = "libpcap")]
            Reader::Libpcap(h) => h.wait(timeout),
        }
    }

    fn drops(&mut self) -> Option<u64> {
        match self {
            Reader::AfPacket(s) => s.drops(),
            #[cfg(feature = "libpcap")]
            Reader::Libpcap(h) => h.drops(),
        }
    }

    /// Whether the same reader goes on working when its interface comes back up (an
    /// `AF_PACKET` socket is re-bound by the kernel; a libpcap handle is opened anew).
    fn survives_down(&self) -> bool {
        matches!(self, Reader::AfPacket(_))
    }
}

fn unknown_interface(name: &str) -> LiveError {
    LiveError::UnknownInterface {
        name: name.to_owned(),
        available: interfaces().into_iter().map(|i| i.name).collect(),
    }
}

/// The interface's index and whether it is administratively up, or `None` when no interface
/// has this name (in this thread's network namespace).
pub fn link_state(name: &str) -> Option<(u32, bool)> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return None;
    }
    let up = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_none_or(|flags| flags & 1 != 0);
    Some((index, up))
}

/// An opened interface, not yet read (or, with `--wait-for-interface`, one to wait for).
pub struct Capture {
    name: String,
    source: u16,
    link_type: LinkType,
    config: LiveConfig,
    reader: Option<Reader>,
    /// The interface index the reader is bound to.
    ifindex: u32,
    /// Drops counted by readers closed before the current one.
    drops_before: u64,
}

impl Capture {
    /// Opens the interface `name`, to be reported as input number `source`. With
    /// `config.wait_for_interface`, an interface that does not exist or is down is not an
    /// error: the thread waits for it.
    pub fn open(name: &str, source: u16, config: &LiveConfig) -> Result<Capture, LiveError> {
        if !config.backend.built() {
            return Err(LiveError::BackendUnavailable);
        }
        if config.filter.is_some() && config.backend != Backend::Libpcap {
            return Err(LiveError::Open {
                name: name.to_owned(),
                source: io::Error::other(
                    "--filter needs --backend libpcap (BPF expressions are compiled by libpcap)",
                ),
            });
        }
        let mut capture = Capture {
            name: name.to_owned(),
            source,
            link_type: link_type_of(name),
            config: config.clone(),
            reader: None,
            ifindex: 0,
            drops_before: 0,
        };
        match link_state(name) {
            Some((_, true)) => capture.reopen()?,
            None if !config.wait_for_interface => return Err(unknown_interface(name)),
            Some((_, false)) if !config.wait_for_interface => {
                return Err(LiveError::Open {
                    name: name.to_owned(),
                    source: io::Error::other(format!(
                        "the interface is down; bring it up with `ip link set {name} up` (or \
                         pass --wait-for-interface)"
                    )),
                });
            }
            _ => {}
        }
        Ok(capture)
    }

    /// (Re)opens the reader on the interface as it is now.
    fn reopen(&mut self) -> Result<(), LiveError> {
        if let Some(mut old) = self.reader.take() {
            self.drops_before = self.drops_before.saturating_add(old.drops().unwrap_or(0));
        }
        let (reader, link_type) = Reader::open(&self.name, &self.config)?;
        self.reader = Some(reader);
        self.link_type = link_type;
        self.ifindex = link_state(&self.name).map_or(0, |(i, _)| i);
        Ok(())
    }

    /// Whether a reader is open (false while waiting for the interface).
    pub fn is_open(&self) -> bool {
        self.reader.is_some()
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

    fn drops(&mut self) -> Option<u64> {
        let now = self.reader.as_mut().and_then(Reader::drops);
        if now.is_none() && self.drops_before == 0 {
            return None;
        }
        Some(self.drops_before.saturating_add(now.unwrap_or(0)))
    }

    /// Looks at the interface: `Some(what)` when it went down or disappeared.
    fn gone(&self) -> Option<&'static str> {
        match link_state(&self.name) {
            None => Some("disappeared"),
            Some((_, false)) => Some("went down"),
            Some((index, true)) if index != self.ifindex => Some("was replaced"),
            Some(_) => None,
        }
    }

    /// Waits (while `stop` is not set) for the interface to exist and be up, then opens it.
    /// Returns false when stopped or when opening failed (reported).
    fn wait_for_interface<F: FnMut(Message) -> bool>(
        &mut self,
        stop: &AtomicBool,
        deliver: &mut F,
    ) -> bool {
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            if let Some((index, true)) = link_state(&self.name) {
                let reuse = index == self.ifindex
                    && self.reader.as_ref().is_some_and(Reader::survives_down);
                let opened = if reuse { Ok(()) } else { self.reopen() };
                return match opened {
                    Ok(()) => {
                        deliver(Message::Notice {
                            source: self.source,
                            text: format!(
                                "interface {} is up at {}: capturing",
                                self.name, Rfc3339Now
                            ),
                        });
                        true
                    }
                    Err(error) => {
                        deliver(Message::Failed {
                            source: self.source,
                            error,
                        });
                        false
                    }
                };
            }
            std::thread::sleep(STATE_CHECK_EVERY);
        }
    }

    fn read_loop<F: FnMut(Message) -> bool>(mut self, stop: &AtomicBool, mut deliver: F) {
        if self.reader.is_none() {
            deliver(Message::Notice {
                source: self.source,
                text: format!(
                    "interface {} is missing or down: waiting for it (--wait-for-interface)",
                    self.name
                ),
            });
            if !self.wait_for_interface(stop, &mut deliver) {
                deliver(Message::Batch(Batch::new(self.source, self.link_type)));
                return;
            }
        }
        let mut batch = Batch::new(self.source, self.link_type);
        let mut batch_started = Instant::now();
        let mut index: u64 = 0;
        let mut errors: u32 = 0;
        let mut drops_reported = Instant::now();
        let mut state_checked = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                batch.kernel_drops = self.drops();
                deliver(Message::Batch(batch));
                return;
            }
            let Some(reader) = self.reader.as_mut() else {
                return;
            };
            // Drain what is queued; `idle` once the queue is empty.
            let mut failed = None;
            let idle = match reader.recv() {
                Ok(Some((ts, bytes, wire_len))) => {
                    errors = 0;
                    index += 1;
                    if batch.is_empty() {
                        batch_started = Instant::now();
                    }
                    batch.push(ts.unwrap_or_else(wall_clock_ns), bytes, wire_len, index);
                    false
                }
                Ok(None) => true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
                Err(e) => {
                    errors += 1;
                    // A read error often means the interface went away: look at once.
                    state_checked = Instant::now() - STATE_CHECK_EVERY;
                    if errors >= READ_ERRORS_MAX {
                        failed = Some(e);
                    } else {
                        std::thread::sleep(READ_TIMEOUT);
                    }
                    true
                }
            };
            let mut down = None;
            if state_checked.elapsed() >= STATE_CHECK_EVERY {
                state_checked = Instant::now();
                down = self.gone();
            }
            if let Some(e) = failed.filter(|_| down.is_none()) {
                batch.kernel_drops = self.drops();
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
            if let Some(what) = down {
                // Hand over what was captured before anything else.
                let mut held =
                    std::mem::replace(&mut batch, Batch::new(self.source, self.link_type));
                held.kernel_drops = self.drops();
                deliver(Message::Batch(held));
                let at = Rfc3339Now.to_string();
                if !self.config.wait_for_interface {
                    deliver(Message::Failed {
                        source: self.source,
                        error: LiveError::Down {
                            name: self.name.clone(),
                            what,
                            at,
                        },
                    });
                    return;
                }
                deliver(Message::Notice {
                    source: self.source,
                    text: format!(
                        "interface {} {what} at {at}: waiting for it (--wait-for-interface)",
                        self.name
                    ),
                });
                if !self.wait_for_interface(stop, &mut deliver) {
                    let mut last = Batch::new(self.source, self.link_type);
                    last.kernel_drops = self.drops();
                    deliver(Message::Batch(last));
                    return;
                }
                errors = 0;
                continue;
            }
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
                full.kernel_drops = self.drops();
                if !deliver(Message::Batch(full)) {
                    return;
                }
            }
            if idle
                && let Some(reader) = &self.reader
                && let Err(e) = reader.wait(READ_TIMEOUT)
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::debug!("poll on {}: {e}", self.name);
            }
        }
    }
}

/// Formats the wall clock's now as RFC 3339 (for messages).
struct Rfc3339Now;

impl std::fmt::Display for Rfc3339Now {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", crate::event::Rfc3339(wall_clock_ns()))
    }
}

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970).
/// Waits until `fd` is readable or `timeout` passes (or a signal interrupts), for either
/// backend's `wait`. The caller keeps `fd` open for the call.
fn poll_readable(fd: libc::c_int, timeout: Duration) -> io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pollfd` is valid for one entry; the caller keeps the descriptor open.
    let rc = unsafe { libc::poll(&raw mut pollfd, 1, ms) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

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
