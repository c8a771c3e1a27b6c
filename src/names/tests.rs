use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::classify::{AppProto, classify};
use super::dns::*;
use super::http::*;
use super::tls::*;
use super::*;
use crate::decode::Transport;

// ---------------------------------------------------------------------------------------------
// Builders

/// Writes DNS messages with RFC 1035 §4.1.4 compression of every repeated suffix.
struct DnsBuilder {
    buf: Vec<u8>,
    suffixes: HashMap<String, u16>,
}

impl DnsBuilder {
    fn new(id: u16, flags: u16, qd: u16, an: u16) -> DnsBuilder {
        let mut buf = Vec::new();
        for v in [id, flags, qd, an, 0, 0] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        DnsBuilder {
            buf,
            suffixes: HashMap::new(),
        }
    }

    fn response(qd: u16, an: u16) -> DnsBuilder {
        DnsBuilder::new(0x1234, 0x8180, qd, an)
    }

    fn name(&mut self, name: &str) {
        let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
        for i in 0..labels.len() {
            let suffix = labels[i..].join(".");
            if let Some(&at) = self.suffixes.get(&suffix) {
                self.buf.extend_from_slice(&(0xc000 | at).to_be_bytes());
                return;
            }
            self.suffixes.insert(suffix, self.buf.len() as u16);
            self.buf.push(labels[i].len() as u8);
            self.buf.extend_from_slice(labels[i].as_bytes());
        }
        self.buf.push(0);
    }

    fn question(&mut self, name: &str, qtype: u16) -> &mut Self {
        self.name(name);
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self
    }

    fn rr(&mut self, name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> &mut Self {
        self.name(name);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self
    }

    fn a(&mut self, name: &str, ttl: u32, ip: [u8; 4]) -> &mut Self {
        self.rr(name, TYPE_A, ttl, &ip)
    }

    fn cname(&mut self, name: &str, ttl: u32, target: &str) -> &mut Self {
        self.name(name);
        self.buf.extend_from_slice(&TYPE_CNAME.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.name(target);
        let len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

fn u16v(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn vec16(body: &[u8]) -> Vec<u8> {
    let mut v = u16v(body.len() as u16).to_vec();
    v.extend_from_slice(body);
    v
}

fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut v = u16v(ty).to_vec();
    v.extend(vec16(data));
    v
}

/// A ClientHello handshake message (header included), padded (RFC 7685 padding extension 21)
/// to about `pad_to` bytes.
fn client_hello_msg(
    sni: Option<&[u8]>,
    alpn: &[&str],
    versions: &[u16],
    pad_to: usize,
    dtls: bool,
) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x11; 32]);
    body.push(32);
    body.extend_from_slice(&[0x22; 32]);
    if dtls {
        body.push(0); // empty cookie
    }
    body.extend(vec16(&[0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]));
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    exts.extend(ext(0x0a0a, &[])); // GREASE extension
    if let Some(name) = sni {
        let mut entry = vec![0u8];
        entry.extend(vec16(name));
        exts.extend(ext(EXT_SERVER_NAME, &vec16(&entry)));
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        exts.extend(ext(EXT_ALPN, &vec16(&list)));
    }
    if !versions.is_empty() {
        let mut list = vec![(versions.len() * 2) as u8];
        for v in versions {
            list.extend_from_slice(&u16v(*v));
        }
        exts.extend(ext(EXT_SUPPORTED_VERSIONS, &list));
    }
    let so_far = body.len() + 2 + exts.len() + 4;
    if pad_to > so_far + 4 {
        exts.extend(ext(21, &vec![0; pad_to - so_far - 4]));
    }
    body.extend(vec16(&exts));
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    msg
}

/// Wraps a handshake message in TLS records of at most `record_max` payload bytes.
fn records(msg: &[u8], record_max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(record_max) {
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&u16v(chunk.len() as u16));
        out.extend_from_slice(chunk);
    }
    out
}

fn standard_hello(pad_to: usize) -> Vec<u8> {
    let msg = client_hello_msg(
        Some(b"Example.COM"),
        &["h2", "http/1.1"],
        &[0x3a3a, 0x0304, 0x0303],
        pad_to,
        false,
    );
    records(&msg, 16384)
}

fn server_hello(version: Option<u16>) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x33; 32]);
    body.push(0);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    if let Some(v) = version {
        body.extend(vec16(&ext(EXT_SUPPORTED_VERSIONS, &u16v(v))));
    }
    let mut msg = vec![HANDSHAKE_SERVER_HELLO];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    records(&msg, 16384)
}

// ---------------------------------------------------------------------------------------------
// Name hygiene

#[test]
fn clean_name_lowercases_escapes_and_cuts() {
    assert_eq!(clean_name(b"WWW.Example.COM"), "www.example.com");
    assert_eq!(
        clean_name(b"a\x00b\n\xff\\ c"),
        "a\\x00b\\x0a\\xff\\x5c\\x20c"
    );
    let long = clean_name(&[b'a'; 400]);
    assert_eq!(long.chars().count(), NAME_MAX_CHARS);
    assert!(long.ends_with(TRUNCATION_MARKER));
    let exact = clean_name(&[b'a'; NAME_MAX_CHARS]);
    assert_eq!(exact.len(), NAME_MAX_CHARS);
    assert!(!exact.ends_with(TRUNCATION_MARKER));
    let over = clean_name(&[b'a'; NAME_MAX_CHARS + 1]);
    assert_eq!(over.chars().count(), NAME_MAX_CHARS);
    assert!(over.ends_with(TRUNCATION_MARKER));
    // An escape sequence is never split by the cut.
    let esc = clean_name(&[0u8; 100]);
    assert!(esc.chars().count() <= NAME_MAX_CHARS);
    assert!(
        esc.trim_end_matches(TRUNCATION_MARKER)
            .len()
            .is_multiple_of(4)
    );
}

