//! VPN tunnels and equipment phone-home protocols (issue 8): generated captures of each VPN
//! handshake and each phone-home protocol judged with examples/policy.toml (the base-station
//! allow list and the foreign-VPN rule), and the real captures of the "re-routing set" in
//! ../shared/pcaps recognised as what they are, with goldens of their flow records.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use common::lab::{MS, T0, eth};
use common::{golden, run, write_pcap};
use egresswatch::capture::LinkType;
use egresswatch::craft::{self, proto as m, tcp_flags::*};
use serde_json::{Value, json};

/// The base station of examples/policy.toml, and a laptop with the default profile.
const BS: &str = "192.168.50.10";
const LAPTOP: &str = "192.168.1.77";
/// examples/policy.toml maps 198.18.4.0/24 to CN and 198.18.2.0/24 (the operator's NOC) to BE.
const COLLECTOR: &str = "198.18.2.10";
const TIME: &str = "198.18.2.123";

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the frames of a capture, one conversation after another, 100 ms apart.
struct Capture {
    frames: Vec<(i64, Vec<u8>)>,
    t: i64,
}

impl Capture {
    fn new() -> Capture {
        Capture {
            frames: Vec::new(),
            t: T0,
        }
    }

    fn push(&mut self, from_device: bool, ip: Vec<u8>) {
        self.frames.push((self.t, eth(from_device, ip)));
        self.t += MS;
    }

    /// Datagrams between `dev` and `remote`: (from the device?, payload) each.
    fn udp(&mut self, dev: SocketAddr, remote: SocketAddr, msgs: &[(bool, Vec<u8>)]) {
        for (out, payload) in msgs {
            let ip = if *out {
                craft::udp(dev, remote, payload)
            } else {
                craft::udp(remote, dev, payload)
            };
            self.push(*out, ip);
        }
        self.t += 100 * MS;
    }

    /// A TCP connection: handshake, then the segments (each acknowledged), then FINs.
    fn tcp(&mut self, dev: SocketAddr, remote: SocketAddr, msgs: &[(bool, Vec<u8>)]) {
        self.push(true, craft::tcp(dev, remote, SYN, b""));
        self.push(false, craft::tcp(remote, dev, SYN | ACK, b""));
        self.push(true, craft::tcp(dev, remote, ACK, b""));
        for (out, payload) in msgs {
            let ip = if *out {
                craft::tcp(dev, remote, PSH | ACK, payload)
            } else {
                craft::tcp(remote, dev, PSH | ACK, payload)
            };
            self.push(*out, ip);
        }
        self.push(true, craft::tcp(dev, remote, FIN | ACK, b""));
        self.push(false, craft::tcp(remote, dev, FIN | ACK, b""));
        self.t += 100 * MS;
    }

    /// Raw IP packets of protocol `proto`.
    fn ip(&mut self, dev: &str, remote: &str, proto: u8, msgs: &[(bool, Vec<u8>)]) {
        let (d, r): (IpAddr, IpAddr) = (dev.parse().unwrap(), remote.parse().unwrap());
        for (out, payload) in msgs {
            let ip = if *out {
                craft::ip(d, r, proto, payload)
            } else {
                craft::ip(r, d, proto, payload)
            };
            self.push(*out, ip);
        }
        self.t += 100 * MS;
    }
}

type Frames = Vec<(i64, Vec<u8>)>;
/// A flow the capture must give: remote, port, app_proto, encrypted.
type Expected = (&'static str, u16, &'static str, bool);

