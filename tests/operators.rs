//! Operator groups in the policy: `[operators]`, `include_operators`, the `operators` and
//! `not_operators` conditions and the `deny_operators` shorthand; and the example group against
//! a real capture.

mod common;

use std::net::IpAddr;
use std::path::Path;

use egresswatch::decode::Transport;
use egresswatch::policy::{CliRules, DENY_OPERATORS_RULE, Policy, Subject};

fn subject(asn: Option<u32>, as_org: Option<&'static str>) -> Subject<'static> {
    Subject {
        asn,
        as_org,
        ..Subject::bare(
            "192.168.1.50".parse::<IpAddr>().unwrap(),
            "8.209.73.197".parse::<IpAddr>().unwrap(),
            Some(443),
            Transport::Tcp,
        )
    }
}

fn decide(p: &Policy, s: &Subject<'_>) -> Option<String> {
    p.evaluate(s)
        .and_then(|i| p.rules().get(i))
        .map(|r| r.id.clone())
}

const GROUPS: &str = r#"
[operators]
cn = { asns = [45102, 37963], orgs = ["*alibaba*", "Tencent*"], source = "test" }
cdn = { asns = [13335] }

[[rules]]
id = "in-cn"
operators = ["cn"]

[[rules]]
id = "not-cn-or-cdn"
not_operators = ["CN", "cdn"]
"#;

#[test]
fn operator_conditions_truth_table() {
    let p = Policy::from_toml(GROUPS, "p.toml").unwrap();
    let cases: &[(Option<u32>, Option<&'static str>, Option<&str>)] = &[
        // Listed ASN, whatever the name.
        (Some(45102), None, Some("in-cn")),
        (Some(37963), Some("Some other name"), Some("in-cn")),
        // Name patterns: case-insensitive, `*` anywhere.
        (
            None,
            Some("Alibaba (US) Technology Co., Ltd."),
            Some("in-cn"),
        ),
        (Some(1), Some("HANGZHOU ALIBABA ADVERTISING"), Some("in-cn")),
        (Some(2), Some("tencent cloud"), Some("in-cn")),
        // "Tencent*" is anchored at the start.
        (Some(3), Some("Shenzhen Tencent"), Some("not-cn-or-cdn")),
        // In the other group: neither rule.
        (Some(13335), Some("Cloudflare, Inc."), None),
        // Known, in no group.
        (Some(15169), Some("Google LLC"), Some("not-cn-or-cdn")),
        (Some(15169), None, Some("not-cn-or-cdn")),
        (None, Some("Google LLC"), Some("not-cn-or-cdn")),
        // Unknown operator: neither condition holds.
        (None, None, None),
    ];
    for (asn, org, want) in cases {
        assert_eq!(
            decide(&p, &subject(*asn, *org)).as_deref(),
            *want,
            "asn {asn:?}, org {org:?}"
        );
    }
    let group = p.operator_group("CN").unwrap();
    assert_eq!(group.asns, [37963, 45102]);
    assert_eq!(group.orgs, ["*alibaba*", "tencent*"]);
    assert_eq!(group.source.as_deref(), Some("test"));
}

#[test]
fn deny_operators_is_a_high_rule_after_the_command_line_rules() {
    let text = format!("deny_operators = [\"cn\"]\n{GROUPS}");
    let cli = CliRules {
        deny_countries: vec!["RU".to_owned()],
        ..CliRules::default()
    };
    let p = Policy::from_toml_with_cli(&text, "p.toml", &cli).unwrap();
    let ids: Vec<&str> = p.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cli-deny-country",
            DENY_OPERATORS_RULE,
            "in-cn",
            "not-cn-or-cdn"
        ]
    );
    let rule = &p.rules()[1];
    assert_eq!(rule.severity, egresswatch::policy::Severity::High);
    let s = subject(Some(45102), Some("Alibaba (US) Technology Co., Ltd."));
    assert_eq!(decide(&p, &s).as_deref(), Some(DENY_OPERATORS_RULE));
    assert_eq!(
        rule.reason(&s),
        "192.168.1.50 sent data to 8.209.73.197 operated by AS45102 \"Alibaba (US) Technology Co., Ltd.\", in operator group cn denied by rule deny-operators"
    );
}

fn err(text: &str) -> String {
    Policy::from_toml(text, "p.toml").unwrap_err().to_string()
}

#[test]
fn operator_group_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "[operators]\nx = {}\n",
            "p.toml:2:5: operator group \"x\" lists neither asns nor orgs",
        ),
        (
            "[operators]\nx = { asns = [-1] }\n",
            "p.toml:2:15: ASN -1 is out of range",
        ),
        (
            "[operators]\nx = { orgs = [\"**\"] }\n",
            "p.toml:2:15: \"**\" alone would match every organisation",
        ),
        (
            "[operators]\nx = { orgs = [] }\n",
            "p.toml:2:14: orgs is an empty list",
        ),
        (
            "[operators]\nx = { asns = [1], nets = [] }\n",
            "p.toml:2:19: unknown key `nets`",
        ),
        (
            "deny_operators = [\"nope\"]\n",
            "p.toml:1:19: unknown operator group \"nope\": no operator groups are defined",
        ),
        (
            "deny_operators = [\"nope\"]\n[operators]\nx = { asns = [1] }\n",
            "p.toml:1:19: unknown operator group \"nope\": the operator groups are x",
        ),
        (
            "[[rules]]\nid = \"deny-operators\"\n",
            "p.toml:2:6: rule id \"deny-operators\" is the rule made from deny_operators",
        ),
        (
            "[operators]\nx = { asns = [1] }\n[[rules]]\nid = \"r\"\nnot_operators = [\"y\"]\n",
            "p.toml:5:18: unknown operator group \"y\"",
        ),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
    }
}

