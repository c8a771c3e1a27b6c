//! Capture files mapped into memory, read without copying them through `read(2)`.
//!
//! Reading a file copies every byte from the page cache into a buffer: on a 700 MB capture that
//! copy was the largest cost of the reading thread (`_copy_to_iter`, ~0.12 s of 0.3 s). A
//! [`Mapping`] maps a regular file read-only instead; the parsers see the whole file as one buffer
//! and frames are slices of it.
//!
//! A mapped file that another process truncates while it is read would make the next access past
//! its new end raise `SIGBUS` and kill the process. [`Mapping`] guards against that: a `SIGBUS`
//! handler (installed once, chained to whatever handler was there before) looks the faulting
//! address up among the live mappings, maps zero-filled pages over the rest of that mapping so
//! the access completes, and marks the mapping [`cut`](Mapping::cut_short). The reader checks
//! that mark after each record and reports the input damaged where the record starts, as for any
//! file that ends early. Bytes between the new end and the end of its page read as zeros without
//! a fault (the kernel's rule for the last page), so a cut may be noticed up to one page late.
//! A fault at any other address is handed to the previous handler (or the default action), as
//! if the guard did not exist.
//!
//! Guarantees: at most [`MAPPINGS_MAX`] files are mapped at once (others are read as streams);
//! every mapping is unmapped when dropped; no `unsafe` outside this module is needed to use it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Files mapped at the same time, at most; a replay of more inputs reads the rest as streams.
pub const MAPPINGS_MAX: usize = 256;

/// Bytes read from a mapping between two [`Mapping::release_before`] calls.
pub const RELEASE_EVERY_BYTES: usize = 16 * 1024 * 1024;

/// Files smaller than this are read as streams: mapping them saves nothing.
pub const MAPPING_MIN_BYTES: u64 = 1024 * 1024;

/// One live mapping, as the signal handler sees it: `start..end` page-aligned, 0..0 when free.
struct Guarded {
    start: AtomicUsize,
    end: AtomicUsize,
    /// Claimed by a [`Mapping`] (set before `start`/`end`, cleared after them).
    taken: AtomicBool,
    /// A fault past the file's end was absorbed: the file was cut while mapped.
    cut: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Guarded = Guarded {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    taken: AtomicBool::new(false),
    cut: AtomicBool::new(false),
};

static GUARDED: [Guarded; MAPPINGS_MAX] = [FREE; MAPPINGS_MAX];

/// The handler that was installed before ours, to pass foreign faults to.
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// A regular file mapped read-only.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    slot: &'static Guarded,
}

// SAFETY: the mapping is read-only and owned by this value; the pointer is only turned into a
// shared slice whose lifetime is tied to `&self`.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only gives out shared, read-only access.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `file` when it is a regular file of at least [`MAPPING_MIN_BYTES`] and a guard slot
    /// is free; `None` means "read it as a stream" (also when the guard or `mmap` fails).
    pub fn of(file: &File) -> Option<Mapping> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() < MAPPING_MIN_BYTES {
            return None;
        }
        let len = usize::try_from(meta.len()).ok()?;
        install_guard()?;
        let slot = GUARDED.iter().find(|g| {
            g.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })?;
        // SAFETY: a fresh read-only private mapping of a file we hold open; the kernel picks the
        // address. The result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            slot.taken.store(false, Ordering::Release);
            return None;
        }
        // Read front to back: let the kernel read ahead and drop pages behind. Advice only; its
        // failure changes nothing.
        // SAFETY: advice on the range just mapped.
        unsafe {
            libc::madvise(ptr, len, libc::MADV_SEQUENTIAL);
        }
        let start = ptr as usize;
        slot.cut.store(false, Ordering::Relaxed);
        slot.end.store(
            start.saturating_add(round_up_to_page(len)),
            Ordering::Release,
        );
        slot.start.store(start, Ordering::Release);
        Some(Mapping { ptr, len, slot })
    }

    /// The file's bytes as they were mapped (zeros past a cut: see [`Mapping::cut_short`]).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is mapped readable for as long as `self` lives (a cut replaces
        // the pages past it with zero pages, still readable); nothing writes through it.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    /// Lets the kernel drop the pages before byte `offset` from this process (they stay in the
    /// page cache, and would be read back from the file if touched again), so that resident
    /// memory does not grow with the file.
    pub fn release_before(&self, offset: usize) {
        let aligned = offset.min(self.len);
        let aligned = aligned - aligned % page_size();
        if aligned == 0 {
            return;
        }
        // SAFETY: advice on a prefix of our own read-only private mapping; the pages remain
        // mapped and readable (refaulted from the file), so no slice of them is invalidated.
        unsafe {
            libc::madvise(self.ptr, aligned, libc::MADV_DONTNEED);
        }
    }

    /// The file was truncated while mapped, and bytes past its new end were read (as zeros).
    #[inline]
    pub fn cut_short(&self) -> bool {
        self.slot.cut.load(Ordering::Relaxed)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.slot.start.store(0, Ordering::Release);
        self.slot.end.store(0, Ordering::Release);
        // SAFETY: unmapping exactly what `of` mapped; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
        self.slot.taken.store(false, Ordering::Release);
    }
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| {
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
    })
}

