//! `geoip::Resolver::open` on the bytes written to a file; a database that opens is asked about a
//! few addresses (public and special, IPv4 and IPv6).
#![no_main]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use egresswatch::geoip::Resolver;
use libfuzzer_sys::fuzz_target;

const ADDRESSES: [&str; 9] = [
    "1.1.1.1",
    "8.8.8.8",
    "203.205.151.162",
    "81.2.69.160",
    "0.0.0.0",
    "255.255.255.255",
    "2001:4860:4860::8888",
    "2a02:cf40::1",
    "::ffff:1.2.3.4",
];

/// One file per process, rewritten for each input (a fresh temp file per run costs more than the
/// parse).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("egresswatch-fuzz-{}.mmdb", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    match Resolver::open(std::slice::from_ref(path)) {
        Ok(mut resolver) => {
            for a in ADDRESSES {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    std::hint::black_box(resolver.lookup(ip));
                }
            }
            std::hint::black_box(resolver.databases());
            std::hint::black_box(resolver.stats());
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});
