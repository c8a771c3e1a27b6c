//! Tests of loading, validation messages, evaluation and command-line rules.

use super::*;

use std::net::{Ipv4Addr, Ipv6Addr};

fn err(text: &str) -> String {
    match Policy::from_toml(text, "p.toml") {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn load(text: &str) -> Policy {
    match Policy::from_toml(text, "p.toml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn cc(code: &str) -> Option<CountryCode> {
    CountryCode::new(code)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A TCP flow from 192.168.1.50 to 203.0.113.9:443 with no country, no ASN, no name, no
/// payload seen yet and nothing known about DNS.
pub(super) fn flow() -> Subject<'static> {
    Subject::bare(
        v4(192, 168, 1, 50),
        v4(203, 0, 113, 9),
        Some(443),
        Transport::Tcp,
    )
}

fn to(country: &str) -> Subject<'static> {
    Subject {
        country: cc(country),
        ..flow()
    }
}

/// The id of the deciding rule.
fn decide<'p>(p: &'p Policy, s: &Subject<'_>) -> Option<&'p str> {
    p.evaluate(s)
        .and_then(|i| p.rules().get(i))
        .map(|r| r.id.as_str())
}

// ---- syntax and structure -------------------------------------------------------------------

#[test]
fn toml_syntax_error_first_line_at_span() {
    let e = err("version = 1\nname = \n");
    assert!(e.starts_with("p.toml:2:8: "), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn unknown_keys_list_the_allowed_ones() {
    assert_eq!(
        err("version = 1\nfoo = 2\n"),
        "p.toml:2:1: unknown key `foo`; the keys allowed here are `version`, `name`, `home`, \
         `local_networks`, `dedup_window`, `plaintext_foreign`, `plaintext_foreign_severity`, \
         `groups`, `devices`, `geoip_overrides`, `operators`, `include_operators`, \
         `deny_operators`, `rules`, `resolvers`"
    );
    assert_eq!(
        err("[[devices]]\nname = \"a\"\nip = \"10.0.0.1\"\nvlan = 3\n"),
        "p.toml:4:1: unknown key `vlan`; the keys allowed here are `name`, `ip`, `cidr`, `mac`, `profile`"
    );
    assert!(err("[[rules]]\nid = \"a\"\ncountry = [\"CN\"]\n").starts_with(
        "p.toml:3:1: unknown key `country`; the keys allowed here are `id`, `action`, `severity`"
    ));
}

#[test]
fn duplicate_key() {
    assert_eq!(
        err("name = \"a\"\nname = \"b\"\n"),
        "p.toml:2:1: duplicate key name: each key may appear only once in a table"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nseverity = 3\n"),
        "p.toml:3:12: invalid type: integer `3`, expected a string"
    );
    assert_eq!(
        err("home = \"BE\"\n"),
        "p.toml:1:8: invalid type: string \"BE\", expected a list such as [\"a\", \"b\"]"
    );
}

#[test]
fn version() {
    assert_eq!(err("version = 1\n"), "ok");
    assert_eq!(
        err("\nversion = 2\n"),
        "p.toml:2:11: unsupported policy version 2: this egresswatch reads version 1"
    );
}

#[test]
fn size_cap() {
    let big = format!("# {}\n", "x".repeat(POLICY_MAX_BYTES));
    let e = err(&big);
    assert_eq!(
        e,
        format!(
            "p.toml:0:0: policy is {} bytes, more than the limit of 1048576 bytes (1 MiB): split it or remove unused rules",
            big.len()
        )
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 10_000;
    let text = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let e = err(&text);
    assert!(e.starts_with("p.toml:1:"), "{e}");
    let inline = format!("x = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth));
    assert!(err(&inline).starts_with("p.toml:1:"));
}

// ---- values ---------------------------------------------------------------------------------

#[test]
fn duplicate_rule_id() {
    let text = "[[rules]]\nid = \"a\"\n[[rules]]\nid = \"a\"\n";
    assert_eq!(
        err(text),
        "p.toml:4:6: duplicate rule id \"a\": it is already used at line 2, column 6; rule ids must be unique"
    );
}

#[test]
fn rule_ids() {
    assert_eq!(
        err("[[rules]]\nid = \"no cn\"\n"),
        "p.toml:2:6: rule id \"no cn\" contains ' ': use only letters, digits, '-', '_' and '.'"
    );
    assert_eq!(
        err("[[rules]]\nid = \"cli-x\"\n"),
        "p.toml:2:6: rule ids starting with \"cli-\" are reserved for command-line rules: rename it"
    );
    assert_eq!(
        err("[[rules]]\nseverity = \"low\"\n"),
        "p.toml:1:1: rule has no id: add id = \"...\" to this [[rules]] entry"
    );
}

#[test]
fn addresses() {
    assert_eq!(
        err("local_networks = [\"10.0.0.0/33\"]\n"),
        "p.toml:1:19: invalid CIDR \"10.0.0.0/33\": write an address and a prefix length, such as \"192.0.2.0/24\" or \"2001:db8::/32\""
    );
    assert_eq!(
        err("[[rules]]\nid = \"a\"\ncidrs = [\"192.0.2.5/24\"]\n"),
        "p.toml:3:10: CIDR \"192.0.2.5/24\" has host bits set: did you mean \"192.0.2.0/24\"?"
    );
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nnot_cidrs = [\"nope\"]\n"),
        "p.toml:3:14: invalid IP address or CIDR \"nope\": write \"192.0.2.7\", \"192.0.2.0/24\" or \"2001:db8::/32\""
    );
    assert_eq!(
        err("[[devices]]\nname = \"cam\"\nip = \"192.168.1.300\"\n"),
        "p.toml:3:6: invalid IP address \"192.168.1.300\": write \"192.168.1.50\" or \"fd00::50\" (use cidr = \"...\" for a network)"
    );
    assert_eq!(
        err("[[devices]]\nname = \"cam\"\nmac = \"aa:bb:cc\"\n"),
        "p.toml:3:7: invalid MAC address \"aa:bb:cc\": expected six hex pairs like aa:bb:cc:dd:ee:ff"
    );
}

#[test]
fn device_needs_exactly_one_selector() {
    assert_eq!(
        err("[[devices]]\nname = \"cam\"\n"),
        "p.toml:1:1: device \"cam\" has none of ip, cidr and mac: give exactly one"
    );
    assert_eq!(
        err("x = 1\n"
            .replace(
                "x = 1\n",
                "[[devices]]\nname = \"cam\"\nip = \"10.0.0.1\"\nmac = \"aa:bb:cc:dd:ee:ff\"\n"
            )
            .as_str()),
        "p.toml:1:1: device \"cam\" has several of ip, cidr and mac: give exactly one"
    );
    assert_eq!(
        err("[[devices]]\nip = \"10.0.0.1\"\n"),
        "p.toml:1:1: device has no name: add name = \"...\" to this [[devices]] entry"
    );
}

#[test]
fn unknown_countries_get_suggestions() {
    let rule = |c: &str| {
        err(&format!(
            "[[rules]]\nid = \"a\"\ncountries = [\"CN\", \"{c}\"]\n"
        ))
    };
    assert_eq!(
        rule("UK"),
        "p.toml:3:20: unknown country \"UK\", did you mean \"GB\"?"
    );
    assert_eq!(
        rule("EL"),
        "p.toml:3:20: unknown country \"EL\", did you mean \"GR\"?"
    );
    assert_eq!(
        rule("uk"),
        "p.toml:3:20: unknown country \"uk\", did you mean \"GB\"?"
    );
    assert_eq!(rule("cn"), "ok");
    assert_eq!(
        rule("China"),
        "p.toml:3:20: unknown country \"China\", did you mean \"CN\"? (countries are ISO 3166-1 alpha-2 codes)"
    );
    assert_eq!(
        rule("Germny"),
        "p.toml:3:20: unknown country \"Germny\", did you mean \"DE\"? (countries are ISO 3166-1 alpha-2 codes)"
    );
    assert_eq!(
        rule("XX"),
        "p.toml:3:20: unknown country \"XX\": use an ISO 3166-1 alpha-2 code (see https://www.iso.org/obp/ui/#search/code/) or a group"
    );
    assert_eq!(
        rule("EB"),
        "p.toml:3:20: unknown country \"EB\", did you mean \"BE\"?"
    );
    assert_eq!(
        rule("QQ"),
        "p.toml:3:20: unknown country \"QQ\": use an ISO 3166-1 alpha-2 code (see https://www.iso.org/obp/ui/#search/code/) or a group"
    );
    assert_eq!(
        rule("nordics"),
        "p.toml:3:20: unknown group \"nordics\": define it under [groups], or use EU, EEA, home or an ISO 3166-1 alpha-2 country code"
    );
    assert_eq!(rule("XK"), "ok");
    assert_eq!(
        err("home = [\"UK\"]\n"),
        "p.toml:1:9: unknown country \"UK\", did you mean \"GB\"?"
    );
}

#[test]
fn groups_resolve_and_nest() {
    let p = load(
        "home = [\"nordics\"]\n[groups]\nscandinavia = [\"dk\", \"NO\", \"SE\"]\nnordics = [\"scandinavia\", \"FI\", \"IS\"]\n\
         [[rules]]\nid = \"a\"\ncountries = [\"home\"]\n",
    );
    let home: Vec<String> = p.home().iter().map(ToString::to_string).collect();
    assert_eq!(home, ["DK", "FI", "IS", "NO", "SE"]);
    assert!(p.is_home(CountryCode::new("FI").unwrap()));
    assert_eq!(decide(&p, &to("DK")), Some("a"));
    assert_eq!(decide(&p, &to("DE")), None);
}

#[test]
fn group_errors() {
    assert_eq!(
        err("[groups]\na1 = [\"b1\"]\nb1 = [\"c1\"]\nc1 = [\"A1\"]\n"),
        "p.toml:4:7: group cycle: a1 → b1 → c1 → A1; a group may not contain itself, directly or through other groups"
    );
    assert_eq!(
        err("[groups]\nself = [\"BE\", \"self\"]\n"),
        "p.toml:2:15: group cycle: self → self; a group may not contain itself, directly or through other groups"
    );
    assert_eq!(
        err("[groups]\nEU = [\"BE\"]\n"),
        "p.toml:2:1: \"EU\" is a built-in group and cannot be redefined: choose another name"
    );
    assert_eq!(
        err("[groups]\nxy = [\"BE\"]\n"),
        "p.toml:2:1: group name \"xy\" looks like a country code: use a name of three or more characters"
    );
    assert_eq!(
        err("[groups]\nempty = []\n"),
        "p.toml:2:9: group \"empty\" is empty: list at least one country code or group"
    );
    assert_eq!(
        err("[groups]\nmine = [\"home\"]\n"),
        "p.toml:2:9: \"home\" cannot be used inside a group: use it directly in a rule's countries or not_countries"
    );
    assert_eq!(
        err("[groups]\nmine = [\"BE\", \"UK\"]\n"),
        "p.toml:2:15: unknown country \"UK\", did you mean \"GB\"?"
    );
}

#[test]
fn deep_group_chain_is_refused_not_overflowed() {
    let mut text = String::from("[groups]\n");
    for i in 0..5_000 {
        text.push_str(&format!("g{i} = [\"g{}\"]\n", i + 1));
    }
    text.push_str("g5000 = [\"BE\"]\n");
    let e = err(&text);
    assert!(e.contains("groups nest more than 64 deep"), "{e}");
}

#[test]
fn rule_value_errors() {
    let rule = |line: &str| err(&format!("[[rules]]\nid = \"a\"\n{line}\n"));
    assert_eq!(
        rule("severity = \"urgent\""),
        "p.toml:3:12: unknown severity \"urgent\": use info, low, medium, high or critical"
    );
    assert_eq!(
        rule("action = \"deny\""),
        "p.toml:3:10: unknown action \"deny\": use \"alert\" or \"allow\""
    );
    assert_eq!(
        rule("transports = [\"tcp\", \"sctp\"]"),
        "p.toml:3:22: unknown transport \"sctp\": use tcp, udp, icmp, icmpv6 or ip-proto-N"
    );
    assert_eq!(
        rule("ports = [70000]"),
        "p.toml:3:10: port 70000 is out of range: write a port such as 443 or an inclusive range such as \"8000-8100\"; ports are 0-65535"
    );
    assert_eq!(
        rule("ports = [\"9000-8000\"]"),
        "p.toml:3:10: port range \"9000-8000\" is reversed: write the lower port first, as in \"8000-9000\""
    );
    assert_eq!(
        rule("not_ports = [\"http\"]"),
        "p.toml:3:14: invalid port \"http\": write a port such as 443 or an inclusive range such as \"8000-8100\"; ports are 0-65535"
    );
    assert_eq!(
        rule("asns = [-1]"),
        "p.toml:3:9: ASN -1 is out of range: AS numbers are 0 to 4294967295 (RFC 6793)"
    );
    assert_eq!(
        rule("countries = []"),
        "p.toml:3:13: countries is an empty list, which never matches: add entries or remove the key"
    );
    assert_eq!(
        rule("profiles = [\"camra\"]"),
        "p.toml:3:13: unknown profile \"camra\": no device has it; the profiles are default"
    );
}

#[test]
fn reason_placeholders() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nreason = \"{device} to {remote} via {proto}\"\n"),
        "p.toml:3:36: unknown placeholder {proto} in reason: use {device}, {device_ip}, {remote}, \
         {port}, {transport}, {country}, {asn}, {as_org}, {rule}, {hostname}, {bytes_out}, {app_proto}, {via}; write {{ or }} for a literal brace"
    );
    assert!(
        err("[[rules]]\nid = \"a\"\nreason = \"oops {device\"\n")
            .starts_with("p.toml:3:16: unclosed '{' in reason")
    );
    // Escapes before the placeholder: found by its text instead.
    assert!(
        err("[[rules]]\nid = \"a\"\nreason = \"\\u00e9 {bad}\"\n")
            .starts_with("p.toml:3:18: unknown placeholder {bad}")
    );
    // Multi-line strings.
    assert!(
        err("[[rules]]\nid = \"a\"\nreason = \"\"\"x {bad}\"\"\"\n")
            .starts_with("p.toml:3:15: unknown placeholder {bad}")
    );
}

#[test]
fn home_while_empty() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nnot_countries = [\"EU\", \"home\"]\n"),
        "p.toml:3:24: \"home\" names the home country set, which is empty: set home = [\"BE\"] at the top of the policy or pass --home BE"
    );
}

