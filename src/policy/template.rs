//! Reason templates: `"{device} sent data to {remote} in {country}"`.
//!
//! A template is parsed once, at load time, into pieces; an unknown placeholder or a stray brace
//! is a load error. Rendering happens once per alert and never fails.

use std::fmt::Write as _;

use super::Subject;
use super::matcher::Conditions;

/// The placeholders a reason may use, as written in the file.
pub const PLACEHOLDERS: &[&str] = &[
    "device",
    "device_ip",
    "remote",
    "port",
    "transport",
    "country",
    "asn",
    "as_org",
    "rule",
    "hostname",
    "bytes_out",
    "app_proto",
    "via",
];

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Device,
    DeviceIp,
    Remote,
    Port,
    Transport,
    Country,
    Asn,
    AsOrg,
    Rule,
    Hostname,
    BytesOut,
    /// `tcp/443`, or just `icmp` for transports without ports (generated reasons only).
    TransportPort,
    /// `example.com (192.0.2.7)`, or just `192.0.2.7` without a name (generated reasons only).
    NamedRemote,
    /// `AS45102 "Alibaba (US) Technology Co., Ltd."`, either part left out when unknown, or
    /// `unknown operator` (generated reasons only).
    Operator,
    /// The flow's `app_proto`, `unknown` before one is known.
    AppProto,
    /// `socks5 198.51.100.7 in DE`, `none` without a hop.
    Via,
    /// `, via gre 203.0.113.5 in CN` or `, redirected by 198.18.2.20 in DE`; nothing without a
    /// hop (ends every generated reason).
    ViaSuffix,
}

/// A parsed reason template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

/// Why a template does not parse: a message and the byte offset in the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    /// The placeholder as written (`{foo}`), to find it in the file; empty for brace errors.
    pub token: String,
    pub message: String,
}

fn placeholder_help() -> String {
    let names: Vec<String> = PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
    format!(
        "use {}; write {{{{ or }}}} for a literal brace",
        names.join(", ")
    )
}