// ---------------------------------------------------------------------------------------------
// DNS

#[test]
fn dns_response_with_compression_and_cname_chain() {
    let mut b = DnsBuilder::response(1, 4);
    b.question("WWW.Example.com", TYPE_A)
        .cname("www.example.com", 300, "edge.cdn.example.net")
        .cname("edge.cdn.example.net", 60, "a1.cdn.example.net")
        .a("a1.cdn.example.net", 20, [192, 0, 2, 1])
        .a("a1.cdn.example.net", 3600, [192, 0, 2, 2]);
    let m = parse_message(&b.bytes()).unwrap();
    assert!(m.is_response);
    assert_eq!(m.id, 0x1234);
    assert_eq!((m.qdcount, m.ancount), (1, 4));
    assert_eq!(m.questions[0].name, "www.example.com");
    assert_eq!(m.answers.len(), 4);
    let r: Vec<_> = m.resolutions().collect();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].query, "www.example.com");
    assert_eq!(r[0].addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(
        r[0].cname_chain,
        vec!["edge.cdn.example.net", "a1.cdn.example.net"]
    );
    assert_eq!(r[0].ttl, 20);
    assert_eq!(r[1].ttl, 60, "smallest TTL along the chain");
}

#[test]
fn dns_aaaa_other_types_and_queries() {
    let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut b = DnsBuilder::response(1, 3);
    b.question("v6.test", TYPE_AAAA)
        .rr("v6.test", 16, 5, b"\x05hello") // TXT, skipped
        .rr("v6.test", TYPE_AAAA, 10, &v6.octets())
        .rr("v6.test", TYPE_A, 10, &[1, 2, 3]); // bad A length: stops the section
    let m = parse_message(&b.bytes()).unwrap();
    assert_eq!(m.answers_other, 1);
    assert!(m.answers_incomplete);
    let r: Vec<_> = m.resolutions().collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].addr, IpAddr::V6(v6));

    let mut q = DnsBuilder::new(7, 0x0100, 1, 0);
    q.question("v6.test", TYPE_AAAA);
    let m = parse_message(&q.bytes()).unwrap();
    assert!(!m.is_response);
    assert_eq!(m.resolutions().count(), 0);
}

#[test]
fn dns_cname_loop_and_answer_cap() {
    let mut b = DnsBuilder::response(1, 3);
    b.question("a.test", TYPE_A)
        .cname("a.test", 1, "b.test")
        .cname("b.test", 1, "a.test")
        .a("b.test", 1, [10, 0, 0, 1]);
    let m = parse_message(&b.bytes()).unwrap();
    let r: Vec<_> = m.resolutions().collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].cname_chain, vec!["b.test"]);
    assert_eq!(m.chains_cut(), 1, "the loop is counted");

    // A chain one link longer than followed is cut; one exactly as long is not.
    for (links, cut) in [(DNS_CNAME_CHAIN_MAX, 0), (DNS_CNAME_CHAIN_MAX + 1, 1)] {
        let mut b = DnsBuilder::response(1, links as u16 + 1);
        b.question("c0.test", TYPE_A);
        for k in 0..links {
            b.cname(&format!("c{k}.test"), 1, &format!("c{}.test", k + 1));
        }
        b.a(&format!("c{links}.test"), 1, [10, 0, 0, 2]);
        let m = parse_message(&b.bytes()).unwrap();
        assert_eq!(m.chains_cut(), cut, "{links} links");
        assert_eq!(m.resolutions().count() as u64, 1 - cut);
    }

    let n = DNS_ANSWERS_MAX as u16 + 10;
    let mut b = DnsBuilder::response(1, n);
    b.question("many.test", TYPE_A);
    for i in 0..n {
        b.a("many.test", 1, [10, 0, (i >> 8) as u8, i as u8]);
    }
    let m = parse_message(&b.bytes()).unwrap();
    assert_eq!(m.answers.len(), DNS_ANSWERS_MAX);
    assert_eq!(m.answers_dropped, 10);
    assert!(!m.answers_incomplete);
}