#[test]
fn unknown_country_with_country_lists() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\ncountries = [\"CN\"]\nunknown_country = true\n"),
        "p.toml:4:19: unknown_country cannot be combined with countries or not_countries (those never match a remote without a country): write a separate rule"
    );
}

#[test]
fn overrides() {
    let p = load(
        "[[geoip_overrides]]\ncidr = \"198.18.0.0/24\"\ncountry = \"cn\"\nasn = 4134\nas_org = \"Lab\"\n",
    );
    let o = &p.overrides()[0];
    assert_eq!(o.net.to_string(), "198.18.0.0/24");
    assert_eq!(o.country, cc("CN"));
    assert_eq!((o.asn, o.as_org.as_deref()), (Some(4134), Some("Lab")));
    assert_eq!(
        err("[[geoip_overrides]]\ncidr = \"198.18.0.0/24\"\n"),
        "p.toml:1:1: geoip override sets nothing: give country, asn or as_org"
    );
    assert_eq!(
        err("[[geoip_overrides]]\ncidr = \"198.18.0.0/24\"\ncountry = \"EU\"\n"),
        "p.toml:3:11: a geoip override needs one country code, not the group \"EU\""
    );
}

#[test]
fn dedup_window() {
    let ns = |v: &str| load(&format!("dedup_window = {v}\n")).dedup_window_ns();
    assert_eq!(load("").dedup_window_ns(), 60_000_000_000);
    assert_eq!(ns("\"500ms\""), 500_000_000);
    assert_eq!(ns("\"60s\""), 60_000_000_000);
    assert_eq!(ns("\"5m\""), 300_000_000_000);
    assert_eq!(ns("\"1h\""), 3_600_000_000_000);
    assert_eq!(ns("90"), 90_000_000_000);
    assert_eq!(
        err("dedup_window = \"5 minutes\"\n"),
        "p.toml:1:16: invalid duration \"5 minutes\": use a number with a unit, such as \"500ms\", \"60s\", \"5m\" or \"1h\", or an integer number of seconds"
    );
    assert_eq!(
        err("dedup_window = 9223372036854775807\n"),
        "p.toml:1:16: dedup_window is too long: the most is 168h"
    );
}

#[test]
fn columns_count_characters() {
    // "é" is two bytes but one column.
    assert_eq!(
        err("name = \"é\" # é\nhome = [\"ZZ\"]\n"),
        "p.toml:2:9: unknown country \"ZZ\": use an ISO 3166-1 alpha-2 code (see https://www.iso.org/obp/ui/#search/code/) or a group"
    );
    assert!(err("reason_é = 1\n").starts_with("p.toml:1:"));
    assert_eq!(
        err("[[rules]]\nid = \"é\"\n"),
        "p.toml:2:6: rule id \"é\" contains 'é': use only letters, digits, '-', '_' and '.'"
    );
}

// ---- networks and devices -------------------------------------------------------------------