impl Template {
    /// Parses `text`; `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((offset, c)) = rest.next() {
            match c {
                '{' if rest.peek().is_some_and(|(_, n)| *n == '{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().is_some_and(|(_, n)| *n == '}') => {
                    rest.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError {
                        offset,
                        token: String::new(),
                        message: format!("stray '}}' in reason: {}", placeholder_help()),
                    });
                }
                '{' => {
                    let body_start = offset + 1;
                    let Some(len) = text.get(body_start..).and_then(|t| t.find('}')) else {
                        return Err(TemplateError {
                            offset,
                            token: String::new(),
                            message: format!("unclosed '{{' in reason: {}", placeholder_help()),
                        });
                    };
                    let name = text.get(body_start..body_start + len).unwrap_or_default();
                    let piece = match name {
                        "device" => Piece::Device,
                        "device_ip" => Piece::DeviceIp,
                        "remote" => Piece::Remote,
                        "port" => Piece::Port,
                        "transport" => Piece::Transport,
                        "country" => Piece::Country,
                        "asn" => Piece::Asn,
                        "as_org" => Piece::AsOrg,
                        "rule" => Piece::Rule,
                        "hostname" => Piece::Hostname,
                        "bytes_out" => Piece::BytesOut,
                        "app_proto" => Piece::AppProto,
                        "via" => Piece::Via,
                        _ => {
                            return Err(TemplateError {
                                offset,
                                token: format!("{{{name}}}"),
                                message: format!(
                                    "unknown placeholder {{{name}}} in reason: {}",
                                    placeholder_help()
                                ),
                            });
                        }
                    };
                    // Skip the name and the closing brace.
                    while rest.peek().is_some_and(|(o, _)| *o <= body_start + len) {
                        rest.next();
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    /// The reason generated for a rule without one, chosen by its main condition: the first
    /// of `hardcoded = true`, `plaintext`, `bytes_out_over`, `domains`, `not_domains`,
    /// `unknown_domain = true`, `operators`, `not_operators`, `countries`, `not_countries`,
    /// `unknown_country = true` it has.
    pub fn generated(c: &Conditions) -> Template {
        let text = |s: &str| Piece::Text(s.to_owned());
        let pieces: Vec<Piece> = if c.hardcoded == Some(true) {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::NamedRemote,
                text(", an address no DNS answer named (rule "),
                Piece::Rule,
                text(")"),
            ]
        } else if let Some(plain) = c.plaintext {
            vec![
                Piece::Device,
                text(if plain {
                    " sent unencrypted data to "
                } else {
                    " sent encrypted data to "
                }),
                Piece::NamedRemote,
                text(" ("),
                Piece::TransportPort,
                text("), matched rule "),
                Piece::Rule,
            ]
        } else if let Some(limit) = c.country_bytes_out_over {
            vec![
                Piece::Device,
                Piece::Text(format!(" has sent more than {limit} bytes to ")),
                Piece::Country,
                text(" in this run (latest: "),
                Piece::NamedRemote,
                text("), rule "),
                Piece::Rule,
            ]
        } else if let Some(limit) = c.name_bytes_out_over {
            vec![
                Piece::Device,
                Piece::Text(format!(" has sent more than {limit} bytes to ")),
                Piece::Hostname,
                text(" in this run (latest: "),
                Piece::Remote,
                text("), rule "),
                Piece::Rule,
            ]
        } else if let Some(limit) = c.bytes_out_over {
            vec![
                Piece::Device,
                text(" sent "),
                Piece::BytesOut,
                text(" bytes to "),
                Piece::NamedRemote,
                text(", more than rule "),
                Piece::Rule,
                Piece::Text(format!(" allows ({limit} bytes)")),
            ]
        } else if c.app_protos.is_some() || c.not_app_protos.is_some() {
            vec![
                Piece::Device,
                text(" sent "),
                Piece::AppProto,
                text(" to "),
                Piece::NamedRemote,
                text(" ("),
                Piece::TransportPort,
                text(if c.app_protos.is_some() {
                    "), a protocol denied by rule "
                } else {
                    "), outside the protocols allowed by rule "
                }),
                Piece::Rule,
            ]
        } else if !c.domains.is_empty() || !c.not_domains.is_empty() {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::Hostname,
                text(" ("),
                Piece::Remote,
                text(if c.domains.is_empty() {
                    "), outside the names allowed by rule "
                } else {
                    "), a name denied by rule "
                }),
                Piece::Rule,
            ]
        } else if c.unknown_domain == Some(true) {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::Remote,
                text(", an address with no known name, matched rule "),
                Piece::Rule,
            ]
        } else if let Some(ops) = c.operators.as_ref().or(c.not_operators.as_ref()) {
            let groups = ops.names.join(", ");
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::NamedRemote,
                text(" operated by "),
                Piece::Operator,
                Piece::Text(if c.operators.is_some() {
                    format!(", in operator group {groups} denied by rule ")
                } else {
                    format!(", outside the operator groups ({groups}) allowed by rule ")
                }),
                Piece::Rule,
            ]
        } else if c.countries.is_some() || c.not_countries.is_some() {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::Remote,
                text(" in "),
                Piece::Country,
                text(if c.countries.is_some() {
                    ", a country denied by rule "
                } else {
                    ", outside the countries allowed by rule "
                }),
                Piece::Rule,
            ]
        } else if c.unknown_country == Some(true) {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::Remote,
                text(" whose country no database knows, matched rule "),
                Piece::Rule,
            ]
        } else {
            vec![
                Piece::Device,
                text(" sent data to "),
                Piece::Remote,
                text(" ("),
                Piece::TransportPort,
                text("), matched rule "),
                Piece::Rule,
            ]
        };
        let mut pieces = pieces;
        pieces.push(Piece::ViaSuffix);
        Template(pieces)
    }

    /// Fills the template in for one flow.
    pub fn render(&self, rule: &str, s: &Subject<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            // Writing to a String cannot fail.
            let _ = match piece {
                Piece::Text(t) => out.write_str(t),
                Piece::Device => match s.device {
                    Some(d) => out.write_str(&d.name),
                    None => write!(out, "{}", s.device_ip),
                },
                Piece::DeviceIp => write!(out, "{}", s.device_ip),
                Piece::Remote if unresolved(s) => {
                    out.write_str(name(s).unwrap_or("an unresolved name"))
                }
                Piece::Remote => write!(out, "{}", s.remote_ip),
                Piece::Port => match s.remote_port {
                    Some(p) => write!(out, "{p}"),
                    None => out.write_str("none"),
                },
                Piece::Transport => write!(out, "{}", s.transport),
                Piece::Country => match s.country {
                    Some(c) => out.write_str(c.as_str()),
                    None => out.write_str("unknown"),
                },
                Piece::Asn => match s.asn {
                    Some(a) => write!(out, "{a}"),
                    None => out.write_str("unknown"),
                },
                Piece::AsOrg => out.write_str(s.as_org.unwrap_or("unknown")),
                Piece::Operator => match (s.asn, s.as_org) {
                    (Some(a), Some(o)) => write!(out, "AS{a} {o:?}"),
                    (Some(a), None) => write!(out, "AS{a}"),
                    (None, Some(o)) => write!(out, "{o:?}"),
                    (None, None) => out.write_str("an unknown operator"),
                },
                Piece::Rule => out.write_str(rule),
                Piece::Hostname => out.write_str(name(s).unwrap_or("unknown")),
                Piece::BytesOut => write!(out, "{}", s.bytes_out),
                Piece::NamedRemote if unresolved(s) => match name(s) {
                    Some(n) => write!(out, "{n} (address unknown)"),
                    None => out.write_str("an unresolved name"),
                },
                Piece::NamedRemote => match name(s) {
                    Some(n) => write!(out, "{n} ({})", s.remote_ip),
                    None => write!(out, "{}", s.remote_ip),
                },
                Piece::TransportPort => match s.remote_port {
                    Some(p) if s.transport.has_ports() => write!(out, "{}/{p}", s.transport),
                    _ => write!(out, "{}", s.transport),
                },
                Piece::AppProto => out.write_str(s.app_proto.map_or("unknown", |p| p.as_str())),
                Piece::Via => via_text(&mut out, s, "none"),
                Piece::ViaSuffix => match s.via_kind {
                    Some("redirect") => {
                        let r = out.write_str(", redirected by ");
                        r.and_then(|()| via_where(&mut out, s))
                    }
                    Some(_) => {
                        let r = out.write_str(", via ");
                        r.and_then(|()| via_text(&mut out, s, ""))
                    }
                    None => Ok(()),
                },
            };
        }
        out
    }
}

