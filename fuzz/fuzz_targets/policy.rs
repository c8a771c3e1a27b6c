//! `Policy::from_toml` on the bytes read as UTF-8 (lossy); a policy that compiles is asked what
//! it needs and evaluated against a few flows, and its error message is rendered otherwise.
#![no_main]

use std::net::IpAddr;

use egresswatch::decode::Transport;
use egresswatch::geoip::CountryCode;
use egresswatch::policy::{Policy, Subject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Policy::from_toml(&text, "fuzz.toml") {
        Ok(policy) => {
            std::hint::black_box(policy.needs());
            std::hint::black_box(policy.bytes_thresholds());
            std::hint::black_box(policy.device_networks());
            std::hint::black_box(policy.device_macs());
            let device_ip: IpAddr = [192, 168, 1, 10].into();
            let device = policy.device(device_ip, None);
            for (remote, country, host) in [
                ("203.205.151.162", "CN", Some("res.wx.qq.com")),
                ("8.8.8.8", "US", None),
                ("2a00:1450::1", "DE", Some("www.google.de")),
            ] {
                let subject = Subject {
                    device,
                    device_ip,
                    remote_ip: remote.parse().unwrap_or(device_ip),
                    remote_port: Some(443),
                    transport: Transport::from_ip_proto(6),
                    country: CountryCode::new(country),
                    asn: Some(4134),
                    as_org: Some("CHINANET-BACKBONE"),
                    hostname: host,
                    queried_name: host,
                    encrypted: Some(host.is_none()),
                    bytes_out: 1 << 20,
                    country_bytes_out: 1 << 24,
                    name_bytes_out: 1 << 22,
                    dns_named: Some(false),
                    app_proto: Some(egresswatch::names::AppProto::Syslog),
                    via_kind: host.map(|_| "socks5"),
                    via_ip: Some(device_ip),
                    via_country: CountryCode::new(country),
                    resolver: Some(egresswatch::resolvers::ResolverKind::Dns),
                };
                if let Some(id) = policy.alert(&subject) {
                    std::hint::black_box(id);
                }
                for rule in policy.rules() {
                    if rule.matches(&subject) {
                        std::hint::black_box(rule.reason(&subject));
                    }
                }
            }
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});