#[test]
fn local_networks_default_and_replaced() {
    let p = Policy::empty();
    let nets: Vec<String> = p.local_networks().iter().map(ToString::to_string).collect();
    assert_eq!(
        nets,
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "fc00::/7",
            "fe80::/10",
            "::1/128"
        ]
    );
    assert!(p.is_local(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    let p = load("local_networks = [\"192.168.0.0/16\", \"2001:db8::1\"]\n");
    assert_eq!(p.local_networks().len(), 2);
    assert!(!p.is_local(v4(10, 1, 1, 1)));
    assert!(p.is_local("2001:db8::1".parse().unwrap()));
}

#[test]
fn device_lookup() {
    let p = load(
        "[[devices]]\nname = \"cam\"\nip = \"192.168.1.50\"\nprofile = \"camera\"\n\
         [[devices]]\nname = \"lab\"\ncidr = \"192.168.1.0/24\"\n\
         [[devices]]\nname = \"tv\"\nmac = \"AA-BB-CC-DD-EE-FF\"\nprofile = \"tv\"\n",
    );
    let mac: Mac = "aa:bb:cc:dd:ee:ff".parse().unwrap();
    let name = |ip, mac| p.device(ip, mac).map(|d| d.name.as_str());
    assert_eq!(name(v4(192, 168, 1, 50), None), Some("cam"));
    assert_eq!(name(v4(192, 168, 1, 51), Some(mac)), Some("lab"));
    assert_eq!(name(v4(10, 0, 0, 9), Some(mac)), Some("tv"));
    assert_eq!(name(v4(10, 0, 0, 9), None), None);
    assert_eq!(
        p.device(v4(192, 168, 1, 7), None)
            .map(|d| d.profile.as_str()),
        Some("default")
    );
    assert_eq!(p.devices().len(), 3);
    assert_eq!(
        err(
            "[[devices]]\nname = \"a\"\nip = \"10.0.0.1\"\n[[devices]]\nname = \"a\"\nip = \"10.0.0.2\"\n"
        ),
        "p.toml:5:8: duplicate device name \"a\": device names must be unique"
    );
}

// ---- evaluation -----------------------------------------------------------------------------

const TABLE: &str = r#"
home = ["BE"]
[[devices]]
name = "cam"
ip = "192.168.1.50"
profile = "camera"

[[rules]]
id = "allow-lab-asn"
action = "allow"
asns = [64500]

[[rules]]
id = "cam-cn"
profiles = ["camera"]
countries = ["CN"]
severity = "critical"

[[rules]]
id = "dns-anywhere"
action = "allow"
transports = ["udp"]
ports = [53]

[[rules]]
id = "web-out-of-eu"
not_countries = ["EU", "home"]
ports = [80, 443, "8000-8100"]
transports = ["tcp"]

[[rules]]
id = "odd-ports"
not_ports = [80, 443, "1-1023"]
not_cidrs = ["203.0.113.0/24"]

[[rules]]
id = "bad-net"
cidrs = ["198.51.100.0/24", "2001:db8::/32"]
not_asns = [13335]

[[rules]]
id = "icmp"
transports = ["icmp", "ip-proto-47"]
"#;

#[test]
fn evaluation_truth_table() {
    let p = load(TABLE);
    let dev = p.device(v4(192, 168, 1, 50), None);
    assert!(dev.is_some());
    let cam = |s: Subject<'static>| Subject { device: dev, ..s };

    // Allow short-circuits: the lab ASN is allowed even from the camera to CN.
    let s = Subject {
        asn: Some(64500),
        ..cam(to("CN"))
    };
    assert_eq!(decide(&p, &s), Some("allow-lab-asn"));
    assert_eq!(p.alert(&s), None);
    // Profiles: the camera to CN alerts; an unnamed device to CN on 443 is outside EU.
    assert_eq!(decide(&p, &cam(to("CN"))), Some("cam-cn"));
    assert_eq!(p.alert(&cam(to("CN"))), Some(1));
    assert_eq!(decide(&p, &to("CN")), Some("web-out-of-eu"));
    // First match: the camera to US on 443 is also outside the EU.
    assert_eq!(decide(&p, &cam(to("US"))), Some("web-out-of-eu"));
    // not_countries: home and EU are fine, unknown country never matches.
    assert_eq!(decide(&p, &to("BE")), None);
    assert_eq!(decide(&p, &to("DE")), None);
    assert_eq!(decide(&p, &flow()), None);
    // Port ranges: inclusive.
    for (port, want) in [
        (8000, Some("web-out-of-eu")),
        (8100, Some("web-out-of-eu")),
        (8101, Some("odd-ports")),
        (7999, Some("odd-ports")),
    ] {
        let s = Subject {
            remote_port: Some(port),
            remote_ip: v4(8, 8, 8, 8),
            ..to("US")
        };
        assert_eq!(decide(&p, &s), want, "port {port}");
    }
    // Transports: UDP 53 allowed; UDP 443 is not "tcp" so skips web-out-of-eu.
    let udp = |port| Subject {
        transport: Transport::Udp,
        remote_port: Some(port),
        ..to("US")
    };
    assert_eq!(decide(&p, &udp(53)), Some("dns-anywhere"));
    assert_eq!(decide(&p, &udp(443)), None);
    // not_ports / not_cidrs: high port but remote in the excluded network.
    let s = Subject {
        remote_port: Some(5000),
        ..to("BE")
    };
    assert_eq!(decide(&p, &s), None);
    let s = Subject {
        remote_port: Some(5000),
        remote_ip: v4(8, 8, 8, 8),
        ..to("BE")
    };
    assert_eq!(decide(&p, &s), Some("odd-ports"));
    // cidrs with not_asns: the ASN must be known and not excluded.
    let net = |asn| Subject {
        remote_ip: v4(198, 51, 100, 7),
        remote_port: Some(22),
        asn,
        ..to("BE")
    };
    assert_eq!(decide(&p, &net(Some(64501))), Some("bad-net"));
    assert_eq!(decide(&p, &net(Some(13335))), None);
    assert_eq!(decide(&p, &net(None)), None);
    let s6 = Subject {
        remote_ip: "2001:db8::5".parse().unwrap(),
        ..net(Some(1))
    };
    assert_eq!(decide(&p, &s6), Some("bad-net"));
    // Portless transports never match ports or not_ports.
    let icmp = Subject {
        transport: Transport::Icmp,
        remote_port: None,
        remote_ip: v4(8, 8, 8, 8),
        ..to("US")
    };
    assert_eq!(decide(&p, &icmp), Some("icmp"));
    let gre = Subject {
        transport: Transport::Other(47),
        ..icmp.clone()
    };
    assert_eq!(decide(&p, &gre), Some("icmp"));
    let esp = Subject {
        transport: Transport::Other(50),
        ..icmp
    };
    assert_eq!(decide(&p, &esp), None);
}

#[test]
fn unknown_country_and_catch_all() {
    let p = load(
        "[[rules]]\nid = \"unknown\"\nunknown_country = true\n[[rules]]\nid = \"known\"\nunknown_country = false\n\
         severity = \"low\"\n[[rules]]\nid = \"all\"\nseverity = \"info\"\n",
    );
    assert_eq!(decide(&p, &to("FR")), Some("known"));
    // A remote without a country is "unknown" only when it is public; private ones fall through.
    let private = Subject {
        remote_ip: v4(10, 1, 2, 3),
        ..flow()
    };
    assert_eq!(decide(&p, &private), Some("all"));
    let public = Subject {
        remote_ip: v4(8, 8, 8, 8),
        ..flow()
    };
    let want = if crate::geoip::is_public(public.remote_ip) {
        "unknown"
    } else {
        "all"
    };
    assert_eq!(decide(&p, &public), Some(want));
    assert_eq!(p.rules()[2].severity, Severity::Info);
    assert_eq!(p.rules()[0].severity, Severity::Medium);
    assert_eq!(p.rules()[0].action, Action::Alert);
}

#[test]
fn eu_and_eea() {
    let p = load(
        "[[rules]]\nid = \"eea\"\ncountries = [\"EEA\"]\n[[rules]]\nid = \"eu\"\ncountries = [\"eu\"]\n",
    );
    assert_eq!(decide(&p, &to("NO")), Some("eea"));
    assert_eq!(decide(&p, &to("GR")), Some("eea"));
    assert_eq!(decide(&p, &to("CH")), None);
    assert_eq!(decide(&p, &to("GB")), None);
}

#[test]
fn reasons() {
    let p = load(
        "[[rules]]\nid = \"custom\"\nasns = [1]\nreason = \"{device} ({device_ip}) → {remote}:{port} {transport} {country} AS{asn} [{rule}] {{x}}\"\n\
         [[rules]]\nid = \"deny\"\ncountries = [\"CN\"]\n\
         [[rules]]\nid = \"allow\"\nnot_countries = [\"EU\"]\n\
         [[rules]]\nid = \"unk\"\nunknown_country = true\n\
         [[rules]]\nid = \"other\"\n",
    );
    let s = Subject {
        asn: Some(1),
        ..flow()
    };
    let r = |i: usize, s: &Subject<'_>| p.rules()[i].reason(s);
    assert_eq!(
        r(0, &s),
        "192.168.1.50 (192.168.1.50) → 203.0.113.9:443 tcp unknown AS1 [custom] {x}"
    );
    assert_eq!(
        r(1, &to("CN")),
        "192.168.1.50 sent data to 203.0.113.9 in CN, a country denied by rule deny"
    );
    assert_eq!(
        r(2, &to("US")),
        "192.168.1.50 sent data to 203.0.113.9 in US, outside the countries allowed by rule allow"
    );
    assert_eq!(
        r(3, &flow()),
        "192.168.1.50 sent data to 203.0.113.9 whose country no database knows, matched rule unk"
    );
    assert_eq!(
        r(4, &flow()),
        "192.168.1.50 sent data to 203.0.113.9 (tcp/443), matched rule other"
    );
    let icmp = Subject {
        transport: Transport::Icmp,
        remote_port: None,
        ..flow()
    };
    assert_eq!(
        r(4, &icmp),
        "192.168.1.50 sent data to 203.0.113.9 (icmp), matched rule other"
    );
    let dev = Device {
        name: "cam".into(),
        profile: "default".into(),
        selector: DeviceSelector::Ip(v4(192, 168, 1, 50)),
    };
    let named = Subject {
        device: Some(&dev),
        asn: Some(1),
        ..icmp
    };
    assert_eq!(
        r(0, &named),
        "cam (192.168.1.50) → 203.0.113.9:none icmp unknown AS1 [custom] {x}"
    );
}

// ---- command line -------------------------------------------------------------------------

fn cli(deny: &[&str], allow: &[&str], home: &[&str]) -> CliRules {
    let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
    CliRules {
        deny_countries: v(deny),
        allow_countries: v(allow),
        home: v(home),
        resolvers: Vec::new(),
    }
}

#[test]
fn cli_rules_come_first() {
    let p = load("[[rules]]\nid = \"file\"\nseverity = \"low\"\n")
        .with_cli(&cli(&["CN", "ru"], &["EU"], &["BE"]))
        .unwrap();
    let ids: Vec<&str> = p.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            CLI_DENY_RULE,
            CLI_ALLOW_RULE,
            "file",
            PLAINTEXT_FOREIGN_RULE
        ]
    );
    assert!(
        p.rules()[..2]
            .iter()
            .all(|r| r.severity == Severity::High && r.action == Action::Alert)
    );
    assert_eq!(decide(&p, &to("RU")), Some(CLI_DENY_RULE));
    assert_eq!(decide(&p, &to("US")), Some(CLI_ALLOW_RULE));
    assert_eq!(decide(&p, &to("DE")), Some("file"));
    assert_eq!(decide(&p, &to("BE")), Some("file"));
    assert_eq!(decide(&p, &flow()), Some("file"));
    assert_eq!(p.home(), &[CountryCode::new("BE").unwrap()]);
    assert_eq!(
        p.rules()[0].reason(&to("RU")),
        "192.168.1.50 sent data to 203.0.113.9 in RU, a country denied by rule cli-deny-country"
    );
}

