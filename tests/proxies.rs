//! Proxies, redirects and tunnels as `via`: generated captures through the real binary, with
//! golden output (tests/golden/proxy_*.jsonl; `EGRESSWATCH_BLESS=1` rewrites them for review),
//! and the shared SOCKS capture (skipped when ../shared is absent).
//!
//! Every proxied flow is judged on the destination the client named to the proxy: `remote` is
//! that destination, `via` the proxy. Lab addresses get their countries from the overrides of
//! tests/fixtures/proxy.toml.

mod common;

use std::net::IpAddr;

use common::lab::{CAMERA, MS, T0, eth, sa};
use common::{golden, normalise, of_type, run, write_pcap};
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, tcp_flags::*};
use serde_json::{Value, json};

const DEV: &str = "192.168.1.50";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection from `dev` to `remote` at `t`: handshake, the payloads in order (`true`:
/// from the device), and a FIN exchange; sequence numbers advance with the payload.
fn conversation(
    dev: &str,
    remote: &str,
    t: i64,
    payloads: &[(bool, &[u8])],
) -> Vec<(i64, Vec<u8>)> {
    let (d, r) = (sa(dev), sa(remote));
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut out = vec![
        (
            t,
            eth(true, craft::tcp_segment(d, r, cseq, 0, SYN, &[], b"")),
        ),
        (
            t + MS,
            eth(
                false,
                craft::tcp_segment(r, d, sseq, cseq + 1, SYN | ACK, &[], b""),
            ),
        ),
    ];
    cseq += 1;
    sseq += 1;
    out.push((
        t + 2 * MS,
        eth(true, craft::tcp_segment(d, r, cseq, sseq, ACK, &[], b"")),
    ));
    let mut at = t + 3 * MS;
    for (from_device, p) in payloads {
        let len = p.len() as u32;
        if *from_device {
            out.push((
                at,
                eth(
                    true,
                    craft::tcp_segment(d, r, cseq, sseq, PSH | ACK, &[], p),
                ),
            ));
            cseq += len;
        } else {
            out.push((
                at,
                eth(
                    false,
                    craft::tcp_segment(r, d, sseq, cseq, PSH | ACK, &[], p),
                ),
            ));
            sseq += len;
        }
        at += 10 * MS;
    }
    out.push((
        at,
        eth(
            true,
            craft::tcp_segment(d, r, cseq, sseq, FIN | ACK, &[], b""),
        ),
    ));
    out.push((
        at + MS,
        eth(
            false,
            craft::tcp_segment(r, d, sseq, cseq + 1, FIN | ACK, &[], b""),
        ),
    ));
    out
}

/// A DNS answer to the device at `t`: `name` → `addrs`.
fn dns(t: i64, name: &str, addrs: &[&str]) -> Vec<(i64, Vec<u8>)> {
    let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
    vec![(
        t,
        eth(
            false,
            craft::udp(
                sa("192.168.1.1:53"),
                sa(&format!("{DEV}:40000")),
                &craft::dns_response(7, name, &[], &addrs, 300),
            ),
        ),
    )]
}

/// A TLS ClientHello and the server's answer: the proxied stream.
fn tls_exchange(sni: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        craft::tls_client_hello(sni, 300),
        craft::tls_server_hello(),
        craft::tls_application_data(200),
    )
}

/// Replays `frames` with the proxy policy; events with temporary paths reduced to file names.
fn replay(name: &str, frames: &[(i64, Vec<u8>)]) -> (i32, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join(format!("{name}.pcap"));
    let mut frames = frames.to_vec();
    frames.sort_by_key(|f| f.0);
    write_pcap(&pcap, LinkType::ETHERNET, &frames);
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        common::fixture("proxy.toml").as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    let mut events = normalise(r.json());
    common::file_names(&mut events);
    (r.code, events)
}

/// The alerts as (rule, remote ip, remote host, remote country, via kind, via ip, via country).
fn alert_view(events: &[Value]) -> Vec<Value> {
    of_type(events, "alert")
        .into_iter()
        .map(|a| {
            json!([
                a["rule"]["id"],
                a["remote"]["ip"],
                a["remote"]["hostname"],
                a["remote"]["country"],
                a["via"]["kind"],
                a["via"]["ip"],
                a["via"]["country"],
            ])
        })
        .collect()
}

