//! Reading ahead on a second thread: [`Prefetch`] runs a [`Replay`] on its own thread and hands
//! its frames over in batches, so that reading the file, gzip inflation, record parsing and
//! decoding overlap with the analysis instead of adding to it.
//!
//! The thread decodes each frame with the analysis's own [`Decoder`] (lent for the run: its
//! fragment state and counters are those of a single-threaded run, and [`Prefetch::finish`]
//! gives it back), so a frame arrives with its [`Packet`] already found.
//!
//! Guarantees: the same frames, in the same order, with the same damage errors at the same
//! places as [`Replay::next_frame`], and the same packets as decoding them in that order;
//! memory bounded by [`PREFETCH_BATCHES`] batches of about
//! [`PREFETCH_BATCH_BYTES`] (plus one record of at most [`super::RECORD_MAX_BYTES`]), each with
//! a copy of the decoder as it was before the batch (its fragment tracker is capped); batch
//! buffers are recycled, so reading allocates nothing per frame once the pool is warm (the
//! decoder copy is one per batch). Dropping a `Prefetch` stops the thread.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use super::{CaptureError, Frame, LinkType, Replay};
use crate::decode::{Decoder, Packet};

/// Frame bytes gathered before a batch is handed over.
pub const PREFETCH_BATCH_BYTES: usize = 512 * 1024;
/// Frames gathered before a batch is handed over, whatever their size.
pub const PREFETCH_BATCH_FRAMES: usize = 2048;
/// Batches in flight between the reading thread and the reader, at most.
pub const PREFETCH_BATCHES: usize = 4;

/// Where one frame's bytes lie in its batch, and its metadata.
#[derive(Clone, Debug)]
struct FrameMeta {
    ts_ns: i64,
    link_type: LinkType,
    data: Range<usize>,
    wire_len: u32,
    source: u16,
    index: u64,
    /// The decoded packet, its payload detached (empty); `None`: the frame gave no packet.
    packet: Option<Packet<'static>>,
    /// Where the packet's payload lies in the frame's bytes.
    payload: Range<usize>,
}

/// `p` without its borrowed payload, and where that payload lies in `frame` (a payload is
/// always a part of the frame it was decoded from; an empty one is placed at 0).
fn detach(p: &Packet<'_>, frame: &[u8]) -> (Packet<'static>, Range<usize>) {
    let start = (p.payload.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    let payload = match frame.get(start..start.wrapping_add(p.payload.len())) {
        Some(_) if !p.payload.is_empty() => start..start + p.payload.len(),
        _ => 0..0,
    };
    let detached = Packet {
        src_mac: p.src_mac,
        dst_mac: p.dst_mac,
        vlan: p.vlan,
        src: p.src,
        dst: p.dst,
        transport: p.transport,
        src_port: p.src_port,
        dst_port: p.dst_port,
        tcp_flags: p.tcp_flags,
        seq: p.seq,
        ip_len: p.ip_len,
        payload_len: p.payload_len,
        payload: &[],
        fragment: p.fragment,
        tunnel: p.tunnel,
    };
    (detached, payload)
}

/// Frames read ahead, and what ended the batch early.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<FrameMeta>,
    /// A damaged input: reported after this batch's frames, as `Replay` reports it.
    error: Option<CaptureError>,
    /// Every input is exhausted after this batch.
    last: bool,
    /// The decoder as it was before this batch's first frame: a run that stops midway gets
    /// back the decoder as of the last frame it took (see [`Prefetch::finish`]).
    decoder_before: Option<Box<Decoder>>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
        self.error = None;
        self.last = false;
        self.decoder_before = None;
    }

    fn is_full(&self) -> bool {
        self.data.len() >= PREFETCH_BATCH_BYTES || self.frames.len() >= PREFETCH_BATCH_FRAMES
    }
}

/// A [`Replay`] read on its own thread.
pub struct Prefetch {
    full: Receiver<Batch>,
    empty: SyncSender<Batch>,
    current: Batch,
    next: usize,
    done: bool,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts reading `replay` and decoding its frames with `decoder` on a new thread.
    pub fn start(replay: Replay, decoder: Decoder) -> std::io::Result<Prefetch> {
        let (full_tx, full) = sync_channel::<Batch>(PREFETCH_BATCHES);
        let (empty, empty_rx) = sync_channel::<Batch>(PREFETCH_BATCHES + 2);
        let thread = std::thread::Builder::new()
            .name("egresswatch-read".to_owned())
            .spawn(move || read_ahead(replay, decoder, &full_tx, &empty_rx))?;
        Ok(Prefetch {
            full,
            empty,
            current: Batch::default(),
            next: 0,
            done: false,
            thread: Some(thread),
        })
    }

