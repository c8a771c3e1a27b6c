//! JUnit XML: a test case per (alert rule, device), failed where the rule alerted, for CI
//! dashboards.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::event::Summary;

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows only TAB, LF and CR among the control characters.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report: `rules` are the ids of every alerting rule of the policy.
pub fn write_junit(summary: &Summary, rules: &[String]) -> String {
    let mut cases = String::new();
    let mut tests = 0;
    let mut failures = 0;
    let mut rule_ids: BTreeSet<&str> = rules.iter().map(String::as_str).collect();
    for d in &summary.devices {
        rule_ids.extend(d.alerts.keys().map(String::as_str));
    }
    for d in &summary.devices {
        let device = match &d.device.name {
            Some(name) => format!("{name} ({})", d.device.ip),
            None => d.device.ip.to_string(),
        };
        for rule in &rule_ids {
            tests += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"egresswatch.{}\" name=\"{}\"",
                xml_escape(rule),
                xml_escape(&device)
            );
            match d.alerts.get(*rule) {
                Some(n) => {
                    failures += 1;
                    let countries: Vec<&str> = d.countries.keys().map(String::as_str).collect();
                    let _ = write!(
                        cases,
                        ">\n      <failure type=\"{}\" message=\"rule {} alerted {} time(s) ({} more suppressed)\">device {} sent data to: {}</failure>\n    </testcase>\n",
                        xml_escape(&n.severity),
                        xml_escape(rule),
                        n.alerts,
                        n.suppressed,
                        xml_escape(&device),
                        xml_escape(&countries.join(", "))
                    );
                }
                None => cases.push_str("/>\n"),
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"egresswatch\" tests=\"{tests}\" failures=\"{failures}\">\n  <testsuite name=\"egresswatch policy {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" timestamp=\"{}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml_escape(&summary.policy),
        summary.timestamp.map(|t| t.to_string()).unwrap_or_default()
    )
}