#[test]
fn http_connect_through_a_proxy_judges_the_named_host() {
    let (hello, server_hello, data) = tls_exchange("api.vendor.cn");
    let mut frames = dns(T0, "api.vendor.cn", &["198.18.1.20"]);
    frames.extend(conversation(
        "192.168.1.50:50000",
        "198.18.2.5:3128",
        T0 + 10 * MS,
        &[
            (
                true,
                b"CONNECT api.vendor.cn:443 HTTP/1.1\r\nHost: api.vendor.cn:443\r\n\r\n",
            ),
            (false, b"HTTP/1.1 200 Connection established\r\n\r\n"),
            (true, &hello),
            (false, &server_hello),
            (true, &data),
            (false, &data),
        ],
    ));
    let (code, events) = replay("proxy_http_connect", &frames);
    golden("proxy_http_connect", &events);
    assert_eq!(code, 1);
    assert_eq!(
        alert_view(&events),
        vec![json!([
            "no-cn",
            "198.18.1.20",
            "api.vendor.cn",
            "CN",
            "http-proxy",
            "198.18.2.5",
            "DE"
        ])]
    );
    let flow = of_type(&events, "flow")
        .into_iter()
        .find(|f| f["via"]["kind"] == "http-proxy")
        .unwrap();
    // The proxied stream is what the flow carried: TLS, encrypted.
    assert_eq!(
        (&flow["app_proto"], &flow["encrypted"]),
        (&json!("tls"), &json!(true))
    );
    assert_eq!(flow["remote"]["port"], 443);
    assert_eq!(flow["via"]["port"], 3128);
    assert_eq!(flow["remote"]["dns_query"], "api.vendor.cn");
}

#[test]
fn a_connect_challenged_with_407_is_granted_by_the_next_answer() {
    let (hello, server_hello, data) = tls_exchange("api.vendor.cn");
    let mut frames = dns(T0, "api.vendor.cn", &["198.18.1.20"]);
    frames.extend(conversation(
        "192.168.1.50:50001",
        "198.18.2.5:3128",
        T0 + 10 * MS,
        &[
            (
                true,
                b"CONNECT api.vendor.cn:443 HTTP/1.1\r\nHost: api.vendor.cn:443\r\n\r\n",
            ),
            (
                false,
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                true,
                b"CONNECT api.vendor.cn:443 HTTP/1.1\r\nHost: api.vendor.cn:443\r\nProxy-Authorization: Basic bGFiOmxhYg==\r\n\r\n",
            ),
            (false, b"HTTP/1.1 200 Connection established\r\n\r\n"),
            (true, &hello),
            (false, &server_hello),
            (true, &data),
            (false, &data),
        ],
    ));
    let (_, events) = replay("proxy_http_connect_407", &frames);
    let flow = of_type(&events, "flow")
        .into_iter()
        .find(|f| f["via"]["kind"] == "http-proxy")
        .unwrap();
    // The stream after the second answer is classified: TLS with its SNI, encrypted.
    assert_eq!(
        (&flow["app_proto"], &flow["encrypted"]),
        (&json!("tls"), &json!(true)),
        "{flow}"
    );
    assert_eq!(flow["remote"]["hostname_source"], "sni");
}

