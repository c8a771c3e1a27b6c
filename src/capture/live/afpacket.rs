//! The `AF_PACKET` backend: a Linux packet socket per interface, read through `pnet_datalink`.
//!
//! We create the socket ourselves, with protocol 0 so that it queues nothing until `pnet_datalink`
//! binds it to the interface (a socket created for every protocol would briefly see frames of
//! every interface), and so that we keep its descriptor: the kernel's drop counter
//! (`PACKET_STATISTICS`) and a larger receive buffer need it. The descriptor is owned by the
//! `pnet_datalink` receiver, which closes it; [`Socket`] keeps both together so the number is
//! never used after the close.
//!
//! Reading is done on that descriptor directly rather than through the receiver: a
//! non-blocking `recvmsg` drains what is queued, and `poll` waits only when nothing is. So the
//! reader knows the moment the queue is empty (and hands its batch over at once, which keeps an
//! alert's delay to a millisecond or so), and `MSG_TRUNC` gives a cut frame's true length.
//! `SO_TIMESTAMPNS` has the kernel stamp each frame with its receive time, so a frame's time does
//! not include its wait in the queue.

use std::io;
use std::time::Duration;

use pnet_datalink::{Channel, Config, DataLinkReceiver, NetworkInterface};

use super::{LiveConfig, LiveError, Received, SNAPLEN};

/// An open packet socket bound to one interface.
pub(super) struct Socket {
    /// Owns the descriptor (closes it on drop); never read through.
    _rx: Box<dyn DataLinkReceiver>,
    /// The descriptor inside `_rx`; valid as long as `_rx` is.
    fd: libc::c_int,
    buf: Vec<u8>,
    /// Drops counted so far (the kernel resets its counter on each read).
    drops: u64,
    stats_known: bool,
    /// The kernel stamps each frame (`SO_TIMESTAMPNS`).
    timestamps: bool,
}

impl Socket {
    pub(super) fn open(iface: &NetworkInterface, config: &LiveConfig) -> Result<Socket, LiveError> {
        let name = iface.name.clone();
        if !iface.is_up() {
            return Err(LiveError::Open {
                name: name.clone(),
                source: io::Error::other(format!(
                    "the interface is down; bring it up with `ip link set {name} up`"
                )),
            });
        }
        // SAFETY: a plain system call with integer arguments; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let source = io::Error::last_os_error();
            return Err(if source.kind() == io::ErrorKind::PermissionDenied {
                LiveError::Permission { name, source }
            } else {
                LiveError::Open { name, source }
            });
        }
        set_rcvbuf(fd, config.buffer_bytes);
        let timestamps = enable_timestamps(fd);
        let pnet_config = Config {
            // Reads go through `recv` below, into our own buffer.
            read_buffer_size: 0,
            write_buffer_size: 0,
            promiscuous: config.promiscuous,
            socket_fd: Some(fd),
            ..Config::default()
        };
        // On failure pnet_datalink has closed the descriptor already.
        let rx = match pnet_datalink::channel(iface, pnet_config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => {
                return Err(LiveError::Open {
                    name,
                    source: io::Error::other("pnet_datalink returned an unknown channel type"),
                });
            }
            Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
                return Err(LiveError::Permission { name, source });
            }
            Err(source) => return Err(LiveError::Open { name, source }),
        };
        Ok(Socket {
            _rx: rx,
            fd,
            buf: vec![0; config.snaplen.clamp(1, SNAPLEN)],
            drops: 0,
            stats_known: true,
            timestamps,
        })
    }

    /// The next queued frame: the kernel's receive timestamp (ns since the epoch, when it gave
    /// one), its bytes and its length on the wire; `None` when none is queued.
    pub(super) fn recv(&mut self) -> io::Result<Option<Received<'_>>> {
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast::<libc::c_void>(),
            iov_len: self.buf.len(),
        };
        // Room for one SCM_TIMESTAMPNS message, 8-byte aligned as cmsghdr needs.
        let mut control = [0u64; 8];
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast::<libc::c_void>();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `fd` is open while `self._rx` lives; `msg` points at `buf` (valid for writes of
        // its length) and at `control` (valid for writes of its size).
        let n =
            unsafe { libc::recvmsg(self.fd, &raw mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
        let Ok(wire_len) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        };
        let ts = if self.timestamps {
            kernel_timestamp(&msg)
        } else {
            None
        };
        let kept = self
            .buf
            .get(..wire_len.min(self.buf.len()))
            .unwrap_or_default();
        Ok(Some((ts, kept, wire_len)))
    }

    /// Waits until a frame is queued (or an error is pending), at most `timeout`.
    pub(super) fn wait(&self, timeout: Duration) -> io::Result<()> {
        // The descriptor is open while the handle lives.
        super::poll_readable(self.fd, timeout)
    }

    /// Frames the kernel dropped since the socket was opened, if it says.
    pub(super) fn drops(&mut self) -> Option<u64> {
        if !self.stats_known {
            return None;
        }
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `fd` is open while `self._rx` lives; `stats` and `len` are valid for writes of
        // the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast::<libc::c_void>(),
                &raw mut len,
            )
        };
        if rc != 0 {
            self.stats_known = false;
            return None;
        }
        self.drops += u64::from(stats.tp_drops);
        Some(self.drops)
    }
}

/// Asks the kernel to stamp each frame with its receive time (`SO_TIMESTAMPNS`), so that a
/// frame's time is when it arrived, not when the thread read it. False when refused.
fn enable_timestamps(fd: libc::c_int) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket; `on` is valid for reads of its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// The `SCM_TIMESTAMPNS` control message of a received frame, in ns since the epoch.
fn kernel_timestamp(msg: &libc::msghdr) -> Option<i64> {
    // SAFETY: `msg` was filled by recvmsg: its control pointer and length describe the control
    // messages the kernel wrote, which CMSG_FIRSTHDR/CMSG_NXTHDR walk within those bounds.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::timespec>();
                let ts = std::ptr::read_unaligned(data);
                #[allow(clippy::useless_conversion)] // time_t and c_long are i64 here only
                let ns = i64::from(ts.tv_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(ts.tv_nsec));
                return Some(ns);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// Asks for a larger kernel receive buffer, so bursts wait in the kernel rather than being
/// dropped; the kernel caps it at `net.core.rmem_max` (a refusal only costs headroom).
/// As root, `SO_RCVBUFFORCE` goes past that cap.
fn set_rcvbuf(fd: libc::c_int, bytes: usize) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is an open socket; `size` is valid for reads of its size.
    let forced = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced == 0 {
        return;
    }
    // SAFETY: `fd` is an open socket; `size` is valid for reads of its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(
            "SO_RCVBUF refused: {}; keeping the default receive buffer",
            io::Error::last_os_error()
        );
    }
}