    /// The next frame in timestamp order across all inputs, as [`Replay::next_frame`], with
    /// what [`Decoder::decode`] made of it.
    #[allow(clippy::type_complexity)]
    pub fn next_frame(&mut self) -> Result<Option<(Frame<'_>, Option<Packet<'_>>)>, CaptureError> {
        loop {
            if self.next < self.current.frames.len() {
                break;
            }
            if let Some(e) = self.current.error.take() {
                return Err(e);
            }
            if self.done || self.current.last {
                self.done = true;
                return Ok(None);
            }
            let Ok(batch) = self.full.recv() else {
                // The thread ended without a last batch: it panicked. Its panic is ours: a run
                // must never look complete when reading failed.
                self.done = true;
                if let Some(thread) = self.thread.take()
                    && let Err(panic) = thread.join()
                {
                    std::panic::resume_unwind(panic);
                }
                return Ok(None);
            };
            let used = std::mem::replace(&mut self.current, batch);
            self.next = 0;
            // The pool is sized to never block; a full pool just drops the buffer.
            let _ = self.empty.try_send(used);
        }
        let Some(meta) = self.current.frames.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let data = self.current.data.get(meta.data.clone()).unwrap_or_default();
        let packet = meta.packet.map(|p| Packet {
            payload: data.get(meta.payload.clone()).unwrap_or_default(),
            ..p
        });
        let frame = Frame {
            ts_ns: meta.ts_ns,
            link_type: meta.link_type,
            data,
            wire_len: meta.wire_len,
            source: meta.source,
            index: meta.index,
        };
        Ok(Some((frame, packet)))
    }

    /// Stops reading and gives the decoder back as it was after the last frame handed out
    /// (frames decoded ahead and never taken are not counted): the state before the current
    /// batch, with the frames taken from it decoded again.
    pub fn finish(mut self) -> Decoder {
        self.stop();
        let mut decoder = self
            .current
            .decoder_before
            .take()
            .map_or_else(Decoder::default, |d| *d);
        for meta in self.current.frames.iter().take(self.next) {
            let frame = Frame {
                ts_ns: meta.ts_ns,
                link_type: meta.link_type,
                data: self.current.data.get(meta.data.clone()).unwrap_or_default(),
                wire_len: meta.wire_len,
                source: meta.source,
                index: meta.index,
            };
            let _ = decoder.decode(&frame);
        }
        decoder
    }

