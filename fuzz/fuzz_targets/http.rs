//! HTTP: `parse_request`, `parse_response_status` and `split_host_port` on the bytes.
#![no_main]

use egresswatch::names::http::{parse_request, parse_response_status, split_host_port};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        std::hint::black_box(&req);
    }
    if let Ok(status) = parse_response_status(data) {
        std::hint::black_box(&status);
    }
    let line = data.split(|&b| b == b'\n').next().unwrap_or(data);
    std::hint::black_box(split_host_port(line));
});