#[test]
fn dns_hostile_names() {
    let header = |qd: u16| {
        let mut v = vec![0, 1, 0x81, 0x80];
        v.extend_from_slice(&qd.to_be_bytes());
        v.extend_from_slice(&[0; 6]);
        v
    };
    // Pointer to itself.
    let mut m = header(1);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    // Pointer forwards.
    let mut m = header(1);
    m.extend_from_slice(&[0xc0, 14, 1, b'a', 0, 0, 1, 0, 1]);
    assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    // Two labels pointing at each other: the second pointer lands inside the segment read.
    let mut m = header(1);
    m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    // Names longer than 255 octets, in place and through pointers.
    let mut m = header(1);
    for _ in 0..5 {
        m.push(63);
        m.extend_from_slice(&[b'x'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parse_message(&m), Err(DnsError::NameTooLong));
    // Exactly 255 octets (253 characters) is legal and kept whole.
    let mut m = header(1);
    for len in [63u8, 63, 63, 61] {
        m.push(len);
        m.extend(std::iter::repeat_n(b'y', usize::from(len)));
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let name = &parse_message(&m).unwrap().questions[0].name;
    assert_eq!(name.len(), NAME_MAX_CHARS);
    assert!(!name.ends_with(TRUNCATION_MARKER));
    // Extended label types.
    let mut m = header(1);
    m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
    assert_eq!(parse_message(&m), Err(DnsError::BadLabelType));
    // Huge counts, short data.
    let mut m = header(0xffff);
    m[6] = 0xff;
    m[7] = 0xff;
    assert!(matches!(parse_message(&m), Err(DnsError::Truncated(_))));
    // Control bytes and dots inside a label come out escaped.
    let mut m = header(1);
    m.extend_from_slice(&[
        4, b'A', b'.', 0x07, 0xff, 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
    ]);
    let p = parse_message(&m).unwrap();
    assert_eq!(p.questions[0].name, "a\\046\\007\\255.com");
    // Root.
    let mut m = header(1);
    m.extend_from_slice(&[0, 0, 2, 0, 1]);
    assert_eq!(parse_message(&m).unwrap().questions[0].name, ".");
}

#[test]
fn dns_long_chain_of_backward_pointers_is_capped() {
    // Each name is one label then a pointer to the previous name: legal, strictly backwards,
    // but the last one needs more hops than the cap (and more than 255 octets).
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    let mut prev: Option<u16> = None;
    let first = m.len();
    for _ in 0..100 {
        let at = m.len() as u16;
        m.extend_from_slice(&[1, b'a']);
        match prev {
            Some(p) => m.extend_from_slice(&(0xc000 | p).to_be_bytes()),
            None => m.push(0),
        }
        prev = Some(at);
    }
    // The question is the name at `prev`, placed at the header end by pointing there.
    let mut msg = m[..12].to_vec();
    msg.extend_from_slice(&(0xc000 | prev.unwrap()).to_be_bytes());
    msg.extend_from_slice(&[0, 1, 0, 1]);
    let _ = first;
    // Pointing forwards from the question is refused outright.
    assert_eq!(parse_message(&msg), Err(DnsError::PointerLoop));
    assert!(matches!(
        read_name(&m, prev.unwrap() as usize),
        Err(DnsError::PointerLoop | DnsError::NameTooLong)
    ));
}

#[test]
fn dns_tcp_reassembly() {
    let mut b = DnsBuilder::response(1, 1);
    b.question("tcp.test", TYPE_A)
        .a("tcp.test", 5, [192, 0, 2, 9]);
    let msg = b.bytes();
    let mut framed = Vec::new();
    for _ in 0..3 {
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(&msg);
    }
    framed.extend_from_slice(&[0, 0]); // an empty frame, skipped
    for cut in [1, 2, 3, 7, msg.len() + 2, msg.len() + 3, framed.len()] {
        let mut r = DnsTcpReassembler::new();
        let mut got = Vec::new();
        for seg in framed.chunks(cut) {
            r.push(seg, |m| got.push(m.to_vec()));
            assert!(r.buffered() <= DNS_TCP_BUFFER_MAX);
        }
        assert_eq!(got.len(), 3, "segment size {cut}");
        assert!(got.iter().all(|m| *m == msg));
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.empty_frames, 1);
    }
    // A frame that never completes stays bounded.
    let mut r = DnsTcpReassembler::new();
    r.push(&[0xff, 0xff], |_| panic!("no message"));
    for _ in 0..65 {
        r.push(&[0u8; 1000], |_| panic!("no message"));
        assert!(r.buffered() <= DNS_TCP_BUFFER_MAX);
    }
    assert!(is_local_resolution(5353) && is_local_resolution(5355) && !is_local_resolution(53));
}

// ---------------------------------------------------------------------------------------------
// TLS

#[test]
fn client_hello_fields() {
    let h = parse_client_hello(&standard_hello(0)).unwrap();
    assert_eq!(h.sni.as_deref(), Some("example.com"));
    assert_eq!(h.alpn, vec!["h2", "http/1.1"]);
    assert_eq!(h.version, TlsVersion::Tls13);
    assert_eq!(h.version.as_str(), "TLS 1.3");
    // Without supported_versions: the legacy field.
    let h = parse_client_hello(&records(&client_hello_msg(None, &[], &[], 0, false), 100)).unwrap();
    assert_eq!((h.sni, h.version), (None, TlsVersion::Tls12));
    // Only GREASE and an unknown value: unknown ranks lowest but beats nothing.
    let msg = client_hello_msg(None, &[], &[0x1a1a, 0x0302], 0, false);
    assert_eq!(
        parse_client_hello(&records(&msg, 999)).unwrap().version,
        TlsVersion::Tls11
    );
    assert!(is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x0304));
}

#[test]
fn client_hello_across_records_and_hostile_lengths() {
    let msg = client_hello_msg(Some(b"big.test"), &["h2"], &[0x0304], 1800, false);
    assert!(msg.len() >= 1800);
    let stream = records(&msg, 500);
    let h = parse_client_hello(&stream).unwrap();
    assert_eq!(h.sni.as_deref(), Some("big.test"));
    for cut in 0..stream.len() {
        assert_eq!(
            parse_client_hello(&stream[..cut]),
            Err(TlsError::Incomplete),
            "cut {cut}"
        );
    }
    // A handshake length that lies beyond its records' end, then another record type.
    let mut lie = standard_hello(0);
    lie[7] = 0x20; // message length + 0x2000
    lie.extend_from_slice(&[CONTENT_APPLICATION_DATA, 3, 3, 0, 1, 0]);
    assert_eq!(parse_client_hello(&lie), Err(TlsError::NotHandshake));
    // A message length over the bound.
    let mut huge = standard_hello(0);
    huge[6] = 0x7f;
    assert_eq!(parse_client_hello(&huge), Err(TlsError::TooLarge));
    // An inner length that lies (extensions block longer than the body).
    let mut inner = standard_hello(0);
    let ext_len_at = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 6 + 2;
    inner[ext_len_at] = 0xff;
    assert!(matches!(
        parse_client_hello(&inner),
        Err(TlsError::Malformed(_))
    ));
    assert_eq!(
        parse_client_hello(b"GET / HTTP/1.1\r\n"),
        Err(TlsError::NotHandshake)
    );
    // A ServerHello is not a ClientHello.
    assert!(matches!(
        parse_client_hello(&server_hello(None)),
        Err(TlsError::WrongMessage(_))
    ));
}

#[test]
fn sni_with_control_bytes_is_escaped() {
    let msg = client_hello_msg(Some(b"EVIL\x1b[31m.test\x00"), &[], &[], 0, false);
    let h = parse_client_hello(&records(&msg, 16384)).unwrap();
    assert_eq!(h.sni.as_deref(), Some("evil\\x1b[31m.test\\x00"));
}

#[test]
fn server_hello_versions() {
    assert_eq!(
        parse_server_hello(&server_hello(Some(0x0304))),
        Ok(TlsVersion::Tls13)
    );
    assert_eq!(
        parse_server_hello(&server_hello(None)),
        Ok(TlsVersion::Tls12)
    );
}

#[test]
fn handshake_state_needs_both_directions() {
    let mut s = TlsHandshakeState::new();
    s.observe(true, &standard_hello(0));
    let mut sh = server_hello(Some(0x0304));
    sh.extend_from_slice(&[CONTENT_CHANGE_CIPHER_SPEC, 3, 3, 0, 1, 1]);
    sh.extend_from_slice(&[CONTENT_APPLICATION_DATA, 3, 3, 0, 4, 9, 9, 9, 9]);
    s.observe(false, &sh);
    assert_eq!(s.server_hello, Some(TlsVersion::Tls13));
    assert!(s.server_app_data && !s.is_encrypted());
    s.observe(true, &[CONTENT_APPLICATION_DATA, 3, 3, 0, 2, 1, 1]);
    assert!(s.is_encrypted());
    // Application data without a handshake is not enough.
    let mut t = TlsHandshakeState::new();
    t.observe(true, &[CONTENT_APPLICATION_DATA, 3, 3, 0, 2, 1, 1]);
    t.observe(false, &[CONTENT_APPLICATION_DATA, 3, 3, 0, 2, 1, 1]);
    assert!(!t.is_encrypted());
}

fn segments(stream: &[u8], base: u32, size: usize) -> Vec<(u32, Vec<u8>)> {
    stream
        .chunks(size)
        .enumerate()
        .map(|(i, c)| (base.wrapping_add((i * size) as u32), c.to_vec()))
        .collect()
}

#[test]
fn assembler_in_order_reversed_duplicated_and_wrapping() {
    let msg = client_hello_msg(Some(b"pq.test"), &["h2"], &[0x0304], 1900, false);
    let stream = records(&msg, 1200);
    for base in [1000u32, u32::MAX - 700] {
        let segs = segments(&stream, base, 536);
        // In order.
        let mut a = TlsHelloAssembler::new();
        let mut out = None;
        for (seq, data) in &segs {
            if let Some(r) = a.push(*seq, data) {
                out = Some(r);
            }
        }
        assert_eq!(out.unwrap().unwrap().sni.as_deref(), Some("pq.test"));
        assert!(a.is_finished());
        assert_eq!(a.push(base, &stream), None);
        // Reversed, with duplicates and an overlapping resend.
        let mut a = TlsHelloAssembler::new();
        let mut out = None;
        let mut order: Vec<(u32, Vec<u8>)> = segs.iter().rev().cloned().collect();
        order.insert(1, segs[segs.len() - 1].clone());
        order.insert(2, (base.wrapping_add(100), stream[100..900].to_vec()));
        for (seq, data) in &order {
            if let Some(r) = a.push(*seq, data) {
                assert!(out.is_none());
                out = Some(r);
            }
        }
        assert_eq!(out.unwrap().unwrap().sni.as_deref(), Some("pq.test"));
    }
}

#[test]
fn assembler_gives_up_bounded() {
    // A hello announcing 15 KiB that never completes.
    let msg = client_hello_msg(Some(b"x.test"), &[], &[], 15_000, false);
    let stream = records(&msg, 16384);
    let mut a = TlsHelloAssembler::new();
    assert_eq!(a.push(1, &stream[..1000]), None);
    // Segments past the hello bound.
    assert_eq!(
        a.push(1 + TLS_HELLO_MAX_BYTES as u32 + 5, &[0; 100]),
        Some(Err(TlsError::TooLarge))
    );
    // A stream that never shows a hello start fills up and stops.
    let mut a = TlsHelloAssembler::new();
    let mut result = None;
    for i in 0..200u32 {
        if let Some(r) = a.push(5000 + i * 1000, &[0x42; 1000]) {
            result = Some(r);
            break;
        }
    }
    assert_eq!(result, Some(Err(TlsError::TooLarge)));
    // Not TLS at all.
    let mut a = TlsHelloAssembler::new();
    a.set_stream_start(1);
    assert_eq!(
        a.push(1, b"GET / HTTP/1.1\r\n"),
        Some(Err(TlsError::NotHandshake))
    );
}

#[test]
fn dtls_client_hello() {
    let msg = client_hello_msg(
        Some(b"webrtc.test"),
        &["webrtc"],
        &[0xfefc, 0xfefd],
        0,
        true,
    );
    // Convert the TLS handshake header (4 bytes) into the DTLS one (12 bytes).
    let body = &msg[4..];
    let len = &msg[1..4];
    let mut hs = vec![HANDSHAKE_CLIENT_HELLO];
    hs.extend_from_slice(len);
    hs.extend_from_slice(&[0, 0, 0, 0, 0]);
    hs.extend_from_slice(len);
    hs.extend_from_slice(body);
    let mut dgram = vec![CONTENT_HANDSHAKE, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    dgram.extend_from_slice(&u16v(hs.len() as u16));
    dgram.extend_from_slice(&hs);
    let h = parse_dtls_client_hello(&dgram).unwrap();
    assert_eq!(h.sni.as_deref(), Some("webrtc.test"));
    assert_eq!(h.alpn, vec!["webrtc"]);
    assert_eq!(h.version, TlsVersion::Dtls13);
    assert_eq!(
        classify(&dgram, Transport::Udp, (5000, 5001)),
        Some(AppProto::Dtls)
    );
    // A later fragment is refused.
    let mut frag = dgram.clone();
    frag[13 + 8] = 1;
    assert_eq!(parse_dtls_client_hello(&frag), Err(TlsError::Fragmented));
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[test]
fn http_requests() {
    let r = parse_request(
        b"GET /index.html HTTP/1.1\r\nUser-Agent: x\r\nhOsT:  WWW.Wikipedia.org \r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/index.html");
    assert_eq!(r.form, TargetForm::Origin);
    assert_eq!(
        (r.host.as_deref(), r.port),
        (Some("www.wikipedia.org"), None)
    );

    let r = parse_request(b"POST /x HTTP/1.0\nHost: 203.107.1.65:8080\n\n").unwrap();
    assert_eq!(
        (r.host.as_deref(), r.port, r.minor_version),
        (Some("203.107.1.65"), Some(8080), 0)
    );

    let r = parse_request(b"GET / HTTP/1.1\r\nHost: [2001:DB8::1]:443\r\n\r\n").unwrap();
    assert_eq!(
        (r.host.as_deref(), r.port),
        (Some("2001:db8::1"), Some(443))
    );

    let r = parse_request(b"GET http://user@Proxy.Test:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
        .unwrap();
    assert_eq!(r.form, TargetForm::Absolute);
    assert_eq!((r.host.as_deref(), r.port), (Some("proxy.test"), Some(81)));

    let r = parse_request(b"CONNECT tunnel.test:443 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.form, TargetForm::Authority);
    assert_eq!(
        (r.host.as_deref(), r.port),
        (Some("tunnel.test"), Some(443))
    );

    // The Host header not reached yet.
    let r = parse_request(b"GET / HTTP/1.1\r\nAccept: */*\r\nHo").unwrap();
    assert_eq!(r.host, None);
    // Hostile hosts: control characters refused, high bytes escaped.
    let r = parse_request(b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n").unwrap();
    assert_eq!(r.host, None);
    let r = parse_request(b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.test\r\n\r\n").unwrap();
    assert_eq!(r.host.as_deref(), Some("caf\\xc3\\xa9.test"));
    let r = parse_request(b"GET / HTTP/1.1\r\nHost: a.test:99999\r\n\r\n").unwrap();
    assert_eq!(r.host, None);

    assert_eq!(parse_request(b"GET /inde"), Err(HttpError::Incomplete));
    assert_eq!(parse_request(b"GE"), Err(HttpError::Incomplete));
    assert_eq!(
        parse_request(b"\x16\x03\x01\x02\x00"),
        Err(HttpError::NotHttp)
    );
    assert_eq!(parse_request(b"GET / SPDY/3\r\n"), Err(HttpError::NotHttp));
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', HTTP_HEAD_MAX_BYTES));
    assert_eq!(parse_request(&long), Err(HttpError::NotHttp));
    let mut long_target = b"GET /".to_vec();
    long_target.extend(std::iter::repeat_n(b'a', 1000));
    long_target.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let r = parse_request(&long_target).unwrap();
    assert!(r.target.chars().count() <= HTTP_TARGET_MAX_CHARS);
    assert!(r.target.ends_with(TRUNCATION_MARKER));
}

#[test]
fn http_status() {
    assert_eq!(
        parse_response_status(b"HTTP/1.1 301 Moved Permanently\r\n"),
        Ok(HttpStatus {
            minor_version: 1,
            code: 301
        })
    );
    assert_eq!(
        parse_response_status(b"HTTP/1.0 200"),
        Ok(HttpStatus {
            minor_version: 0,
            code: 200
        })
    );
    assert_eq!(
        parse_response_status(b"HTTP/1."),
        Err(HttpError::Incomplete)
    );
    assert_eq!(
        parse_response_status(b"HTTP/1.1 2x0 OK"),
        Err(HttpError::NotHttp)
    );
    assert_eq!(
        parse_response_status(b"HTTP/2 200"),
        Err(HttpError::NotHttp)
    );
    assert_eq!(parse_response_status(b"SSH-2.0-x"), Err(HttpError::NotHttp));
}

// ---------------------------------------------------------------------------------------------
// Classification

#[test]
fn classify_by_content() {
    let tcp = Transport::Tcp;
    let udp = Transport::Udp;
    assert_eq!(
        classify(&standard_hello(0), tcp, (40000, 8443)),
        Some(AppProto::Tls)
    );
    assert_eq!(
        classify(b"SSH-2.0-OpenSSH_9.6\r\n", tcp, (40000, 2222)),
        Some(AppProto::Ssh)
    );
    assert_eq!(
        classify(b"GET / HTTP/1.1\r\n", tcp, (40000, 443)),
        Some(AppProto::Http)
    );
    assert_eq!(
        classify(b"HTTP/1.1 200 OK\r\n", tcp, (80, 40000)),
        Some(AppProto::Http)
    );
    let mut quic = vec![0xc3, 0, 0, 0, 1, 8];
    quic.extend_from_slice(&[0; 1200]);
    assert_eq!(classify(&quic, udp, (40000, 4433)), Some(AppProto::Quic));
    quic[1..5].copy_from_slice(&0x6b33_43cfu32.to_be_bytes());
    assert_eq!(classify(&quic, udp, (40000, 4433)), Some(AppProto::Quic));
    quic[1..5].copy_from_slice(&0xff00_001du32.to_be_bytes());
    assert_eq!(classify(&quic, udp, (40000, 4433)), Some(AppProto::Quic));
    quic[1..5].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(classify(&quic, udp, (40000, 4433)), Some(AppProto::Unknown));

    let mut q = DnsBuilder::new(9, 0x0100, 1, 0);
    q.question("off-port.test", TYPE_A);
    assert_eq!(
        classify(&q.bytes(), udp, (40000, 5300)),
        Some(AppProto::Dns)
    );
    let mut framed = u16v(q.bytes().len() as u16).to_vec();
    framed.extend(q.bytes());
    assert_eq!(classify(&framed, tcp, (40000, 53)), Some(AppProto::Dns));
    assert_eq!(
        classify(b"\x00\x01garbage", udp, (1, 2)),
        Some(AppProto::Unknown)
    );
    assert_eq!(classify(b"", tcp, (1, 2)), None);
    assert_eq!(classify(b"x", Transport::Icmp, (0, 0)), None);
    assert_eq!(AppProto::Quic.as_str(), "quic");
    assert!(AppProto::Ssh.is_encrypted_protocol() && !AppProto::Http.is_encrypted_protocol());
}

// ---------------------------------------------------------------------------------------------
// Property tests: no panic on any input, truncation everywhere.

/// The resolution walk as first written (hash sets for the names seen): the reference
/// `DnsMessage::resolve_all` must equal. Returns the resolutions and the chains cut.
fn resolutions_reference(m: &DnsMessage) -> (Vec<Resolution<'_>>, u64) {
    use std::collections::HashSet;
    fn resolve<'a>(m: &'a DnsMessage, query: &'a str, out: &mut Vec<Resolution<'a>>) -> bool {
        let mut current = query;
        let mut chain: Vec<&'a str> = Vec::new();
        let mut ttl = u32::MAX;
        let mut visited: HashSet<&str> = HashSet::from([query]);
        loop {
            for a in m.answers.iter().filter(|a| a.name == current) {
                if let Some(addr) = a.addr() {
                    out.push(Resolution {
                        query,
                        addr,
                        cname_chain: chain.clone(),
                        ttl: ttl.min(a.ttl),
                    });
                }
            }
            let next = m.answers.iter().find_map(|a| match &a.data {
                DnsRecordData::Cname(t) if a.name == current => Some((t.as_str(), a.ttl)),
                _ => None,
            });
            match next {
                Some((target, cname_ttl))
                    if chain.len() < DNS_CNAME_CHAIN_MAX && visited.insert(target) =>
                {
                    chain.push(target);
                    ttl = ttl.min(cname_ttl);
                    current = target;
                }
                Some(_) => return true,
                None => return false,
            }
        }
    }
    let mut out = Vec::new();
    let mut cut = 0;
    if m.is_response && m.rcode == 0 {
        if m.questions.is_empty() {
            for a in &m.answers {
                if let Some(addr) = a.addr() {
                    out.push(Resolution {
                        query: &a.name,
                        addr,
                        cname_chain: Vec::new(),
                        ttl: a.ttl,
                    });
                }
            }
        }
        let mut seen_queries = HashSet::new();
        for q in &m.questions {
            if seen_queries.insert(q.name.as_str()) && resolve(m, &q.name, &mut out) {
                cut += 1;
            }
        }
    }
    (out, cut)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// The resolution walk (linear scans for the names seen, one walk for resolutions and cut
    /// chains) equals the reference: messages over a few names with CNAME chains, loops,
    /// repeated questions, long chains and mDNS-style answers without questions.
    #[test]
    fn resolve_all_equals_the_reference(
        questions in proptest::collection::vec(0usize..6, 0..4),
        answers in proptest::collection::vec((0usize..20, 0usize..20, any::<bool>(), 0u32..5), 0..24),
        is_response in prop_oneof![4 => Just(true), 1 => Just(false)],
        rcode in prop_oneof![4 => Just(0u8), 1 => Just(3u8)],
    ) {
        let name = |i: usize| format!("n{i}.test");
        let m = DnsMessage {
            id: 1,
            is_response,
            opcode: 0,
            truncated: false,
            rcode,
            qdcount: questions.len() as u16,
            ancount: answers.len() as u16,
            nscount: 0,
            arcount: 0,
            questions: questions.iter().map(|&q| DnsQuestion { name: name(q), qtype: TYPE_A, qclass: 1 }).collect(),
            answers: answers
                .iter()
                .map(|&(owner, target, cname, ttl)| DnsAnswer {
                    name: name(owner),
                    rtype: if cname { TYPE_CNAME } else { TYPE_A },
                    ttl,
                    data: if cname {
                        DnsRecordData::Cname(name(target))
                    } else {
                        DnsRecordData::A(Ipv4Addr::new(10, 0, 0, target as u8))
                    },
                })
                .collect(),
            answers_other: 0,
            answers_dropped: 0,
            answers_incomplete: false,
        };
        let reference = resolutions_reference(&m);
        prop_assert_eq!(m.resolve_all(), reference.clone());
        prop_assert_eq!(m.resolutions().collect::<Vec<_>>(), reference.0);
        prop_assert_eq!(m.chains_cut(), reference.1);
    }

    /// `NameBuilder::bytes` leaves the builder exactly as `byte` for each byte does (names that
    /// reach and cross the limit included, from any starting length), in every mode.
    #[test]
    fn name_bytes_equals_byte_by_byte(
        chunks in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![4 => 0x21u8..0x7f, 1 => Just(b'.'), 1 => Just(b'\\'), 1 => any::<u8>()], 0..300),
            0..5,
        ),
        decimal in any::<bool>(),
        keep_case in any::<bool>(),
        in_dns_label in any::<bool>(),
    ) {
        let new = || {
            let b = NameBuilder::new(if decimal { Escape::Decimal } else { Escape::Hex });
            if keep_case { b.keep_case() } else { b }
        };
        let (mut bulk, mut each) = (new(), new());
        for chunk in &chunks {
            bulk.bytes(chunk, in_dns_label);
            for &c in chunk {
                each.byte(c, in_dns_label);
            }
            prop_assert_eq!(&bulk.out, &each.out);
            prop_assert_eq!((bulk.safe, bulk.cut), (each.safe, each.cut));
            bulk.dot();
            each.dot();
        }
        prop_assert_eq!(bulk.finish(), each.finish());
    }

    #[test]
    fn no_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), port in any::<u16>()) {
        if let Ok(m) = parse_message(&bytes) {
            prop_assert!(m.answers.len() <= DNS_ANSWERS_MAX);
            for n in m.questions.iter().map(|q| &q.name).chain(m.answers.iter().map(|a| &a.name)) {
                prop_assert!(n.chars().count() <= NAME_MAX_CHARS && !n.chars().any(char::is_control));
            }
            let _ = m.resolutions().count();
        }
        let _ = parse_client_hello(&bytes);
        let _ = parse_server_hello(&bytes);
        let _ = parse_dtls_client_hello(&bytes);
        if let Ok(r) = parse_request(&bytes) {
            if let Some(h) = r.host {
                prop_assert!(!h.chars().any(char::is_control));
            }
            prop_assert!(!r.target.chars().any(char::is_control));
        }
        let _ = parse_response_status(&bytes);
        let _ = classify(&bytes, Transport::Udp, (port, 53));
        let _ = classify(&bytes, Transport::Tcp, (port, 443));
        let mut s = TlsHandshakeState::new();
        s.observe(true, &bytes);
        let mut r = DnsTcpReassembler::new();
        r.push(&bytes, |m| { let _ = parse_message(m); });
        let name = clean_name(&bytes);
        prop_assert!(name.chars().count() <= NAME_MAX_CHARS && !name.chars().any(char::is_control));
    }

    #[test]
    fn random_bytes_after_a_valid_prefix(tail in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..2000) {
        let mut hello = standard_hello(0);
        hello.truncate(cut.min(hello.len()));
        hello.extend_from_slice(&tail);
        let _ = parse_client_hello(&hello);
        let mut b = DnsBuilder::response(2, 3);
        b.question("x.test", TYPE_A).question("y.test", TYPE_AAAA)
            .cname("x.test", 1, "y.test").a("y.test", 1, [1, 1, 1, 1]).a("x.test", 1, [2, 2, 2, 2]);
        let mut dns = b.bytes();
        dns.truncate(cut.min(dns.len()));
        dns.extend_from_slice(&tail);
        if let Ok(m) = parse_message(&dns) { let _ = m.resolutions().count(); }
    }

    #[test]
    fn dns_truncation_never_panics_and_prefix_answers_kept(cut in 0usize..400) {
        let mut b = DnsBuilder::response(1, 3);
        b.question("trunc.example.org", TYPE_A)
            .cname("trunc.example.org", 9, "cdn.example.org")
            .a("cdn.example.org", 9, [198, 51, 100, 1])
            .a("cdn.example.org", 9, [198, 51, 100, 2]);
        let full = b.bytes();
        let part = &full[..cut.min(full.len())];
        match parse_message(part) {
            Ok(m) => {
                prop_assert!(m.answers.len() <= 3);
                prop_assert!(m.answers_incomplete || part.len() == full.len());
            }
            Err(e) => prop_assert!(matches!(e, DnsError::Truncated(_))),
        }
    }

    #[test]
    fn assembler_any_order(seed in any::<u64>(), size in 50usize..1500, base in any::<u32>()) {
        let msg = client_hello_msg(Some(b"order.test"), &["h3"], &[0x0304], 1800, false);
        let stream = records(&msg, 700);
        let mut segs = segments(&stream, base, size);
        // A deterministic shuffle from the seed, plus one duplicate.
        let mut x = seed | 1;
        for i in (1..segs.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            segs.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let dup = segs[0].clone();
        segs.push(dup);
        let mut a = TlsHelloAssembler::new();
        let mut got = Vec::new();
        for (seq, data) in &segs {
            if let Some(r) = a.push(*seq, data) { got.push(r); }
        }
        prop_assert_eq!(got.len(), 1);
        let h = got.pop().unwrap().unwrap();
        prop_assert_eq!(h.sni.as_deref(), Some("order.test"));
    }

    #[test]
    fn dns_tcp_any_split(cuts in proptest::collection::vec(1usize..200, 1..20)) {
        let mut b = DnsBuilder::response(1, 1);
        b.question("split.test", TYPE_A).a("split.test", 5, [192, 0, 2, 9]);
        let msg = b.bytes();
        let mut framed = Vec::new();
        for _ in 0..4 {
            framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            framed.extend_from_slice(&msg);
        }
        let mut r = DnsTcpReassembler::new();
        let mut got = 0;
        let mut rest = &framed[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            r.push(&rest[..n], |m| { assert_eq!(m, &msg[..]); got += 1; });
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(got, 4);
    }
}

// ---------------------------------------------------------------------------------------------
// Real captures

struct Pkt {
    src: IpAddr,
    dst: IpAddr,
    transport: Transport,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: Vec<u8>,
}

fn capture(name: &str) -> Option<Vec<Pkt>> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps")
        .join(name);
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return None;
    }
    let mut replay = crate::capture::Replay::open(&[path]).unwrap();
    let mut dec = crate::decode::Decoder::new();
    let mut out = Vec::new();
    while let Ok(Some(frame)) = replay.next_frame() {
        let pppoe = strip_pppoe(frame.data);
        let frame = crate::capture::Frame {
            data: pppoe.as_deref().unwrap_or(frame.data),
            ..frame
        };
        if let Some(p) = dec.decode(&frame) {
            out.push(Pkt {
                src: p.src,
                dst: p.dst,
                transport: p.transport,
                sport: p.src_port,
                dport: p.dst_port,
                seq: p.seq,
                payload: p.payload.to_vec(),
            });
        }
    }
    Some(out)
}

/// The decoder does not read PPPoE (RFC 2516) yet, and ndpi_dns.pcap carries its whatsapp
/// answer in a PPPoE session over QinQ: rewrite such an Ethernet frame to plain IPv4 here.
fn strip_pppoe(data: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    while matches!(be16(data, at)?, 0x8100 | 0x88a8) {
        at += 4;
    }
    // Session stage (0x8864): ver/type, code, session id, length (6 bytes), then PPP protocol
    // 0x0021 (IPv4).
    if be16(data, at)? != 0x8864 || be16(data, at + 8)? != 0x0021 {
        return None;
    }
    let mut out = data.get(..at)?.to_vec();
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(data.get(at + 10..)?);
    Some(out)
}

/// What the parsers find in a capture: DNS (name, address), SNIs, HTTP hosts, and the
/// classification of each direction's first payload.
#[derive(Default, Debug)]
struct Findings {
    dns: BTreeSet<(String, IpAddr)>,
    sni: BTreeSet<String>,
    hellos: Vec<ClientHello>,
    http: BTreeSet<String>,
    protos: BTreeSet<&'static str>,
}

fn analyse(pkts: &[Pkt]) -> Findings {
    type Key = (IpAddr, u16, IpAddr, u16);
    let mut f = Findings::default();
    let mut hellos: HashMap<Key, TlsHelloAssembler> = HashMap::new();
    let mut tcp_dns: HashMap<Key, DnsTcpReassembler> = HashMap::new();
    let mut first_seen: BTreeSet<Key> = BTreeSet::new();
    for p in pkts {
        if p.payload.is_empty() {
            continue;
        }
        let key = (p.src, p.sport, p.dst, p.dport);
        let first = first_seen.insert(key);
        if first && let Some(proto) = classify(&p.payload, p.transport, (p.sport, p.dport)) {
            f.protos.insert(proto.as_str());
        }
        let mut take_dns = |msg: &[u8]| {
            if let Ok(m) = parse_message(msg) {
                for r in m.resolutions() {
                    f.dns.insert((r.query.to_owned(), r.addr));
                }
            }
        };
        match p.transport {
            Transport::Udp if p.sport == 53 => take_dns(&p.payload),
            Transport::Tcp if p.sport == 53 => {
                tcp_dns.entry(key).or_default().push(&p.payload, take_dns)
            }
            Transport::Tcp => {
                if first
                    && let Ok(r) = parse_request(&p.payload)
                    && let Some(h) = r.host
                {
                    f.http.insert(h);
                }
                if let Some(Ok(h)) = hellos.entry(key).or_default().push(p.seq, &p.payload) {
                    f.sni.extend(h.sni.clone());
                    f.hellos.push(h);
                }
            }
            _ => {}
        }
    }
    f
}

#[test]
fn capture_ndpi_android() {
    let Some(pkts) = capture("ndpi_android.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    eprintln!("android SNI: {:?}", f.sni);
    eprintln!(
        "android DNS names: {:?}",
        f.dns.iter().map(|d| &d.0).collect::<BTreeSet<_>>()
    );
    assert!(f.sni.contains("android.googleapis.com"), "{:?}", f.sni);
    // tshark 4.x on this file: 18 ClientHellos (one per TCP stream), 11 distinct SNIs, the
    // same set as here.
    assert_eq!(f.hellos.len(), 18);
    assert_eq!(f.sni.len(), 11);
    let datasaver = f
        .hellos
        .iter()
        .find(|h| h.sni.as_deref() == Some("datasaver.googleapis.com"))
        .unwrap();
    assert_eq!(datasaver.version, TlsVersion::Tls13);
    assert_eq!(datasaver.alpn, vec!["h2", "http/1.1"]);
    assert!(f.dns.iter().any(|(n, _)| n == "android.googleapis.com"));
    assert!(f.protos.contains("tls") && f.protos.contains("dns"));
}

#[test]
fn capture_zeek_wikipedia() {
    let Some(pkts) = capture("zeek_wikipedia.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    eprintln!("wikipedia: {f:?}");
    assert!(f.http.contains("www.wikipedia.org"), "{:?}", f.http);
    // The capture resolves the wikimedia hosts (through CNAME chains), not www.wikipedia.org.
    let upload: IpAddr = "208.80.152.3".parse().unwrap();
    assert!(
        f.dns.contains(&("upload.wikimedia.org".to_owned(), upload)),
        "{:?}",
        f.dns
    );
    let meta: IpAddr = "208.80.152.2".parse().unwrap();
    assert!(
        f.dns.contains(&("meta.wikimedia.org".to_owned(), meta)),
        "{:?}",
        f.dns
    );
    assert!(f.protos.contains("http"));
}

#[test]
fn capture_ndpi_xiaomi() {
    let Some(pkts) = capture("ndpi_xiaomi.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    eprintln!("xiaomi: {:?}", f.http);
    assert!(f.http.contains("203.107.1.65"), "{:?}", f.http);
}

#[test]
fn capture_zeek_tls_openjdk() {
    let Some(pkts) = capture("zeek_tls_openjdk-zeek.org_sll2.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    assert!(f.sni.contains("zeek.org"), "{:?}", f.sni);
}

#[test]
fn capture_ndpi_dns() {
    let Some(pkts) = capture("ndpi_dns.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    let whatsapp: BTreeSet<IpAddr> = f
        .dns
        .iter()
        .filter(|(n, _)| n == "e7.whatsapp.net")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(whatsapp.len(), 8, "{:?}", f.dns);
    assert!(whatsapp.iter().all(IpAddr::is_ipv4));
}

#[test]
fn every_shared_capture_parses_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} not found", dir.display());
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    for n in names {
        let Some(pkts) = capture(&n) else { continue };
        let _ = analyse(&pkts);
        for p in &pkts {
            let _ = parse_dtls_client_hello(&p.payload);
            let _ = parse_response_status(&p.payload);
        }
    }
}

#[test]
fn capture_quic_is_classified_by_content() {
    let Some(pkts) = capture("zeek_quic_curl-http3-www-google-de.pcap") else {
        return;
    };
    let f = analyse(&pkts);
    assert!(f.protos.contains("quic"), "{:?}", f.protos);
}