#[test]
fn cli_only_policy() {
    let p = Policy::empty()
        .with_cli(&cli(&[], &["DE"], &["NL", "BE"]))
        .unwrap();
    assert_eq!(p.source(), "command line");
    assert_eq!(decide(&p, &to("NL")), None);
    assert_eq!(decide(&p, &to("DE")), None);
    assert_eq!(decide(&p, &to("FR")), Some(CLI_ALLOW_RULE));
    // Twice: replaced, not duplicated (the second rule is the built-in one, as home is set).
    let p = p.with_cli(&cli(&[], &["FR"], &[])).unwrap();
    assert_eq!(p.rules().len(), 2);
    assert_eq!(decide(&p, &to("FR")), None);
}

#[test]
fn cli_home_extends_rules_that_use_home() {
    let p = load("home = [\"BE\"]\n[[rules]]\nid = \"foreign\"\nnot_countries = [\"home\"]\n")
        .with_cli(&cli(&[], &[], &["NL"]))
        .unwrap();
    assert_eq!(decide(&p, &to("NL")), None);
    assert_eq!(decide(&p, &to("BE")), None);
    assert_eq!(decide(&p, &to("DE")), Some("foreign"));
}

#[test]
fn cli_errors() {
    let e = |c: CliRules| {
        Policy::empty()
            .with_cli(&c)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(cli(&["CN", "UK"], &[], &[])),
        "--deny-country:1:2: unknown country \"UK\", did you mean \"GB\"?"
    );
    assert_eq!(
        e(cli(&[], &["BE", "DE", "Germny"], &[])),
        "--allow-country:1:3: unknown country \"Germny\", did you mean \"DE\"? (countries are ISO 3166-1 alpha-2 codes)"
    );
    assert_eq!(
        e(cli(&[], &[], &["XQ"])),
        "--home:1:1: unknown country \"XQ\": use an ISO 3166-1 alpha-2 code (see https://www.iso.org/obp/ui/#search/code/) or a group"
    );
    assert_eq!(
        e(cli(&["home"], &[], &[])),
        "--deny-country:1:1: \"home\" names the home country set, which is empty: set home = [\"BE\"] at the top of the policy or pass --home BE"
    );
    assert_eq!(
        e(cli(&["CN", ""], &[], &[])),
        "--deny-country:1:2: empty item: separate countries with single commas, as in CN,RU"
    );
    assert_eq!(
        e(cli(&[], &[], &["home"])),
        "--home:1:1: \"home\" cannot be part of the home set: list country codes or groups"
    );
    // Groups from the file are usable on the command line.
    let p = load("[groups]\nnordics = [\"DK\", \"FI\"]\n")
        .with_cli(&cli(&["nordics"], &[], &[]))
        .unwrap();
    assert_eq!(decide(&p, &to("FI")), Some(CLI_DENY_RULE));
}

#[test]
fn from_file_with_cli_lets_home_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dut.toml");
    std::fs::write(
        &path,
        "[[rules]]\nid = \"foreign\"\nnot_countries = [\"home\"]\n",
    )
    .unwrap();
    let e = Policy::from_file(&path).unwrap_err();
    assert_eq!((e.line, e.column), (3, 18));
    assert_eq!(e.file, path.display().to_string());
    let text = std::fs::read_to_string(&path).unwrap();
    let p = Policy::from_toml_with_cli(&text, "t.toml", &cli(&[], &[], &["BE"])).unwrap();
    assert_eq!(decide(&p, &to("US")), Some("foreign"));
    let p = Policy::from_file_with_cli(&path, &cli(&["CN"], &[], &["BE"])).unwrap();
    assert_eq!(p.source(), path.display().to_string());
    assert_eq!(decide(&p, &to("CN")), Some(CLI_DENY_RULE));
    assert_eq!(decide(&p, &to("US")), Some("foreign"));
    assert_eq!(decide(&p, &to("BE")), None);
}

// ---- files and the embedded default -------------------------------------------------------

#[test]
fn from_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let e = Policy::from_file(&missing).unwrap_err();
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.to_string().starts_with(&format!(
        "{}:0:0: cannot read the policy: ",
        missing.display()
    )));

    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; POLICY_MAX_BYTES + 10]).unwrap();
    assert_eq!(
        Policy::from_file(&big).unwrap_err().message,
        "policy is 1048586 bytes, more than the limit of 1048576 bytes (1 MiB): split it or remove unused rules"
    );

    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"name = \"ok\"\nhome = [\"\xe9\"]\n").unwrap();
    let e = Policy::from_file(&latin1).unwrap_err();
    assert_eq!((e.line, e.column), (2, 10));
    assert!(e.message.contains("not UTF-8"));

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "name = \"lab\"\n").unwrap();
    let p = Policy::from_file(&good).unwrap();
    assert_eq!(p.name(), Some("lab"));
    assert!(p.rules().is_empty());
}

#[test]
fn embedded_default_parses() {
    let p = Policy::from_toml(DEFAULT_POLICY_TOML, "default.toml").unwrap();
    assert_eq!(p.name(), Some("embedded-default"));
    let p = Policy::embedded_default();
    assert_eq!(p.source(), SOURCE_EMBEDDED);
    assert_eq!(p.rules().len(), 1);
    let rule = &p.rules()[0];
    assert_eq!(
        (rule.id.as_str(), rule.severity),
        ("cn-egress", Severity::High)
    );
    assert_eq!(decide(&p, &to("CN")), Some("cn-egress"));
    assert_eq!(decide(&p, &to("HK")), None);
    assert_eq!(
        rule.reason(&to("CN")),
        "192.168.1.50 sent data to 203.0.113.9 in China"
    );
    assert_eq!(p.dedup_window_ns(), DEDUP_WINDOW_DEFAULT_NS);
    assert_eq!(p.local_networks().len(), 9);
}

#[test]
fn example_policy_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
    let p = Policy::from_file(Path::new(path)).unwrap();
    assert!(!p.rules().is_empty());
    assert!(!p.devices().is_empty());
    assert!(!p.overrides().is_empty());
}

#[test]
fn country_names() {
    assert_eq!(country_name(CountryCode::new("cn").unwrap()), Some("China"));
    assert_eq!(country_name(CountryCode::new("ZZ").unwrap()), None);
}

// ---- names, encryption, volume, hard-coded addresses ----------------------------------------

/// An error for one line added to a rule (which is then at line 3).
fn rule_err(line: &str) -> String {
    err(&format!("[[rules]]\nid = \"a\"\n{line}\n"))
}