#[test]
fn absolute_form_through_a_local_proxy_is_egress_to_the_target() {
    let frames = conversation(
        "192.168.1.50:50001",
        "192.168.1.2:8080",
        T0,
        &[
            (
                true,
                b"GET http://198.18.1.30/fw.bin HTTP/1.1\r\nHost: 198.18.1.30\r\n\r\n",
            ),
            (false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    let (code, events) = replay("proxy_absolute_form", &frames);
    golden("proxy_absolute_form", &events);
    assert_eq!(code, 1);
    assert_eq!(
        alert_view(&events),
        vec![json!([
            "no-cn",
            "198.18.1.30",
            // The Host header names the address (as for a direct request).
            "198.18.1.30",
            "CN",
            "http-proxy",
            "192.168.1.2",
            null
        ])]
    );
    let flow = of_type(&events, "flow")[0];
    assert_eq!(
        flow["internal"], false,
        "a LAN proxy to a foreign host is egress"
    );
    assert_eq!(flow["remote"]["port"], 80);
    let summary = of_type(&events, "summary")[0];
    assert_eq!(summary["devices"][0]["countries"]["CN"]["flows"], 1);
}

#[test]
fn socks4_and_socks4a_targets() {
    let mut s4 = vec![4, 1, 0, 80, 198, 18, 1, 40];
    s4.extend_from_slice(b"cam\0");
    let mut s4a = vec![4, 1, 1, 187, 0, 0, 0, 1, 0];
    s4a.extend_from_slice(b"cdn.vendor.cn\0");
    let mut frames = conversation(
        "192.168.1.50:50010",
        "192.168.1.3:1080",
        T0,
        &[
            (true, &s4),
            (false, &[0, 90, 0, 0, 0, 0, 0, 0]),
            (true, b"GET / HTTP/1.1\r\nHost: 198.18.1.40\r\n\r\n"),
        ],
    );
    frames.extend(dns(T0 + 100 * MS, "cdn.vendor.cn", &["198.18.1.41"]));
    frames.extend(conversation(
        "192.168.1.50:50011",
        "192.168.1.3:1080",
        T0 + 200 * MS,
        &[(true, &s4a), (false, &[0, 90, 0, 0, 0, 0, 0, 0])],
    ));
    let (code, events) = replay("proxy_socks4", &frames);
    golden("proxy_socks4", &events);
    assert_eq!(code, 1);
    assert_eq!(
        alert_view(&events),
        vec![
            json!([
                "no-cn",
                "198.18.1.40",
                null,
                "CN",
                "socks4",
                "192.168.1.3",
                null
            ]),
            json!([
                "no-cn",
                "198.18.1.41",
                "cdn.vendor.cn",
                "CN",
                "socks4",
                "192.168.1.3",
                null
            ]),
        ]
    );
}

#[test]
fn socks5_with_a_domain_and_with_ipv6() {
    let mut domain = vec![5, 1, 0, 3, 13];
    domain.extend_from_slice(b"unresolved.cn");
    domain.extend_from_slice(&[1, 187]);
    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(
        &"2001:db8:86::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v6.extend_from_slice(&[1, 187]);
    let reply = [5, 0, 0, 1, 198, 18, 3, 9, 0, 80];
    let (hello, server_hello, _) = tls_exchange("unresolved.cn");
    let mut frames = conversation(
        "192.168.1.50:50020",
        "198.18.3.9:1080",
        T0,
        &[
            (true, &[5, 1, 0]),
            (false, &[5, 0]),
            (true, &domain),
            (false, &reply),
            (true, &hello),
            (false, &server_hello),
        ],
    );
    frames.extend(conversation(
        "192.168.1.50:50021",
        "198.18.3.9:1080",
        T0 + 200 * MS,
        &[
            (true, &[5, 1, 0]),
            (false, &[5, 0]),
            (true, &v6),
            (false, &reply),
        ],
    ));
    let (code, events) = replay("proxy_socks5", &frames);
    golden("proxy_socks5", &events);
    assert_eq!(code, 1);
    assert_eq!(
        alert_view(&events),
        vec![
            // At its first packet the flow is judged on the proxy itself (a US host): the
            // handshake has not named a target yet.
            json!([
                "camera-outside-eu",
                "198.18.3.9",
                null,
                "US",
                null,
                null,
                null
            ]),
            // Named only: no address, no country.
            json!([
                "proxied-unresolved",
                null,
                "unresolved.cn",
                null,
                "socks5",
                "198.18.3.9",
                "US"
            ]),
            json!([
                "no-cn",
                "2001:db8:86::7",
                null,
                "CN",
                "socks5",
                "198.18.3.9",
                "US"
            ]),
        ]
    );
    let first = of_type(&events, "flow")[0];
    assert!(first["remote"].get("ip").is_none(), "{first}");
    assert_eq!(first["remote"]["hostname_source"], "sni");
}

#[test]
fn a_redirect_chain_to_a_foreign_host_is_followed_hop_by_hop() {
    let mut frames = dns(T0, "a.example", &["198.18.2.10"]);
    frames.extend(conversation(
        "192.168.1.50:50030",
        "198.18.2.10:80",
        T0 + 10 * MS,
        &[
            (true, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            (false, b"HTTP/1.1 302 Found\r\nLocation: http://b.example/next\r\nContent-Length: 0\r\n\r\n"),
        ],
    ));
    frames.extend(dns(T0 + 200 * MS, "b.example", &["198.18.3.10"]));
    frames.extend(conversation(
        "192.168.1.50:50031",
        "198.18.3.10:80",
        T0 + 210 * MS,
        &[
            (true, b"GET /next HTTP/1.1\r\nHost: b.example\r\n\r\n"),
            (false, b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://198.18.1.50:8080/payload\r\n\r\n"),
        ],
    ));
    frames.extend(conversation(
        "192.168.1.50:50032",
        "198.18.1.50:8080",
        T0 + 400 * MS,
        &[(
            true,
            b"GET /payload HTTP/1.1\r\nHost: 198.18.1.50:8080\r\n\r\n",
        )],
    ));
    let (code, events) = replay("proxy_redirect_chain", &frames);
    golden("proxy_redirect_chain", &events);
    assert_eq!(code, 1);
    let flows = of_type(&events, "flow");
    let hops: Vec<Value> = flows
        .iter()
        .filter(|f| f["transport"] == "tcp")
        .map(|f| {
            json!([
                f["remote"]["ip"],
                f["redirect"]["status"],
                f["redirect"]["host"],
                f["redirect"]["ip"],
                f["redirect"]["country"]
            ])
        })
        .collect();
    assert_eq!(
        hops,
        vec![
            json!(["198.18.2.10", 302, "b.example", null, null]),
            json!(["198.18.3.10", 301, null, "198.18.1.50", "CN"]),
            json!(["198.18.1.50", null, null, null, null]),
        ]
    );
    let alerts = alert_view(&events);
    let to_cn = json!([
        "no-cn",
        "198.18.1.50",
        null,
        "CN",
        "redirect",
        "198.18.3.10",
        "US"
    ]);
    // Judged twice: when B answers the redirect (on B's flow, before anything was sent to C),
    // and on the flow that follows it, whose via is B as well.
    assert_eq!(
        alerts.iter().filter(|a| **a == to_cn).count(),
        2,
        "{alerts:?}"
    );
    // Each hop's flow names the server that sent the device there.
    let vias: Vec<Value> = flows
        .iter()
        .filter(|f| f["transport"] == "tcp")
        .map(|f| json!([f["remote"]["ip"], f["via"]["kind"], f["via"]["ip"]]))
        .collect();
    assert_eq!(
        vias,
        vec![
            json!(["198.18.2.10", null, null]),
            json!(["198.18.3.10", "redirect", "198.18.2.10"]),
            json!(["198.18.1.50", "redirect", "198.18.3.10"]),
        ]
    );
    let redirected = of_type(&events, "alert")
        .into_iter()
        .find(|a| a["rule"]["id"] == "no-cn")
        .unwrap();
    assert!(
        redirected["rule"]["reason"]
            .as_str()
            .unwrap()
            .ends_with(", redirected by 198.18.3.10 in US"),
        "{redirected}"
    );
    // A redirect to the same host (http → https) is no re-routing.
    let frames = conversation(
        "192.168.1.50:50033",
        "198.18.2.10:80",
        T0,
        &[
            (true, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            (
                false,
                b"HTTP/1.1 301 Moved\r\nLocation: https://a.example/\r\n\r\n",
            ),
        ],
    );
    let (_, events) = replay("proxy_redirect_same_host", &frames);
    assert!(of_type(&events, "flow")[0].get("redirect").is_none());
}

#[test]
fn a_gre_tunnel_to_a_foreign_endpoint_names_both_ends() {
    // The device 10.8.0.2 inside a GRE tunnel from 192.168.1.50 to 198.18.1.250 (CN).
    let (outer_dev, outer_far) = (ip("192.168.1.50"), ip("198.18.1.250"));
    let mut frames = Vec::new();
    for (i, remote) in ["198.18.2.20:443", "198.18.1.10:443"].iter().enumerate() {
        let t = T0 + i as i64 * 100 * MS;
        for (at, inner) in conversation(
            &format!("10.8.0.2:5000{i}"),
            remote,
            t,
            &[(true, &[0x16; 100])],
        ) {
            // Strip the Ethernet header the helper added: the inner IP packet travels in GRE.
            let from_device = inner[6..12] == CAMERA.0;
            let packet = inner[14..].to_vec();
            let (s, d) = if from_device {
                (outer_dev, outer_far)
            } else {
                (outer_far, outer_dev)
            };
            frames.push((at, eth(from_device, craft::gre_ip(s, d, &packet))));
        }
    }
    let (code, events) = replay("proxy_gre_foreign", &frames);
    golden("proxy_gre_foreign", &events);
    assert_eq!(code, 1);
    assert_eq!(
        alert_view(&events),
        vec![
            json!([
                "foreign-tunnel",
                "198.18.2.20",
                null,
                "DE",
                "gre",
                "198.18.1.250",
                "CN"
            ]),
            json!([
                "no-cn",
                "198.18.1.10",
                null,
                "CN",
                "gre",
                "198.18.1.250",
                "CN"
            ]),
        ]
    );
    let a = of_type(&events, "alert")[0];
    assert!(
        a["rule"]["reason"]
            .as_str()
            .unwrap()
            .contains("via gre 198.18.1.250 in CN"),
        "{a}"
    );
}

/// The re-routing set's SOCKS capture: SOCKS4, SOCKS4a and SOCKS5 through a proxy on the local
/// network, and SOCKS5 with a domain; every proxied flow is judged on its target.
#[test]
fn shared_socks_capture() {
    let Some(shared) = common::shared() else {
        return;
    };
    let path = shared.join("pcaps/ndpi_socks.pcap");
    let r = run(&[
        "replay".as_ref(),
        path.as_os_str(),
        "--policy".as_ref(),
        common::fixture("proxy.toml").as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
    ]);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    let events = r.json();
    let view: Vec<Value> = events
        .iter()
        .filter(|e| e["event_type"] == "flow" || e["event_type"] == "alert")
        .map(|e| {
            json!({
                "event_type": e["event_type"],
                "rule": e["rule"]["id"],
                "device": e["device"]["ip"],
                "remote": e["remote"],
                "via": e["via"],
                "app_proto": e["app_proto"],
                "internal": e["internal"],
            })
        })
        .collect();
    golden("proxy_ndpi_socks", &view);
    let via: Vec<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .filter_map(|e| e["via"]["kind"].as_str())
        .collect();
    assert_eq!(via.iter().filter(|k| **k == "socks4").count(), 2, "{via:?}");
    assert_eq!(via.iter().filter(|k| **k == "socks5").count(), 2, "{via:?}");
}

/// Some clients address the origin server itself in absolute form: that is no proxy unless the
/// capture shows the target elsewhere.
#[test]
fn absolute_form_to_the_origin_server_is_not_a_proxy() {
    let request: &[u8] =
        b"POST http://short.vendor.cn/report HTTP/1.1\r\nHost: short.vendor.cn\r\n\r\n";
    // No DNS answer for the name: the server is taken as the origin.
    let frames = conversation(
        "192.168.1.50:50040",
        "198.18.1.60:80",
        T0,
        &[(true, request)],
    );
    let (_, events) = replay("proxy_absolute_origin", &frames);
    let flow = of_type(&events, "flow")[0];
    assert!(flow.get("via").is_none(), "{flow}");
    assert_eq!(flow["remote"]["ip"], "198.18.1.60");
    assert_eq!(flow["remote"]["hostname_source"], "http");
    // The name resolves to the remote: the origin again.
    let mut frames = dns(T0, "short.vendor.cn", &["198.18.1.60"]);
    frames.extend(conversation(
        "192.168.1.50:50041",
        "198.18.1.60:80",
        T0 + 10 * MS,
        &[(true, request)],
    ));
    let (_, events) = replay("proxy_absolute_origin_dns", &frames);
    let flow = of_type(&events, "flow")
        .into_iter()
        .find(|f| f["transport"] == "tcp")
        .unwrap();
    assert!(flow.get("via").is_none(), "{flow}");
    // The name resolves elsewhere: the remote is a proxy, the target judged.
    let mut frames = dns(T0, "short.vendor.cn", &["198.18.1.61"]);
    frames.extend(conversation(
        "192.168.1.50:50042",
        "198.18.2.60:80",
        T0 + 10 * MS,
        &[(true, request)],
    ));
    let (_, events) = replay("proxy_absolute_elsewhere", &frames);
    let flow = of_type(&events, "flow")
        .into_iter()
        .find(|f| f["transport"] == "tcp")
        .unwrap();
    assert_eq!(flow["via"]["kind"], "http-proxy", "{flow}");
    assert_eq!(flow["via"]["ip"], "198.18.2.60");
    assert_eq!(flow["remote"]["ip"], "198.18.1.61");
    assert_eq!(flow["remote"]["country"], "CN");
}

/// The terminal view shows the hop too, with its country, and a target without an address as `?`.
#[test]
fn terminal_view_shows_via() {
    let mut domain = vec![5, 1, 0, 3, 13];
    domain.extend_from_slice(b"unresolved.cn");
    domain.extend_from_slice(&[1, 187]);
    let frames = conversation(
        "192.168.1.50:50050",
        "198.18.3.9:1080",
        T0,
        &[(true, &[5, 1, 0]), (false, &[5, 0]), (true, &domain)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("proxy_terminal.pcap");
    write_pcap(&pcap, LinkType::ETHERNET, &frames);
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        common::fixture("proxy.toml").as_os_str(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let text = format!("{}{}", r.stdout, r.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("proxied-unresolved"))
        .unwrap_or_else(|| panic!("no alert line: {text}"));
    assert!(line.contains("?:443/tcp (unresolved.cn)"), "{line}");
    assert!(line.contains("via socks5 198.18.3.9 US"), "{line}");
}