    /// Closes our ends of the channels (the thread's next send fails, and it returns) and joins
    /// the thread. A panic on the thread is re-raised here.
    fn stop(&mut self) {
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.full, closed));
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let (_, closed) = sync_channel(0);
            drop(std::mem::replace(&mut self.full, closed));
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The reading thread: fills batches until every input is exhausted or the reader is gone.
fn read_ahead(
    mut replay: Replay,
    mut decoder: Decoder,
    full: &SyncSender<Batch>,
    empty: &Receiver<Batch>,
) {
    let mut batch = Batch {
        decoder_before: Some(Box::new(decoder.clone())),
        ..Batch::default()
    };
    loop {
        let (ended, error) = match replay.next_frame() {
            Ok(Some(frame)) => {
                let start = batch.data.len();
                batch.data.extend_from_slice(frame.data);
                let data = batch.data.get(start..).unwrap_or_default();
                // Decoded from the copy: what the analysis will see, byte for byte.
                let copy = Frame { data, ..frame };
                let (packet, payload) = match decoder.decode(&copy) {
                    Some(p) => {
                        let (p, payload) = detach(&p, data);
                        (Some(p), payload)
                    }
                    None => (None, 0..0),
                };
                batch.frames.push(FrameMeta {
                    ts_ns: frame.ts_ns,
                    link_type: frame.link_type,
                    data: start..batch.data.len(),
                    wire_len: frame.wire_len,
                    source: frame.source,
                    index: frame.index,
                    packet,
                    payload,
                });
                (false, None)
            }
            Ok(None) => (true, None),
            Err(e) => (false, Some(e)),
        };
        let hand_over = ended || error.is_some() || batch.is_full();
        if !hand_over {
            continue;
        }
        batch.error = error;
        batch.last = ended;
        if full.send(batch).is_err() || ended {
            return;
        }
        batch = match empty.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Batch {
                data: Vec::with_capacity(PREFETCH_BATCH_BYTES + 64 * 1024),
                frames: Vec::with_capacity(PREFETCH_BATCH_FRAMES),
                ..Batch::default()
            },
        };
        batch.decoder_before = Some(Box::new(decoder.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::write::{PcapWriter, TsResolution};
    use crate::capture::{Endian, LinkType};

    /// A frame as owned values: time, bytes, input, index.
    type Owned = (i64, Vec<u8>, u16, u64);

    fn owned(f: Frame<'_>) -> Owned {
        (f.ts_ns, f.data.to_vec(), f.source, f.index)
    }

    /// Every frame a source hands out, with its errors as strings, until it says it is done.
    fn drain(
        mut next: impl FnMut() -> Result<Option<Owned>, CaptureError>,
    ) -> Vec<Result<Owned, String>> {
        let mut out = Vec::new();
        loop {
            match next() {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    /// An Ethernet pcap of `frames`, one a microsecond.
    fn pcap_of(frames: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = PcapWriter::new(
            &mut out,
            LinkType::ETHERNET,
            TsResolution::Micro,
            Endian::Little,
        )
        .unwrap();
        for (i, f) in frames.into_iter().enumerate() {
            let f = f.as_ref();
            w.write_frame(i as i64 * 1000, f, f.len() as u32).unwrap();
        }
        out
    }

    fn capture(frames: usize, size: usize, damage: bool) -> Vec<u8> {
        let mut out = pcap_of((0..frames).map(|i| {
            (0..size + i % 7)
                .map(|b| (b + i) as u8)
                .collect::<Vec<u8>>()
        }));
        if damage {
            // A record header claiming more than the cap: damage after every earlier frame.
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            out.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        out
    }

    fn open(inputs: &[(&str, Vec<u8>)]) -> Replay {
        Replay::from_readers(
            inputs
                .iter()
                .map(|(n, b)| {
                    (
                        (*n).to_owned(),
                        Box::new(std::io::Cursor::new(b.clone())) as Box<dyn std::io::Read + Send>,
                    )
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn prefetch_gives_the_same_frames_and_errors_as_replay() {
        // Many batches (by count and by bytes), two inputs merged, one damaged midway.
        let inputs = [
            ("a", capture(5000, 60, false)),
            ("b", capture(3000, 1400, true)),
        ];
        let mut replay = open(&inputs);
        let direct = drain(|| replay.next_frame().map(|f| f.map(owned)));
        let mut prefetch = Prefetch::start(open(&inputs), Decoder::new()).unwrap();
        let ahead = drain(|| prefetch.next_frame().map(|f| f.map(|(f, _)| owned(f))));
        assert_eq!(direct.len(), 8001);
        assert_eq!(direct.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(direct, ahead);
    }

    #[test]
    fn dropping_a_prefetch_midway_stops_its_thread() {
        let inputs = [("a", capture(50_000, 200, false))];
        let mut p = Prefetch::start(open(&inputs), Decoder::new()).unwrap();
        assert!(p.next_frame().unwrap().is_some());
        drop(p); // joins the thread: the test would hang if it did not stop
    }

    /// Packets (IPv4/IPv6, TCP/UDP, VLAN-tagged, datagrams to the VXLAN port, frames that are
    /// not IP) decoded on the reading thread are the packets a decoder gives reading the same
    /// frames in order, payloads included, and the decoder handed back has counted the same.
    #[test]
    fn packets_decoded_ahead_are_those_decoded_in_order() {
        use crate::craft;
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for i in 0..3000u16 {
            let payload = vec![i as u8; usize::from(i % 300)];
            let ip = match i % 4 {
                0 => craft::tcp(
                    sa("192.168.1.2:1000"),
                    sa("203.0.113.9:443"),
                    0x18,
                    &payload,
                ),
                1 => craft::udp(sa("[fd00::2]:53"), sa("[2001:db8::1]:53"), &payload),
                2 => craft::udp(sa("192.168.1.2:5353"), sa("198.51.100.1:4789"), &payload),
                _ => payload.clone(),
            };
            let vlans: &[u16] = if i % 5 == 0 { &[7] } else { &[] };
            let (a, b) = (
                crate::decode::Mac([2, 0, 0, 0, 0, 1]),
                crate::decode::Mac([2, 0, 0, 0, 0, 2]),
            );
            frames.push(craft::ethernet(a, b, vlans, &ip));
        }
        let inputs = [("a", pcap_of(&frames))];
        let mut replay = open(&inputs);
        let mut decoder = Decoder::new();
        let mut direct = Vec::new();
        while let Some(f) = replay.next_frame().unwrap() {
            direct.push(
                decoder
                    .decode(&f)
                    .map(|p| (format!("{p:?}"), p.payload.to_vec())),
            );
        }
        let mut prefetch = Prefetch::start(open(&inputs), Decoder::new()).unwrap();
        let mut ahead = Vec::new();
        while let Some((_, p)) = prefetch.next_frame().unwrap() {
            ahead.push(p.map(|p| (format!("{p:?}"), p.payload.to_vec())));
        }
        assert_eq!(ahead.len(), 3000);
        assert!(ahead.iter().filter(|p| p.is_none()).count() > 500);
        assert_eq!(direct, ahead);
        assert_eq!(prefetch.finish().stats(), decoder.stats());
    }

    /// Stopping early (a broken pipe in `replay`) must not give the engine back a
    /// decoder that has counted the frames decoded ahead, rather than the frames it was given
    /// (found in review: frames 36, packets 4096 in the summary with
    /// `--threads 2 | head`; `--threads 1` says 18 and 18).
    #[test]
    fn a_decoder_given_back_early_counts_only_the_frames_handed_out() {
        use crate::craft;
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let ip = craft::udp(sa("192.168.1.2:5353"), sa("198.51.100.1:53"), b"x");
        let mac = crate::decode::Mac([2, 0, 0, 0, 0, 1]);
        let frame = craft::ethernet(mac, mac, &[], &ip);
        let inputs = [("a", pcap_of(std::iter::repeat_n(frame.as_slice(), 20_000)))];
        let mut prefetch = Prefetch::start(open(&inputs), Decoder::new()).unwrap();
        for _ in 0..10 {
            assert!(prefetch.next_frame().unwrap().is_some());
        }
        // Let the thread run ahead as it does while the engine works.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(prefetch.finish().stats().packets, 10);
    }
}