#[test]
fn domain_errors() {
    assert_eq!(rule_err("domains = [\"example.com\", \"*.QQ.com\"]"), "ok");
    assert_eq!(
        rule_err("domains = [\"example.com\", \"exa mple.com\"]"),
        "p.toml:3:27: domain \"exa mple.com\" contains ' ': use only letters, digits, '-', '_' and dots between labels"
    );
    assert_eq!(
        rule_err("not_domains = [\"bücher.de\"]"),
        "p.toml:3:16: domain \"bücher.de\" is not ASCII: write its IDNA (punycode) form, which starts with \"xn--\" (\"bücher.example\" is \"xn--bcher-kva.example\")"
    );
    assert_eq!(
        rule_err("domains = [\"*\"]"),
        "p.toml:3:12: \"*\" alone would match every name: write \"*.example.com\" for the subdomains of one name, or use unknown_domain = false to match every flow that has a name"
    );
    assert_eq!(
        rule_err("domains = [\"a.*.com\"]"),
        "p.toml:3:12: domain \"a.*.com\" has a '*' that is not the whole first label: a wildcard is written only as \"*.\" before a name, as in \"*.example.com\""
    );
    assert!(rule_err("domains = [\"*example.com\"]").contains("not the whole first label"));
    assert!(rule_err("domains = [\"*.*.com\"]").contains("not the whole first label"));
    assert_eq!(
        rule_err("domains = [\"example.com.\"]"),
        "p.toml:3:12: domain \"example.com.\" ends with a dot: write it without, as \"example.com\""
    );
    assert_eq!(
        rule_err("domains = [\"192.0.2.7\"]"),
        "p.toml:3:12: \"192.0.2.7\" is an IP address, not a name: match addresses with cidrs = [\"192.0.2.7\"]"
    );
    assert_eq!(
        rule_err("domains = [\"a..b\"]"),
        "p.toml:3:12: domain \"a..b\" has an empty label (two dots in a row, or a leading dot): write a name such as \"example.com\", or \"*.example.com\" for its subdomains"
    );
    assert!(rule_err("domains = [\".a.b\"]").contains("empty label"));
    assert!(rule_err("domains = [\"\"]").starts_with("p.toml:3:12: empty domain: "));
    assert_eq!(
        rule_err("domains = [\"-a.com\"]"),
        "p.toml:3:12: domain \"-a.com\" has a label that starts or ends with '-', which DNS names may not"
    );
    let long_label = format!("domains = [\"{}.com\"]", "a".repeat(64));
    assert!(rule_err(&long_label).contains("has a label longer than 63 characters"));
    assert_eq!(
        rule_err(&format!("domains = [\"{}.com\"]", "a".repeat(63))),
        "ok"
    );
    let name = |labels| format!("domains = [\"{}a\"]", "a.".repeat(labels));
    assert_eq!(rule_err(&name(126)), "ok");
    assert!(rule_err(&name(127)).contains("is longer than 253 characters"));
    assert_eq!(
        rule_err("not_domains = []"),
        "p.toml:3:15: not_domains is an empty list, which never matches: add entries or remove the key"
    );
    assert_eq!(
        rule_err("domains = [\"_dmarc.example.com\", \"xn--bcher-kva.de\", \"localhost\"]"),
        "ok"
    );
    // After an é earlier on the line, the column still counts characters.
    assert!(
        rule_err("domains = [\"é.com\", \"x y\"]")
            .starts_with("p.toml:3:12: domain \"é.com\" is not ASCII")
    );
}

#[test]
fn unknown_domain_with_domain_lists() {
    assert_eq!(
        rule_err("domains = [\"a.com\"]\nunknown_domain = true"),
        "p.toml:4:18: unknown_domain cannot be combined with domains or not_domains (those never match a remote without a name): write a separate rule"
    );
    assert!(
        rule_err("not_domains = [\"a.com\"]\nunknown_domain = false")
            .starts_with("p.toml:4:18: unknown_domain cannot")
    );
    assert_eq!(
        rule_err("unknown_domain = \"yes\""),
        "p.toml:3:18: invalid type: string \"yes\", expected a boolean"
    );
}

#[test]
fn byte_sizes() {
    let limit = |v: &str| {
        load(&format!("[[rules]]\nid = \"a\"\nbytes_out_over = {v}\n")).bytes_thresholds()
    };
    assert_eq!(limit("0"), [0]);
    assert_eq!(limit("1048576"), [1_048_576]);
    assert_eq!(limit("\"1048576\""), [1_048_576]);
    assert_eq!(limit("\"7B\""), [7]);
    assert_eq!(limit("\"500kB\""), [500_000]);
    assert_eq!(limit("\"10MB\""), [10_000_000]);
    assert_eq!(limit("\"10 MB\""), [10_000_000]);
    assert_eq!(limit("\"2GB\""), [2_000_000_000]);
    assert_eq!(limit("\"1TB\""), [1_000_000_000_000]);
    assert_eq!(limit("\"3KiB\""), [3_072]);
    assert_eq!(limit("\"5MiB\""), [5_242_880]);
    assert_eq!(limit("\"1GiB\""), [1_073_741_824]);
    assert_eq!(limit("\"1TiB\""), [1_099_511_627_776]);
    let e = |v: &str| rule_err(&format!("bytes_out_over = {v}"));
    const HELP: &str = "use an integer number of bytes, or a whole number with a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), as in \"10MB\" or \"5MiB\"";
    assert_eq!(
        e("-1"),
        format!("p.toml:3:18: bytes_out_over -1 is negative: {HELP}")
    );
    assert_eq!(
        e("\"10mb\""),
        format!(
            "p.toml:3:18: unknown unit \"mb\" in \"10mb\", did you mean \"MB\"? Units are case-sensitive: {HELP}"
        )
    );
    assert_eq!(
        e("\"10KB\""),
        "p.toml:3:18: ambiguous unit \"KB\" in \"10KB\": write kB for 1000 bytes or KiB for 1024 bytes"
    );
    assert_eq!(
        e("\"1.5MB\""),
        "p.toml:3:18: size \"1.5MB\" is not a whole number: use a smaller unit, as in \"1500kB\" for 1.5 MB"
    );
    assert_eq!(
        e("\"lots\""),
        format!("p.toml:3:18: invalid size \"lots\": {HELP}")
    );
    assert_eq!(
        e("\"MB\""),
        format!("p.toml:3:18: invalid size \"MB\": {HELP}")
    );
    assert_eq!(
        e("\"10 Mbit\""),
        format!("p.toml:3:18: unknown unit \"Mbit\" in \"10 Mbit\": {HELP}")
    );
    assert_eq!(
        e("\"20000000TB\""),
        "p.toml:3:18: size \"20000000TB\" is too large: the most is 18446744073709551615 bytes"
    );
    assert_eq!(
        e("1.5"),
        "p.toml:3:18: invalid type: floating point `1.5`, expected an integer or a string"
    );
}

/// A policy with one rule of each new condition, in this order.
const FACTS: &str = r#"
[[rules]]
id = "names"
domains = ["tracker.example", "*.QQ.com"]
[[rules]]
id = "plain"
plaintext = true
[[rules]]
id = "enc"
plaintext = false
[[rules]]
id = "big"
bytes_out_over = "1kB"
[[rules]]
id = "hard"
hardcoded = true
[[rules]]
id = "named"
hardcoded = false
"#;

#[test]
fn new_conditions_alone() {
    // Each rule alone, so that first-match does not hide any case.
    let only = |id: &str| {
        let p = load(FACTS);
        let i = p.rules().iter().position(|r| r.id == id).unwrap();
        move |s: &Subject<'_>| p.rules()[i].matches(s)
    };
    let named = |host: Option<&'static str>, queried: Option<&'static str>| Subject {
        hostname: host,
        queried_name: queried,
        ..flow()
    };
    let names = only("names");
    for (host, queried, want) in [
        (Some("tracker.example"), None, true),
        (Some("TRACKER.Example"), None, true),
        (Some("tracker.example."), None, true),
        (Some("a.tracker.example"), None, false),
        (Some("qq.com"), None, false),
        (Some("im.qq.com"), None, true),
        (Some("a.b.qq.com"), None, true),
        (Some("notqq.com"), None, false),
        (Some(".qq.com"), None, false),
        (Some("cdn.example"), Some("tracker.example"), true),
        (None, Some("www.qq.com"), true),
        (Some("cdn.example"), Some("other.example"), false),
        (None, None, false),
        (Some(""), None, false),
    ] {
        assert_eq!(names(&named(host, queried)), want, "{host:?} {queried:?}");
    }

    let by = |enc| Subject {
        encrypted: enc,
        ..flow()
    };
    let (plain, enc) = (only("plain"), only("enc"));
    assert_eq!(
        (plain(&by(Some(false))), enc(&by(Some(false)))),
        (true, false)
    );
    assert_eq!(
        (plain(&by(Some(true))), enc(&by(Some(true)))),
        (false, true)
    );
    assert_eq!((plain(&by(None)), enc(&by(None))), (false, false));

    let big = only("big");
    let sent = |bytes_out| Subject {
        bytes_out,
        ..flow()
    };
    assert!(!big(&sent(0)));
    assert!(!big(&sent(1000)));
    assert!(big(&sent(1001)));
    assert!(big(&sent(u64::MAX)));

    let (hard, dns) = (only("hard"), only("named"));
    let dns_named = |n| Subject {
        dns_named: n,
        ..flow()
    };
    assert_eq!(
        (hard(&dns_named(Some(false))), dns(&dns_named(Some(false)))),
        (true, false)
    );
    assert_eq!(
        (hard(&dns_named(Some(true))), dns(&dns_named(Some(true)))),
        (false, true)
    );
    assert_eq!(
        (hard(&dns_named(None)), dns(&dns_named(None))),
        (false, false)
    );
}