#[test]
fn include_operators_relative_to_the_policy_with_errors_in_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ops")).unwrap();
    let policy = dir.path().join("p.toml");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let load = || Policy::from_file(&policy);
    write(
        "p.toml",
        "include_operators = [\"ops/a.toml\"]\ndeny_operators = [\"a\"]\n",
    );

    write(
        "ops/a.toml",
        "# groups\n[operators.a]\nasns = [4134]\norgs = [\"chinanet*\"]\n",
    );
    let p = load().unwrap();
    assert_eq!(p.operators().len(), 1);
    assert_eq!(p.rules()[0].id, DENY_OPERATORS_RULE);

    let inc = dir.path().join("ops/a.toml").display().to_string();
    let pol = policy.display().to_string();
    let cases: &[(&str, String)] = &[
        (
            "[operators.a]\nasns = [4134]\norgs = [\"\"]\n",
            format!("{inc}:3:9: empty organisation pattern"),
        ),
        ("[operators.a]\nasns = [4134, \"x\"]\n", format!("{inc}:2:")),
        (
            "[operators.a]\nasns = [99999999999]\n",
            format!("{inc}:2:9: ASN 99999999999 is out of range"),
        ),
        ("[rules]\n", format!("{inc}:1:")),
        (
            "",
            format!("{inc}:0:0: the file defines no operator groups"),
        ),
        (
            "[operators.b]\nasns = [1]\n",
            format!("{pol}:2:19: unknown operator group \"a\": the operator groups are b"),
        ),
    ];
    for (text, want) in cases {
        write("ops/a.toml", text);
        let e = load().unwrap_err().to_string();
        assert!(
            e.starts_with(want.as_str()),
            "{text:?}\n got: {e}\nwant: {want}"
        );
    }

    // A group defined in the policy and again in the included file.
    write("ops/a.toml", "[operators.A]\nasns = [1]\n");
    write(
        "p.toml",
        "include_operators = [\"ops/a.toml\"]\n[operators]\na = { asns = [2] }\n",
    );
    let e = load().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{inc}:1:12: operator group \"A\" is already defined at {pol}:3:1"
        )),
        "{e}"
    );

    // A missing file is reported at the item in the policy.
    write("p.toml", "\ninclude_operators = [\"ops/missing.toml\"]\n");
    let e = load().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{pol}:2:22: cannot read the operator groups file")),
        "{e}"
    );
}

#[test]
fn example_group_file_loads_and_names_the_operators() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Policy::from_file(&root.join("examples/policy.toml")).unwrap();
    let group = p.operator_group("china-headquartered").unwrap();
    for asn in [
        37963, 45102, 24429, 134963, 45090, 132203, 136907, 55990, 38365, 55967, 4134, 4809, 23764,
        4837, 9929, 10099, 9808, 56040, 58453,
    ] {
        assert!(group.asns.contains(&asn), "AS{asn}");
    }
    assert!(group.source.is_some());
    // The unrelated travel agency named "Alibaba Travel Company (LTD)" is not caught.
    let travel = subject(Some(34947), Some("Alibaba Travel Company (LTD)"));
    assert_ne!(decide(&p, &travel).as_deref(), Some(DENY_OPERATORS_RULE));
    let province = subject(
        Some(134774),
        Some("CHINANET Guangdong province Shenzhen MAN network"),
    );
    assert_eq!(decide(&p, &province).as_deref(), Some(DENY_OPERATORS_RULE));
}

#[test]
fn dingtalk_capture_alerts_on_the_operator_not_on_the_country() {
    let Some(shared) = common::shared() else {
        return;
    };
    let capture = shared.join("pcaps/ndpi_dingtalk.pcap");
    let capture = capture.to_str().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = root.join("examples/policy.toml");
    let r = common::run(&[
        "replay",
        capture,
        "--policy",
        policy.to_str().unwrap(),
        "--json",
        "-",
        "--events",
        "alert",
        "--no-terminal",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let alerts: Vec<_> = r
        .events("alert")
        .into_iter()
        .filter(|a| a["rule"]["id"] == DENY_OPERATORS_RULE)
        .collect();
    // Two flows: 47.246.133.39 (AS45102 Alibaba, geolocated outside CN) is caught; 104.166.182.25
    // (static.dingtalk.com on AS21859 Zenlayer, a US CDN) is not.
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    assert_eq!(alerts[0]["remote"]["ip"], "47.246.133.39");
    assert_eq!(alerts[0]["remote"]["asn"], 45102);
    // Whatever country the embedded data places it in, it is the lookup's answer and not CN.
    let looked_up = common::run(&["lookup", "47.246.133.39"]).json().remove(0);
    assert_eq!(alerts[0]["remote"]["country"], looked_up["country"]);
    assert_ne!(alerts[0]["remote"]["country"], "CN");

    // The same capture with only --deny-country CN: no alert, since no remote is placed in CN.
    let r = common::run(&[
        "replay",
        capture,
        "--deny-country",
        "CN",
        "--json",
        "-",
        "--events",
        "alert",
        "--no-terminal",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.events("alert").is_empty(), "{}", r.stdout);
}