/// A proxied or redirected flow whose target is known only by name.
fn unresolved(s: &Subject<'_>) -> bool {
    s.via_kind.is_some() && s.remote_ip.is_unspecified()
}

/// `gre 203.0.113.5 in CN`; `none` (or `absent`) without a hop.
fn via_text(out: &mut String, s: &Subject<'_>, absent: &str) -> std::fmt::Result {
    match s.via_kind {
        Some(kind) => {
            write!(out, "{kind} ")?;
            via_where(out, s)
        }
        None => out.write_str(absent),
    }
}

/// `203.0.113.5 in CN`, or just the address when its country is unknown.
fn via_where(out: &mut String, s: &Subject<'_>) -> std::fmt::Result {
    match (s.via_ip, s.via_country) {
        (Some(ip), Some(c)) => write!(out, "{ip} in {c}"),
        (Some(ip), None) => write!(out, "{ip}"),
        (None, _) => Ok(()),
    }
}

/// The remote's name for reasons: its hostname, else the name queried in DNS.
fn name<'a>(s: &Subject<'a>) -> Option<&'a str> {
    s.hostname
        .filter(|n| !n.is_empty())
        .or(s.queried_name.filter(|n| !n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        assert!(Template::parse("{device} to {remote} {{x}}").is_ok());
        let e = Template::parse("to {nope} x").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (3, "{nope}"));
        assert!(
            e.message
                .starts_with("unknown placeholder {nope} in reason: use {device}")
        );
        assert_eq!(Template::parse("a } b").unwrap_err().offset, 2);
        assert_eq!(Template::parse("a {device").unwrap_err().offset, 2);
        assert_eq!(Template::parse("é{rule}").unwrap().0.len(), 2);
    }
}