#[test]
fn not_domains_and_unknown_domain() {
    let p = load(
        "[[rules]]\nid = \"allowed\"\naction = \"allow\"\ndomains = [\"ok.example\"]\n\
         [[rules]]\nid = \"elsewhere\"\nnot_domains = [\"*.vendor.example\", \"vendor.example\"]\n\
         [[rules]]\nid = \"nameless\"\nunknown_domain = true\n\
         [[rules]]\nid = \"has-name\"\nunknown_domain = false\n",
    );
    let named = |host: Option<&'static str>, queried: Option<&'static str>| Subject {
        hostname: host,
        queried_name: queried,
        ..flow()
    };
    assert_eq!(
        decide(&p, &named(Some("ok.example"), None)),
        Some("allowed")
    );
    assert_eq!(
        decide(&p, &named(Some("evil.example"), None)),
        Some("elsewhere")
    );
    assert_eq!(
        decide(&p, &named(Some("vendor.example"), None)),
        Some("has-name")
    );
    assert_eq!(
        decide(&p, &named(Some("api.vendor.example"), None)),
        Some("has-name")
    );
    // One of the two names matching is enough for not_domains to fail.
    assert_eq!(
        decide(&p, &named(Some("cdn.example"), Some("api.vendor.example"))),
        Some("has-name")
    );
    assert_eq!(
        decide(&p, &named(None, Some("evil.example"))),
        Some("elsewhere")
    );
    assert_eq!(decide(&p, &named(None, None)), Some("nameless"));
    assert_eq!(decide(&p, &named(Some(""), None)), Some("nameless"));
}

#[test]
fn new_conditions_combine_with_and() {
    let p = load(
        "[[rules]]\nid = \"big-plain-hard\"\nplaintext = true\nbytes_out_over = 100\nhardcoded = true\n\
         domains = [\"*.example\"]\n",
    );
    let all = Subject {
        hostname: Some("a.example"),
        encrypted: Some(false),
        bytes_out: 101,
        country_bytes_out: 0,
        name_bytes_out: 0,
        dns_named: Some(false),
        ..flow()
    };
    assert_eq!(decide(&p, &all), Some("big-plain-hard"));
    for s in [
        Subject {
            hostname: None,
            ..all.clone()
        },
        Subject {
            encrypted: None,
            ..all.clone()
        },
        Subject {
            bytes_out: 100,
            country_bytes_out: 0,
            name_bytes_out: 0,
            ..all.clone()
        },
        Subject {
            dns_named: None,
            ..all.clone()
        },
    ] {
        assert_eq!(decide(&p, &s), None, "{s:?}");
    }
}

#[test]
fn needs_and_thresholds() {
    assert_eq!(Policy::embedded_default().needs(), Needs::default());
    let p = load(FACTS);
    assert_eq!(
        p.needs(),
        Needs {
            names: true,
            encryption: true,
            dns_named: true,
            bytes_out: true,
            totals: false,
            app_protos: false,
        }
    );
    let p = load(
        "[[rules]]\nid = \"a\"\nbytes_out_over = \"1MB\"\n[[rules]]\nid = \"b\"\nbytes_out_over = 10\n\
         [[rules]]\nid = \"c\"\nbytes_out_over = 1000000\n[[rules]]\nid = \"d\"\nunknown_domain = true\n",
    );
    assert_eq!(p.bytes_thresholds(), [10, 1_000_000]);
    assert_eq!(
        p.needs(),
        Needs {
            names: true,
            bytes_out: true,
            ..Needs::default()
        }
    );
    // The built-in rule needs the encryption fact.
    let p = Policy::empty().with_cli(&cli(&[], &[], &["BE"])).unwrap();
    assert!(p.needs().encryption);
}

// ---- the built-in plaintext-foreign rule ----------------------------------------------------

fn plaintext_to(country: &str) -> Subject<'static> {
    Subject {
        encrypted: Some(false),
        ..to(country)
    }
}

