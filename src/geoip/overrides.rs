//! Lab overrides: CIDR blocks whose answers win over every database, longest prefix first.
//!
//! The table groups overrides by prefix length, longest first, with one hash map per length keyed
//! by the masked network address; a lookup costs one hash probe per distinct prefix length in use
//! and allocates nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::{CountryCode, GeoOverride};

/// The answer one override gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OverrideAnswer {
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
    /// The overlay row's label, if it has one (policy overrides have none).
    pub label: Option<Arc<str>>,
}

/// Overrides compiled for lookup.
#[derive(Debug, Default)]
pub(crate) struct OverrideTable {
    /// (prefix length, masked network → answer) for IPv4, longest prefix first.
    v4: Vec<(u8, HashMap<IpAddr, OverrideAnswer>)>,
    /// The same for IPv6.
    v6: Vec<(u8, HashMap<IpAddr, OverrideAnswer>)>,
    len: usize,
}

impl OverrideTable {
    /// Compiles `overrides`. When two have the same network, the later one wins, as a later line
    /// of a configuration file does.
    pub fn new(overrides: Vec<GeoOverride>) -> OverrideTable {
        Self::with_labels(overrides.into_iter().map(|o| (o, None)).collect())
    }

    /// [`OverrideTable::new`] for entries that may carry a label.
    pub fn with_labels(entries: Vec<(GeoOverride, Option<String>)>) -> OverrideTable {
        let mut table = OverrideTable::default();
        for (o, label) in entries {
            let net = o.net.trunc();
            let answer = OverrideAnswer {
                country: o.country,
                asn: o.asn,
                as_org: o.as_org.map(Arc::from),
                label: label.map(Arc::from),
            };
            let levels = match net {
                IpNet::V4(_) => &mut table.v4,
                IpNet::V6(_) => &mut table.v6,
            };
            let prefix_len = net.prefix_len();
            let position = match levels.iter().position(|(len, _)| *len <= prefix_len) {
                Some(i) if levels.get(i).is_some_and(|(len, _)| *len == prefix_len) => i,
                Some(i) => {
                    levels.insert(i, (prefix_len, HashMap::new()));
                    i
                }
                None => {
                    levels.push((prefix_len, HashMap::new()));
                    levels.len() - 1
                }
            };
            if let Some((_, map)) = levels.get_mut(position)
                && map.insert(net.network(), answer).is_none()
            {
                table.len += 1;
            }
        }
        table
    }

    /// How many distinct networks the table holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The answer of the longest override containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&OverrideAnswer> {
        let levels = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        levels.iter().find_map(|(prefix_len, map)| {
            let network = IpNet::new(ip, *prefix_len).ok()?.network();
            map.get(&network)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(net: &str, country: &str) -> GeoOverride {
        GeoOverride {
            net: net.parse().unwrap(),
            country: CountryCode::new(country),
            asn: None,
            as_org: None,
        }
    }

    fn country(table: &OverrideTable, ip: &str) -> Option<CountryCode> {
        table.lookup(ip.parse().unwrap()).and_then(|a| a.country)
    }

    #[test]
    fn longest_prefix_wins_in_any_order() {
        let table = OverrideTable::new(vec![
            entry("198.18.0.0/15", "DE"),
            entry("198.18.5.0/24", "FR"),
            entry("0.0.0.0/0", "SE"),
            entry("198.18.5.7/32", "JP"),
            entry("2001:db8::/32", "US"),
            entry("2001:db8:1::/48", "CA"),
        ]);
        assert_eq!(table.len(), 6);
        assert_eq!(country(&table, "198.18.0.5"), CountryCode::new("DE"));
        assert_eq!(country(&table, "198.18.5.1"), CountryCode::new("FR"));
        assert_eq!(country(&table, "198.18.5.7"), CountryCode::new("JP"));
        assert_eq!(country(&table, "8.8.8.8"), CountryCode::new("SE"));
        assert_eq!(country(&table, "2001:db8::1"), CountryCode::new("US"));
        assert_eq!(country(&table, "2001:db8:1::1"), CountryCode::new("CA"));
        assert_eq!(country(&table, "2001:db9::1"), None);
    }

    #[test]
    fn host_bits_are_ignored_and_later_duplicates_win() {
        let table = OverrideTable::new(vec![entry("10.1.2.3/8", "DE"), entry("10.0.0.0/8", "FR")]);
        assert_eq!(table.len(), 1);
        assert_eq!(country(&table, "10.200.0.1"), CountryCode::new("FR"));
        assert_eq!(country(&table, "11.0.0.1"), None);
    }

    proptest::proptest! {
        #[test]
        fn an_address_matches_its_own_network(raw: u32, len in 0u8..=32) {
            let ip = IpAddr::V4(raw.into());
            let net = IpNet::new(ip, len).unwrap();
            let table = OverrideTable::new(vec![GeoOverride {
                net, country: CountryCode::new("DE"), asn: None, as_org: None,
            }]);
            proptest::prop_assert!(table.lookup(ip).is_some());
        }
    }
}