/// Every VPN handshake from the laptop to servers in NL, every phone-home protocol from the
/// base station; with what each flow must be recognised as: (remote, port, app_proto,
/// encrypted).
fn lab_capture() -> (Frames, Vec<Expected>) {
    let mut c = Capture::new();
    let mut want = Vec::new();
    // IKEv2 on 500: IKE_SA_INIT in the clear, then IKE_AUTH protected.
    c.udp(
        sa(LAPTOP, 500),
        sa("198.18.4.40", 500),
        &[
            (true, m::ike_sa_init(false)),
            (false, m::ike_sa_init(true)),
            (true, m::ike_auth(false, 300)),
            (false, m::ike_auth(true, 220)),
        ],
    );
    want.push(("198.18.4.40", 500, "ike", true));
    // IKE on the NAT-T port after the marker, then ESP on the same flow.
    c.udp(
        sa(LAPTOP, 4500),
        sa("198.18.4.41", 4500),
        &[
            (true, m::non_esp_marker(&m::ike_auth(false, 300))),
            (false, m::non_esp_marker(&m::ike_auth(true, 220))),
            (true, m::esp(0xc0ff_ee01, 1, 120)),
        ],
    );
    want.push(("198.18.4.41", 4500, "ike", true));
    // ESP in UDP alone (the IKE flow started before the capture).
    c.udp(
        sa(LAPTOP, 41000),
        sa("198.18.4.42", 4500),
        &[
            (true, m::esp(0xc0ff_ee02, 7, 120)),
            (false, m::esp(0x0bad_cafe, 9, 120)),
        ],
    );
    want.push(("198.18.4.42", 4500, "esp", true));
    // ESP as IP protocol 50.
    c.ip(
        LAPTOP,
        "198.18.4.43",
        50,
        &[(true, m::esp(0xc0ff_ee03, 1, 120))],
    );
    want.push(("198.18.4.43", 0, "esp", true));
    // WireGuard on a port that is not its usual one.
    c.udp(
        sa(LAPTOP, 43462),
        sa("198.18.4.44", 443),
        &[
            (true, m::wireguard(1, 0)),
            (false, m::wireguard(2, 0)),
            (true, m::wireguard(4, 0)),
            (true, m::wireguard(4, 1300)),
        ],
    );
    want.push(("198.18.4.44", 443, "wireguard", true));
    // OpenVPN over UDP and over TCP.
    c.udp(
        sa(LAPTOP, 60201),
        sa("198.18.4.45", 1194),
        &[
            (true, m::openvpn_hard_reset(false)),
            (false, m::openvpn_hard_reset(true)),
        ],
    );
    want.push(("198.18.4.45", 1194, "openvpn", true));
    c.tcp(
        sa(LAPTOP, 39772),
        sa("198.18.4.46", 443),
        &[
            (true, m::openvpn_tcp(&m::openvpn_hard_reset(false))),
            (false, m::openvpn_tcp(&m::openvpn_hard_reset(true))),
        ],
    );
    want.push(("198.18.4.46", 443, "openvpn", true));
    // Base station: syslog and an SNMP trap to the collector, NTP to its server (all allowed).
    c.udp(
        sa(BS, 514),
        sa(COLLECTOR, 514),
        &[(true, m::syslog(34, "cell 3 down"))],
    );
    want.push((COLLECTOR, 514, "syslog", false));
    c.udp(
        sa(BS, 50162),
        sa(COLLECTOR, 162),
        &[(true, m::snmp_v2c(1, "lab", 0xa7))],
    );
    want.push((COLLECTOR, 162, "snmp", false));
    c.udp(
        sa(BS, 50163),
        sa(COLLECTOR, 162),
        &[
            (true, m::snmp_v3(true, 0xa6)),
            (false, m::snmp_v3(true, 0xa2)),
        ],
    );
    want.push((COLLECTOR, 162, "snmp", true));
    let mut ntp_reply = m::ntp_client();
    ntp_reply[0] = 0x24;
    c.udp(
        sa(BS, 123),
        sa(TIME, 123),
        &[(true, m::ntp_client()), (false, ntp_reply)],
    );
    want.push((TIME, 123, "ntp", false));
    // Base station: syslog to a server in NL (wrong destination), then protocols it may not
    // use at all.
    c.udp(
        sa(BS, 514),
        sa("198.18.4.9", 514),
        &[(true, m::syslog(13, "hello"))],
    );
    want.push(("198.18.4.9", 514, "syslog", false));
    c.tcp(
        sa(BS, 41892),
        sa("198.18.4.30", 1883),
        &[
            (true, m::mqtt_connect("bs-01")),
            (false, vec![0x20, 2, 0, 0]),
        ],
    );
    want.push(("198.18.4.30", 1883, "mqtt", false));
    c.udp(
        sa(BS, 50683),
        sa("198.18.4.31", 5683),
        &[(true, m::coap_post("telemetry"))],
    );
    want.push(("198.18.4.31", 5683, "coap", false));
    c.tcp(
        sa(BS, 50547),
        sa("198.18.2.20", 80),
        &[
            (true, m::cwmp_inform("acs.operator.example")),
            (
                false,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ),
        ],
    );
    want.push(("198.18.2.20", 80, "cwmp", false));
    c.tcp(
        sa(BS, 50334),
        sa("198.18.2.21", 4334),
        &[
            (false, b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
            (true, b"SSH-2.0-netconf-bs\r\n".to_vec()),
        ],
    );
    want.push(("198.18.2.21", 4334, "netconf", true));
    (c.frames, want)
}

/// The fields of a flow record these tests compare.
fn flow_fields(f: &Value) -> Value {
    json!({
        "remote": f["remote"]["ip"],
        "port": f["remote"]["port"],
        "country": f["remote"]["country"],
        "transport": f["transport"],
        "app_proto": f["app_proto"],
        "encrypted": f["encrypted"],
        "bytes_out": f["bytes_out"],
        "bytes_in": f["bytes_in"],
        "alerts": f["alerts"],
    })
}

#[test]
fn generated_vpn_and_phone_home_flows_are_recognised_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("protocols.pcap");
    let (frames, want) = lab_capture();
    write_pcap(&pcap, LinkType::ETHERNET, &frames);
    let policy = root().join("examples/policy.toml");
    let r = run(&[
        "replay".as_ref(),
        pcap.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--json".as_ref(),
        "-".as_ref(),
        "--no-terminal".as_ref(),
        "--events".as_ref(),
        "alert,flow".as_ref(),
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let flows = r.events("flow");
    let mut got: BTreeMap<(String, u64), (String, bool)> = BTreeMap::new();
    for f in &flows {
        let key = (
            f["remote"]["ip"].as_str().unwrap().to_owned(),
            f["remote"]["port"].as_u64().unwrap_or(0),
        );
        let value = (
            f["app_proto"].as_str().unwrap_or("-").to_owned(),
            f["encrypted"].as_bool().unwrap_or(false),
        );
        // Two flows go to the collector's port 162: both SNMP, one with privacy.
        if got.insert(key.clone(), value.clone()).is_some() {
            assert_eq!(key, (COLLECTOR.to_owned(), 162));
        }
    }
    for (remote, port, proto, encrypted) in &want {
        let matching: Vec<&Value> = flows
            .iter()
            .filter(|f| {
                f["remote"]["ip"] == *remote
                    && f["remote"]["port"].as_u64().unwrap_or(0) == u64::from(*port)
            })
            .filter(|f| f["app_proto"] == *proto && f["encrypted"] == *encrypted)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{remote}:{port} should be one {proto} flow (encrypted {encrypted}); got {got:?}"
        );
    }
    assert_eq!(flows.len(), want.len());

    // The judgement: VPNs abroad alert, the base station's list holds.
    let alerts = r.events("alert");
    let rule_of = |remote: &str, port: u64| -> Vec<String> {
        alerts
            .iter()
            .filter(|a| {
                a["remote"]["ip"] == remote && a["remote"]["port"].as_u64().unwrap_or(0) == port
            })
            .map(|a| a["rule"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for vpn in 40..=46 {
        let remote = format!("198.18.4.{vpn}");
        let port = want.iter().find(|w| w.0 == remote).unwrap().1;
        assert_eq!(
            rule_of(&remote, u64::from(port)),
            ["foreign-vpn"],
            "{remote}"
        );
    }
    assert!(rule_of(COLLECTOR, 514).is_empty());
    assert!(rule_of(COLLECTOR, 162).is_empty());
    assert!(rule_of(TIME, 123).is_empty());
    assert_eq!(rule_of("198.18.4.9", 514), ["bs-wrong-destination"]);
    for (remote, port) in [
        ("198.18.4.30", 1883),
        ("198.18.4.31", 5683),
        ("198.18.2.20", 80),
        ("198.18.2.21", 4334),
    ] {
        assert_eq!(
            rule_of(remote, port),
            ["bs-other-protocol"],
            "{remote}:{port}"
        );
    }
    // A TCP flow is judged when its protocol is known, not at its SYN: the MQTT alert comes
    // from the CONNECT segment (the 4th packet of that connection).
    let mqtt = alerts
        .iter()
        .find(|a| a["remote"]["ip"] == "198.18.4.30")
        .unwrap();
    assert_eq!(mqtt["app_proto"], "mqtt");
    assert!(
        mqtt["rule"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("bs-01 sent mqtt to 198.18.4.30 in NL"),
        "{}",
        mqtt["rule"]["reason"]
    );
    let syn_packet = frames
        .iter()
        .position(|(_, f)| f.windows(4).any(|w| w == [198, 18, 4, 30]))
        .unwrap() as u64
        + 1;
    assert_eq!(mqtt["source"]["packet"].as_u64(), Some(syn_packet + 3));

    let mut records: Vec<Value> = flows.iter().map(flow_fields).collect();
    records.extend(alerts.iter().map(|a| {
        json!({
            "alert": a["rule"]["id"],
            "remote": a["remote"]["ip"],
            "app_proto": a["app_proto"],
            "reason": a["rule"]["reason"],
        })
    }));
    golden("protocols_generated", &records);
}

/// The re-routing set: capture, golden name, the protocol every flow with payload must be.
const REROUTING: &[(&str, &str, &str)] = &[
    ("ndpi_wireguard.pcap", "proto_wireguard", "wireguard"),
    ("ndpi_openvpn.pcap", "proto_openvpn", "openvpn"),
    ("tcpdump_ikev2four.pcap", "proto_ikev2", "ike"),
    ("tcpdump_espudp1.pcap", "proto_espudp", "esp"),
    ("ndpi_syslog.pcap", "proto_syslog", "syslog"),
    ("ndpi_snmp.pcap", "proto_snmp", "snmp"),
    ("ndpi_mqtt.pcap", "proto_mqtt", "mqtt"),
    ("ndpi_NTPv4.pcap", "proto_ntp", "ntp"),
];

#[test]
fn rerouting_captures_are_recognised_as_what_they_are() {
    if common::shared().is_none() {
        return;
    }
    for (file, golden_name, proto) in REROUTING {
        let r = common::replay_flows(&common::shared_capture(file).unwrap());
        let flows = r.events("flow");
        assert!(!flows.is_empty(), "{file}: no flows");
        let mut recognised = 0;
        for f in &flows {
            let payload = f["payload_bytes_out"].as_u64().unwrap_or(0)
                + f["payload_bytes_in"].as_u64().unwrap_or(0);
            if payload == 0 {
                // Only a TCP handshake (the syslog capture has one): nothing to recognise.
                assert!(f.get("app_proto").is_none(), "{file}: {f}");
                continue;
            }
            assert_eq!(f["app_proto"], *proto, "{file}: {f}");
            recognised += 1;
        }
        assert!(recognised > 0, "{file}");
        let records: Vec<Value> = flows
            .iter()
            .map(|f| {
                json!({
                    "device": f["device"]["ip"],
                    "remote": f["remote"]["ip"],
                    "port": f["remote"]["port"],
                    "transport": f["transport"],
                    "app_proto": f["app_proto"],
                    "encrypted": f["encrypted"],
                    "bytes_out": f["bytes_out"],
                    "bytes_in": f["bytes_in"],
                })
            })
            .collect();
        golden(golden_name, &records);
    }
}

/// The other shared captures: no flow turns into a VPN or an equipment protocol, except the
/// NTP flows on port 123 that three of them carry (and the ESP flow of the GTP capture).
#[test]
fn other_shared_captures_do_not_turn_into_new_protocols() {
    let Some(shared) = common::shared() else {
        return;
    };
    let rerouting: Vec<&str> = REROUTING.iter().map(|r| r.0).collect();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(shared.join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            (n.ends_with(".pcap") || n.ends_with(".pcapng")) && !rerouting.contains(&n)
        })
        .collect();
    entries.sort();
    let new = [
        "ike",
        "esp",
        "wireguard",
        "openvpn",
        "sstp",
        "anyconnect",
        "ntp",
        "syslog",
        "snmp",
        "netconf",
        "cwmp",
        "mqtt",
        "coap",
    ];
    let mut seen: Vec<String> = Vec::new();
    for path in entries {
        // Damaged captures too: their flows before the damage count.
        let r = common::flows_of(&path);
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        for f in r.events("flow") {
            let proto = f["app_proto"].as_str().unwrap_or_default();
            if new.contains(&proto) {
                let port = f["remote"]["port"].as_u64().unwrap_or(0);
                match proto {
                    "ntp" => assert_eq!(port, 123, "{name}: {f}"),
                    "esp" => assert_eq!(f["transport"], "ip-proto-50", "{name}: {f}"),
                    _ => panic!("{name}: a flow became {proto}: {f}"),
                }
                seen.push(format!("{name} {proto}"));
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "ndpi_android.pcap ntp",
            "ndpi_ipv6_in_gtp.pcap esp",
            "ndpi_wechat.pcap ntp",
            "sv_gre-sample.pcap ntp",
        ]
    );
}

/// A misspelt protocol is refused by `policy check` at its line and column, with a suggestion.
#[test]
fn policy_check_names_a_misspelt_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bs.toml");
    std::fs::write(
        &file,
        "[[rules]]\nid = \"bs\"\napp_protos = [\"syslog\", \"snmpv3\"]\n",
    )
    .unwrap();
    let r = run(&["policy".as_ref(), "check".as_ref(), file.as_os_str()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let want = format!(
        "{}:3:25: unknown protocol \"snmpv3\", did you mean \"snmp\"?",
        file.display()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}