fn ids(p: &Policy) -> Vec<&str> {
    p.rules().iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn plaintext_foreign_needs_a_home() {
    let p = load("[[rules]]\nid = \"x\"\nports = [1]\n");
    assert_eq!(ids(&p), ["x"]);
    assert!(p.plaintext_foreign());
    assert_eq!(decide(&p, &plaintext_to("US")), None);
    assert_eq!(ids(&Policy::embedded_default()), ["cn-egress"]);
    assert!(Policy::empty().rules().is_empty());
}

#[test]
fn plaintext_foreign_with_home_in_the_file() {
    let p = load(
        "home = [\"BE\"]\n[[rules]]\nid = \"lab\"\naction = \"allow\"\ncidrs = [\"203.0.113.0/24\"]\nports = [80]\n\
         [[rules]]\nid = \"big\"\nbytes_out_over = \"1MB\"\n",
    );
    assert_eq!(ids(&p), ["lab", "big", PLAINTEXT_FOREIGN_RULE]);
    let rule = p.rules().last().unwrap();
    assert!(rule.is_builtin() && !p.rules()[0].is_builtin());
    assert_eq!(
        (rule.severity, rule.action),
        (Severity::Medium, Action::Alert)
    );
    assert_eq!(p.alert(&plaintext_to("US")), Some(2));
    // Home, unknown country, encrypted and not-yet-classified payload: no alert.
    assert_eq!(decide(&p, &plaintext_to("BE")), None);
    assert_eq!(
        decide(
            &p,
            &Subject {
                country: None,
                ..plaintext_to("US")
            }
        ),
        None
    );
    assert_eq!(
        decide(
            &p,
            &Subject {
                encrypted: Some(true),
                ..plaintext_to("US")
            }
        ),
        None
    );
    assert_eq!(decide(&p, &to("US")), None);
    // An allow rule before it exempts flows.
    let lab = Subject {
        remote_port: Some(80),
        ..plaintext_to("US")
    };
    assert_eq!(decide(&p, &lab), Some("lab"));
    // First match: an earlier alert rule hides it for that evaluation.
    let big = Subject {
        bytes_out: 2_000_000,
        ..plaintext_to("US")
    };
    assert_eq!(decide(&p, &big), Some("big"));
    assert_eq!(
        rule.reason(&plaintext_to("US")),
        "192.168.1.50 sent unencrypted data to 203.0.113.9 in US, outside the home countries"
    );
}

#[test]
fn plaintext_foreign_settings() {
    let p = load("home = [\"BE\"]\nplaintext_foreign_severity = \"HIGH\"\n");
    assert_eq!(p.rules()[0].severity, Severity::High);
    let p = load("home = [\"BE\"]\nplaintext_foreign = false\n");
    assert!(p.rules().is_empty() && !p.plaintext_foreign());
    let p = p.with_cli(&cli(&[], &[], &["NL"])).unwrap();
    assert!(p.rules().is_empty());
    let p = load("home = [\"BE\"]\nplaintext_foreign = true\n");
    assert_eq!(ids(&p), [PLAINTEXT_FOREIGN_RULE]);
    assert_eq!(
        err("plaintext_foreign = true\n"),
        "p.toml:1:21: plaintext_foreign = true needs a home set, outside which unencrypted data is reported: set home = [\"BE\"] at the top of the policy or pass --home BE"
    );
    let cli_home = cli(&[], &[], &["BE"]);
    assert!(Policy::from_toml_with_cli("plaintext_foreign = true\n", "p.toml", &cli_home).is_ok());
    assert_eq!(
        err("home = [\"BE\"]\nplaintext_foreign = false\nplaintext_foreign_severity = \"low\"\n"),
        "p.toml:3:30: plaintext_foreign_severity has no effect: plaintext_foreign = false (line 2, column 21) turns the built-in rule off; remove one of the two"
    );
    assert_eq!(
        err("plaintext_foreign_severity = \"urgent\"\n"),
        "p.toml:1:30: unknown severity \"urgent\": use info, low, medium, high or critical"
    );
    assert_eq!(
        err("[[rules]]\nid = \"plaintext-foreign\"\n"),
        "p.toml:2:6: rule id \"plaintext-foreign\" is the built-in rule's: rename this rule; to change the built-in rule set plaintext_foreign_severity, or plaintext_foreign = false to turn it off"
    );
}

#[test]
fn plaintext_foreign_with_home_from_the_command_line() {
    // One-liners only.
    let p = Policy::empty()
        .with_cli(&cli(&["CN"], &[], &["BE"]))
        .unwrap();
    assert_eq!(ids(&p), [CLI_DENY_RULE, PLAINTEXT_FOREIGN_RULE]);
    assert_eq!(
        decide(&p, &plaintext_to("US")),
        Some(PLAINTEXT_FOREIGN_RULE)
    );
    assert_eq!(decide(&p, &plaintext_to("CN")), Some(CLI_DENY_RULE));
    assert_eq!(decide(&p, &plaintext_to("BE")), None);
    // Given again: still one built-in rule, last, for the larger home set.
    let p = p.with_cli(&cli(&["RU"], &[], &["NL"])).unwrap();
    assert_eq!(ids(&p), [CLI_DENY_RULE, PLAINTEXT_FOREIGN_RULE]);
    assert_eq!(decide(&p, &plaintext_to("NL")), None);
    assert_eq!(decide(&p, &plaintext_to("BE")), None);
    // The embedded default with --home.
    let p = Policy::embedded_default()
        .with_cli(&cli(&[], &[], &["BE"]))
        .unwrap();
    assert_eq!(ids(&p), ["cn-egress", PLAINTEXT_FOREIGN_RULE]);
    assert_eq!(p.source(), "embedded default + command line");
    assert_eq!(decide(&p, &plaintext_to("CN")), Some("cn-egress"));
    assert_eq!(
        decide(&p, &plaintext_to("FR")),
        Some(PLAINTEXT_FOREIGN_RULE)
    );
    // A file without home, with --home: after the file's rules; the file's home joins --home.
    let p = Policy::from_toml_with_cli(
        "[[rules]]\nid = \"f\"\nports = [25]\n",
        "p.toml",
        &cli(&[], &["CH"], &["BE"]),
    )
    .unwrap();
    assert_eq!(ids(&p), [CLI_ALLOW_RULE, "f", PLAINTEXT_FOREIGN_RULE]);
    let p = load("home = [\"BE\"]\n")
        .with_cli(&cli(&[], &[], &["NL"]))
        .unwrap();
    assert_eq!(ids(&p), [PLAINTEXT_FOREIGN_RULE]);
    assert_eq!(decide(&p, &plaintext_to("NL")), None);
    assert_eq!(
        decide(&p, &plaintext_to("DE")),
        Some(PLAINTEXT_FOREIGN_RULE)
    );
}

// ---- reasons for the new conditions ---------------------------------------------------------

#[test]
fn new_placeholders_and_generated_reasons() {
    let p = load(
        "[[rules]]\nid = \"t\"\nports = [1]\nreason = \"{device} sent {bytes_out} bytes to {hostname}\"\n\
         [[rules]]\nid = \"deny-name\"\ndomains = [\"a.example\"]\n\
         [[rules]]\nid = \"allow-name\"\nnot_domains = [\"a.example\"]\n\
         [[rules]]\nid = \"nameless\"\nunknown_domain = true\n\
         [[rules]]\nid = \"plain\"\nplaintext = true\ncountries = [\"CN\"]\n\
         [[rules]]\nid = \"enc\"\nplaintext = false\n\
         [[rules]]\nid = \"big\"\nbytes_out_over = \"1MiB\"\ndomains = [\"a.example\"]\n\
         [[rules]]\nid = \"hard\"\nhardcoded = true\nplaintext = true\n",
    );
    let r = |id: &str, s: &Subject<'_>| p.rules().iter().find(|r| r.id == id).unwrap().reason(s);
    let named = Subject {
        hostname: Some("a.example"),
        bytes_out: 2_000_000,
        ..flow()
    };
    let queried = Subject {
        queried_name: Some("q.example"),
        ..flow()
    };
    assert_eq!(
        r("t", &named),
        "192.168.1.50 sent 2000000 bytes to a.example"
    );
    assert_eq!(r("t", &queried), "192.168.1.50 sent 0 bytes to q.example");
    assert_eq!(r("t", &flow()), "192.168.1.50 sent 0 bytes to unknown");
    assert_eq!(
        r("deny-name", &named),
        "192.168.1.50 sent data to a.example (203.0.113.9), a name denied by rule deny-name"
    );
    assert_eq!(
        r("allow-name", &queried),
        "192.168.1.50 sent data to q.example (203.0.113.9), outside the names allowed by rule allow-name"
    );
    assert_eq!(
        r("nameless", &flow()),
        "192.168.1.50 sent data to 203.0.113.9, an address with no known name, matched rule nameless"
    );
    assert_eq!(
        r("plain", &named),
        "192.168.1.50 sent unencrypted data to a.example (203.0.113.9) (tcp/443), matched rule plain"
    );
    assert_eq!(
        r("enc", &flow()),
        "192.168.1.50 sent encrypted data to 203.0.113.9 (tcp/443), matched rule enc"
    );
    assert_eq!(
        r("big", &named),
        "192.168.1.50 sent 2000000 bytes to a.example (203.0.113.9), more than rule big allows (1048576 bytes)"
    );
    assert_eq!(
        r("hard", &flow()),
        "192.168.1.50 sent data to 203.0.113.9, an address no DNS answer named (rule hard)"
    );
    // Unknown placeholders still list the new ones.
    assert!(
        rule_err("reason = \"{bytes}\"")
            .starts_with("p.toml:3:11: unknown placeholder {bytes} in reason: use {device}")
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = Policy::from_toml(&text, "p.toml");
        }

        #[test]
        fn policy_shaped_text_never_panics(text in r#"[\[\]\{\}=",\n a-zA-Z0-9_.\-/:é]{0,300}"#) {
            if let Err(e) = Policy::from_toml(&text, "p.toml") {
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }

        #[test]
        fn rule_values_never_panic(
            key in prop::sample::select(vec!["countries", "not_countries", "cidrs", "not_cidrs", "transports", "profiles", "domains", "not_domains"]),
            value in r#"[a-zA-Z0-9./:\-{} ]{0,20}"#,
            reason in r#"[a-z{}_ ]{0,30}"#,
        ) {
            let text = format!("[[rules]]\nid = \"r\"\nreason = \"{reason}\"\n{key} = [\"{value}\"]\n");
            let _ = Policy::from_toml(&text, "p.toml");
        }

        #[test]
        fn cli_items_never_panic(items in prop::collection::vec(any::<String>(), 0..4)) {
            let c = CliRules { deny_countries: items.clone(), allow_countries: items.clone(), home: items.clone(), resolvers: items };
            let _ = Policy::empty().with_cli(&c);
        }
    }
}

// ---- app_protos / not_app_protos (issue 8) ----------------------------------------------------

use crate::names::AppProto;

#[test]
fn app_proto_names_are_checked_with_a_suggestion() {
    assert_eq!(
        rule_err("app_protos = [\"ntp\", \"wirguard\"]"),
        "p.toml:3:22: unknown protocol \"wirguard\", did you mean \"wireguard\"? (protocols: tls, \
         dtls, quic, ssh, http, dns, unknown, ike, esp, wireguard, openvpn, sstp, anyconnect, ntp, \
         syslog, snmp, netconf, cwmp, mqtt, coap, vpn, management)"
    );
    assert_eq!(
        rule_err("not_app_protos = [\"managment\"]"),
        "p.toml:3:19: unknown protocol \"managment\", did you mean \"management\"? (protocols: tls, \
         dtls, quic, ssh, http, dns, unknown, ike, esp, wireguard, openvpn, sstp, anyconnect, ntp, \
         syslog, snmp, netconf, cwmp, mqtt, coap, vpn, management)"
    );
    assert!(
        rule_err("app_protos = [\"bittorrent\"]")
            .starts_with("p.toml:3:15: unknown protocol \"bittorrent\": use one of tls, dtls,"),
        "{}",
        rule_err("app_protos = [\"bittorrent\"]")
    );
    assert_eq!(
        rule_err("app_protos = []"),
        "p.toml:3:14: app_protos is an empty list, which never matches: add entries or remove the key"
    );
    assert!(rule_err("app_protos = \"ntp\"").starts_with("p.toml:3:14: "));
    assert_eq!(
        rule_err("app_protos = [\"NTP\", \"VPN\", \" syslog \"]"),
        "ok"
    );
}

#[test]
fn app_protos_need_a_known_protocol_and_groups_expand() {
    let p = load(
        "[[rules]]\nid = \"vpn\"\napp_protos = [\"vpn\"]\n\
         [[rules]]\nid = \"not-mgmt\"\nnot_app_protos = [\"management\", \"dns\"]\n",
    );
    let with = |proto| Subject {
        app_proto: proto,
        ..to("US")
    };
    for vpn in [
        AppProto::Ike,
        AppProto::Esp,
        AppProto::Wireguard,
        AppProto::Openvpn,
        AppProto::Sstp,
        AppProto::Anyconnect,
    ] {
        assert_eq!(decide(&p, &with(Some(vpn))), Some("vpn"), "{vpn}");
    }
    for mgmt in [
        AppProto::Ntp,
        AppProto::Syslog,
        AppProto::Snmp,
        AppProto::Netconf,
        AppProto::Cwmp,
        AppProto::Mqtt,
        AppProto::Coap,
        AppProto::Dns,
    ] {
        assert_eq!(decide(&p, &with(Some(mgmt))), None, "{mgmt}");
    }
    assert_eq!(decide(&p, &with(Some(AppProto::Tls))), Some("not-mgmt"));
    assert_eq!(decide(&p, &with(Some(AppProto::Unknown))), Some("not-mgmt"));
    // Before the payload is classified neither condition holds.
    assert_eq!(decide(&p, &with(None)), None);
    assert!(p.needs().app_protos);
    assert!(!load(TABLE).needs().app_protos);
}

/// The base-station allow list of examples/policy.toml, reduced to its rules.
const BASE_STATION: &str = r#"
[[devices]]
name = "bs-01"
ip = "192.168.50.10"
profile = "base-station"

[[rules]]
id = "bs-collector"
action = "allow"
profiles = ["base-station"]
app_protos = ["syslog", "snmp"]
cidrs = ["198.51.100.10/32"]

[[rules]]
id = "bs-ntp"
action = "allow"
profiles = ["base-station"]
app_protos = ["ntp"]
cidrs = ["198.51.100.123/32", "198.51.100.124/32"]

[[rules]]
id = "bs-other-protocol"
profiles = ["base-station"]
severity = "high"
not_app_protos = ["syslog", "snmp", "ntp"]

[[rules]]
id = "bs-wrong-destination"
profiles = ["base-station"]
severity = "high"
app_protos = ["syslog", "snmp", "ntp"]
reason = "{device} sent {app_proto} to {remote}, not its collector or time server"
"#;

#[test]
fn a_per_device_protocol_allow_list() {
    let p = load(BASE_STATION);
    let bs = p.device(v4(192, 168, 50, 10), None);
    assert!(bs.is_some());
    let from_bs = |proto, remote| Subject {
        device: bs,
        device_ip: v4(192, 168, 50, 10),
        remote_ip: remote,
        transport: Transport::Udp,
        remote_port: Some(514),
        app_proto: Some(proto),
        ..flow()
    };
    let collector = v4(198, 51, 100, 10);
    let time = v4(198, 51, 100, 123);
    let elsewhere = v4(203, 0, 113, 7);
    for (proto, remote, want) in [
        (AppProto::Syslog, collector, Some("bs-collector")),
        (AppProto::Snmp, collector, Some("bs-collector")),
        (AppProto::Ntp, collector, Some("bs-wrong-destination")),
        (AppProto::Ntp, time, Some("bs-ntp")),
        (AppProto::Syslog, time, Some("bs-wrong-destination")),
        (AppProto::Syslog, elsewhere, Some("bs-wrong-destination")),
        (AppProto::Tls, collector, Some("bs-other-protocol")),
        (AppProto::Unknown, elsewhere, Some("bs-other-protocol")),
        (AppProto::Openvpn, elsewhere, Some("bs-other-protocol")),
    ] {
        assert_eq!(
            decide(&p, &from_bs(proto, remote)),
            want,
            "{proto} to {remote}"
        );
    }
    // Another device is not held to the list.
    let other = Subject {
        app_proto: Some(AppProto::Tls),
        ..flow()
    };
    assert_eq!(decide(&p, &other), None);
    // The reasons: written, and generated.
    let wrong = from_bs(AppProto::Syslog, elsewhere);
    let id = p.evaluate(&wrong).unwrap();
    assert_eq!(
        p.rules()[id].reason(&wrong),
        "bs-01 sent syslog to 203.0.113.7, not its collector or time server"
    );
    let tls = from_bs(AppProto::Tls, collector);
    let id = p.evaluate(&tls).unwrap();
    assert_eq!(
        p.rules()[id].reason(&tls),
        "bs-01 sent tls to 198.51.100.10 (udp/514), outside the protocols allowed by rule \
         bs-other-protocol"
    );
}

#[test]
fn a_vpn_to_a_foreign_endpoint() {
    let p = load(
        "home = [\"BE\"]\n[[rules]]\nid = \"foreign-vpn\"\nseverity = \"high\"\n\
         app_protos = [\"vpn\"]\nnot_countries = [\"home\"]\n",
    );
    let vpn = |country, proto| Subject {
        app_proto: Some(proto),
        encrypted: Some(true),
        ..to(country)
    };
    assert_eq!(
        decide(&p, &vpn("NL", AppProto::Wireguard)),
        Some("foreign-vpn")
    );
    assert_eq!(decide(&p, &vpn("BE", AppProto::Wireguard)), None);
    // Encrypted TLS abroad is neither this rule's nor plaintext-foreign's.
    assert_eq!(decide(&p, &vpn("NL", AppProto::Tls)), None);
    // Syslog abroad is plaintext: the built-in rule catches it.
    let syslog = Subject {
        app_proto: Some(AppProto::Syslog),
        encrypted: Some(false),
        ..to("NL")
    };
    assert_eq!(decide(&p, &syslog), Some(PLAINTEXT_FOREIGN_RULE));
}

// --- re-routing conditions: via, via_kinds, via_countries, not_via_countries ---

fn through(kind: &'static str, country: &str) -> Subject<'static> {
    Subject {
        via_kind: Some(kind),
        via_ip: Some(v4(198, 18, 1, 1)),
        via_country: cc(country),
        ..to("DE")
    }
}

#[test]
fn via_conditions_match_tunnels_proxies_and_redirects() {
    let p = load(
        "home = [\"BE\"]\n\
         [[rules]]\nid = \"foreign-tunnel\"\nvia_kinds = [\"gre\", \"VXLAN\"]\nnot_via_countries = [\"home\"]\n\
         [[rules]]\nid = \"cn-proxy\"\nvia_kinds = [\"socks4\", \"socks5\", \"http-proxy\"]\nvia_countries = [\"CN\"]\n\
         [[rules]]\nid = \"any-hop\"\nvia = true\ncountries = [\"US\"]\n\
         [[rules]]\nid = \"direct-us\"\nvia = false\ncountries = [\"US\"]\n",
    );
    assert_eq!(decide(&p, &through("gre", "CN")), Some("foreign-tunnel"));
    assert_eq!(decide(&p, &through("vxlan", "BE")), None, "home endpoint");
    assert_eq!(
        decide(
            &p,
            &Subject {
                via_country: None,
                ..through("gre", "CN")
            }
        ),
        None,
        "not_via_countries needs a known country"
    );
    assert_eq!(decide(&p, &through("socks5", "CN")), Some("cn-proxy"));
    assert_eq!(decide(&p, &through("http-proxy", "DE")), None);
    assert_eq!(
        decide(
            &p,
            &Subject {
                country: cc("US"),
                ..through("redirect", "DE")
            }
        ),
        Some("any-hop")
    );
    assert_eq!(decide(&p, &to("US")), Some("direct-us"));
    assert_eq!(decide(&p, &to("DE")), None);
}

#[test]
fn via_reasons_name_the_hop() {
    let p = load(
        "[[rules]]\nid = \"no-cn\"\ncountries = [\"CN\"]\n[[rules]]\nid = \"t\"\nreason = \"{remote} via {via}\"\ncountries = [\"US\"]\n",
    );
    let r = |s: &Subject<'_>| {
        let id = p.evaluate(s).unwrap();
        p.rules()[id].reason(s)
    };
    let s = Subject {
        country: cc("CN"),
        ..through("gre", "NL")
    };
    assert!(r(&s).ends_with(", via gre 198.18.1.1 in NL"), "{}", r(&s));
    let s = Subject {
        country: cc("CN"),
        ..through("redirect", "DE")
    };
    assert!(
        r(&s).ends_with(", redirected by 198.18.1.1 in DE"),
        "{}",
        r(&s)
    );
    assert!(!r(&to("CN")).contains("via"), "{}", r(&to("CN")));
    let s = Subject {
        country: cc("US"),
        ..through("socks5", "DE")
    };
    assert_eq!(r(&s), "203.0.113.9 via socks5 198.18.1.1 in DE");
    assert_eq!(r(&to("US")), "203.0.113.9 via none");
    // A proxied target known by name only.
    let s = Subject {
        remote_ip: v4(0, 0, 0, 0),
        hostname: Some("api.vendor.cn"),
        country: cc("CN"),
        ..through("socks5", "DE")
    };
    assert!(r(&s).contains("api.vendor.cn"), "{}", r(&s));
    assert!(!r(&s).contains("0.0.0.0"), "{}", r(&s));
}

#[test]
fn via_condition_errors() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nvia_kinds = [\"gre\", \"ssh\"]\n"),
        "p.toml:3:21: unknown via kind \"ssh\": use gre, erspan, ipip, 6in4, 4in6, ip6ip6, vxlan, geneve, gtpu, teredo, http-proxy, socks4, socks5, redirect"
    );
    assert_eq!(
        err("[[rules]]\nid = \"a\"\nvia = false\nvia_countries = [\"CN\"]\n"),
        "p.toml:3:7: via = false cannot be combined with via_kinds, via_countries or not_via_countries (those only match a flow that went through something): write a separate rule"
    );
    assert!(err("[[rules]]\nid = \"a\"\nvia_countries = [\"XX\"]\n").starts_with("p.toml:3:18: "));
    assert!(err("[[rules]]\nid = \"a\"\nvia_kinds = []\n").starts_with("p.toml:3:"));
    assert!(err("[[rules]]\nid = \"a\"\nvia = \"yes\"\n").starts_with("p.toml:3:"));
}

#[test]
fn unknown_country_covers_a_proxied_target_known_by_name() {
    let p = load("[[rules]]\nid = \"u\"\nunknown_country = true\n");
    let s = Subject {
        remote_ip: v4(0, 0, 0, 0),
        hostname: Some("api.vendor.example"),
        ..through("socks5", "DE")
    };
    assert_eq!(
        decide(
            &p,
            &Subject {
                country: None,
                ..s.clone()
            }
        ),
        Some("u")
    );
    assert_eq!(
        decide(
            &p,
            &Subject {
                remote_ip: v4(0, 0, 0, 0),
                ..flow()
            }
        ),
        None,
        "without a hop the unspecified address is just not public"
    );
}