fn round_up_to_page(n: usize) -> usize {
    let page = page_size();
    n.div_ceil(page).saturating_mul(page)
}

/// Installs the `SIGBUS` handler once; `None` when it could not be installed (then nothing is
/// mapped).
fn install_guard() -> Option<()> {
    let page = page_size();
    PAGE_FOR_HANDLER.store(page, Ordering::Relaxed);
    let previous = PREVIOUS.get_or_init(|| {
        // SAFETY: installing a handler that only uses async-signal-safe calls (mmap, sigaction)
        // and atomics; the old action is saved to chain foreign faults to it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(libc::SIGBUS, &action, &mut old) == 0).then_some(old)
        }
    });
    previous.map(|_| ())
}

/// The page size, readable from the handler without initialising anything.
static PAGE_FOR_HANDLER: AtomicUsize = AtomicUsize::new(4096);

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_FOR_HANDLER.load(Ordering::Relaxed).max(1);
    for g in &GUARDED {
        let start = g.start.load(Ordering::Acquire);
        let end = g.end.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= end {
            continue;
        }
        let from = addr - addr % page;
        // SAFETY: replaces pages of our own mapping (from the faulting page to its end) with
        // zero-filled anonymous pages at the same address, so the faulting read completes.
        let zeroed = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeroed != libc::MAP_FAILED {
            g.cut.store(true, Ordering::Relaxed);
            return;
        }
    }
    // Not a mapped capture: behave as if this handler were not there.
    // SAFETY: sigaction and raise are async-signal-safe; the saved action came from the kernel.
    unsafe {
        match PREVIOUS.get().copied().flatten() {
            Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(old.sa_sigaction);
                    f(signal, info, context);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(old.sa_sigaction);
                    f(signal);
                }
            }
            _ => {
                // Default action: restore it and return; the faulting access repeats and the
                // kernel delivers SIGBUS again, now fatal as it would have been.
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn temp_file(bytes: &[u8]) -> std::io::Result<(tempfile::TempDir, std::path::PathBuf)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("capture.pcap");
        std::fs::File::create(&path)?.write_all(bytes)?;
        Ok((dir, path))
    }

    #[test]
    fn small_files_and_non_files_are_not_mapped() -> std::io::Result<()> {
        let (_dir, path) = temp_file(&[1, 2, 3])?;
        assert!(Mapping::of(&File::open(&path)?).is_none());
        let dir = tempfile::tempdir()?;
        assert!(Mapping::of(&File::open(dir.path())?).is_none());
        Ok(())
    }

    #[test]
    fn a_mapping_shows_the_file_and_frees_its_slot() -> std::io::Result<()> {
        let bytes: Vec<u8> = (0..MAPPING_MIN_BYTES as usize + 3)
            .map(|i| i as u8)
            .collect();
        let (_dir, path) = temp_file(&bytes)?;
        let before = GUARDED
            .iter()
            .filter(|g| g.taken.load(Ordering::Acquire))
            .count();
        {
            let m = Mapping::of(&File::open(&path)?).expect("mapped");
            assert_eq!(m.bytes(), &bytes[..]);
            assert!(!m.cut_short());
        }
        let after = GUARDED
            .iter()
            .filter(|g| g.taken.load(Ordering::Acquire))
            .count();
        assert!(after <= before, "the slot is given back");
        Ok(())
    }

    #[test]
    fn a_file_truncated_while_mapped_reads_zeros_and_is_marked_cut() -> std::io::Result<()> {
        let len = 4 * MAPPING_MIN_BYTES as usize;
        let bytes = vec![0xabu8; len];
        let (_dir, path) = temp_file(&bytes)?;
        let m = Mapping::of(&File::open(&path)?).expect("mapped");
        // Another writer cuts the file to a quarter.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(MAPPING_MIN_BYTES)?;
        let b = m.bytes();
        assert_eq!(b[0], 0xab);
        assert_eq!(b[MAPPING_MIN_BYTES as usize - 1], 0xab);
        assert!(!m.cut_short(), "nothing past the cut read yet");
        // Past the new end: without the guard this access would kill the process.
        assert_eq!(b[len - 1], 0);
        assert!(m.cut_short());
        assert_eq!(b[2 * MAPPING_MIN_BYTES as usize], 0);
        Ok(())
    }
}
