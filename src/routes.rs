//! Routes: where each device's names were served from, in this run and in a baseline run.
//!
//! Re-routing is a name the device uses moving to another country: within one run ("served
//! from DE earlier, from CN now"), or against a **baseline**, the summary JSON of an earlier
//! run (firmware 1.2 against 1.3 in CI). This module owns both memories; the engine asks it
//! whether a flow's (device, name, country) is news and raises the built-in alerts
//! `name-rerouted`, `baseline-new-country` and `baseline-name-moved`.
//!
//! Guarantees: bounded memory (`ROUTES_MAX_ENTRIES`); each finding is reported once per run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::geoip::CountryCode;

/// (device, name) pairs remembered at most; beyond, new pairs are not tracked (and counted).
pub const ROUTES_MAX_ENTRIES: usize = 262_144;
/// Largest baseline file read.
pub const BASELINE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Id of the alert for a name served from another country than earlier in the run.
pub const NAME_REROUTED: &str = "name-rerouted";
/// Id of the alert for a country the baseline never saw the device send to.
pub const BASELINE_NEW_COUNTRY: &str = "baseline-new-country";
/// Id of the alert for a name served from a country the baseline did not see it served from.
pub const BASELINE_NAME_MOVED: &str = "baseline-name-moved";

/// A baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error(
        "{path}: no summary found: give the JSON output of an earlier `egresswatch replay --json` run (its last line is the summary)"
    )]
    NoSummary { path: String },
}

#[derive(Default, Debug)]
struct BaselineDevice {
    countries: BTreeSet<String>,
    names: HashMap<String, BTreeSet<String>>,
}

/// What an earlier run saw, per device (by name when the policy named it, else by address).
#[derive(Default, Debug)]
pub struct Baseline {
    devices: HashMap<String, BaselineDevice>,
}

impl Baseline {
    /// Reads an earlier run's JSON output (JSON lines; the last `summary` event counts) or a
    /// file holding just the summary object.
    pub fn from_file(path: &Path) -> Result<Baseline, BaselineError> {
        let name = path.display().to_string();
        let read_err = |message: String| BaselineError::Read {
            path: name.clone(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| read_err(e.to_string()))?
            .len();
        if size > BASELINE_MAX_BYTES {
            return Err(read_err(format!(
                "{size} bytes is more than the {BASELINE_MAX_BYTES}-byte limit for a baseline"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        let summary = text
            .lines()
            .rev()
            .filter(|l| l.contains("\"summary\""))
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .filter(|v| v["event_type"] == "summary")
            })
            .ok_or(BaselineError::NoSummary { path: name.clone() })?;
        let mut baseline = Baseline::default();
        for d in summary["devices"].as_array().into_iter().flatten() {
            let key = match (d["device"]["name"].as_str(), d["device"]["ip"].as_str()) {
                (Some(n), _) => format!("name:{n}"),
                (None, Some(ip)) => format!("ip:{ip}"),
                _ => continue,
            };
            let entry = baseline.devices.entry(key).or_default();
            if let Some(countries) = d["countries"].as_object() {
                entry.countries.extend(
                    countries
                        .keys()
                        .filter(|c| CountryCode::new(c).is_some())
                        .cloned(),
                );
            }
            if let Some(names) = d["names"].as_object() {
                for (n, v) in names {
                    let set = entry.names.entry(n.clone()).or_default();
                    for c in v["countries"].as_array().into_iter().flatten() {
                        if let Some(c) = c.as_str().filter(|c| CountryCode::new(c).is_some()) {
                            set.insert(c.to_owned());
                        }
                    }
                }
            }
        }
        Ok(baseline)
    }

    /// The key a device has in a baseline.
    pub fn device_key(name: Option<&str>, ip: IpAddr) -> String {
        match name {
            Some(n) => format!("name:{n}"),
            None => format!("ip:{ip}"),
        }
    }

    /// The device sent to `country`, which the baseline never saw it send to.
    pub fn is_new_country(&self, device: &str, country: CountryCode) -> bool {
        self.devices
            .get(device)
            .is_none_or(|d| !d.countries.contains(country.as_str()))
    }

    /// The countries the baseline saw `name` served from for this device, when it saw the name
    /// and `country` is not among them.
    pub fn name_moved(&self, device: &str, name: &str, country: CountryCode) -> Option<String> {
        let countries = self.devices.get(device)?.names.get(name)?;
        if countries.is_empty() || countries.contains(country.as_str()) {
            return None;
        }
        Some(countries.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// Where each (device, name) was first served from in this run.
#[derive(Default)]
pub struct RouteMemory {
    // foldhash, seeded per process like the flow table's index (fast; a capture cannot choose
    // colliding keys). Nothing iterates these tables, so the hasher decides no order.
    first: HashMap<(IpAddr, Arc<str>), CountryCode, foldhash::fast::RandomState>,
    reported: HashSet<(IpAddr, Arc<str>, CountryCode), foldhash::fast::RandomState>,
    /// Pairs not tracked (and re-routings not remembered as reported) because the memory was
    /// full.
    pub untracked: u64,
    /// Entries of each table at most; `None`: [`ROUTES_MAX_ENTRIES`].
    pub cap: Option<usize>,
}

impl RouteMemory {
    /// A memory of at most `cap` pairs (and `cap` reported re-routings).
    pub fn with_cap(cap: usize) -> RouteMemory {
        RouteMemory {
            cap: Some(cap),
            ..RouteMemory::default()
        }
    }

    /// Notes that `device` reached `name` in `country`. Returns the earlier country when this is
    /// the first time the name shows up in a different one.
    pub fn observe(
        &mut self,
        device: IpAddr,
        name: &Arc<str>,
        country: CountryCode,
    ) -> Option<CountryCode> {
        let cap = self.cap.unwrap_or(ROUTES_MAX_ENTRIES);
        match self.first.get(&(device, name.clone())) {
            None => {
                if self.first.len() >= cap {
                    self.untracked += 1;
                } else {
                    self.first.insert((device, name.clone()), country);
                }
                None
            }
            Some(&earlier) if earlier != country => {
                let key = (device, name.clone(), country);
                if self.reported.len() >= cap && !self.reported.contains(&key) {
                    // Not remembered: counted, and not reported (it could not be reported
                    // only once).
                    self.untracked += 1;
                    return None;
                }
                self.reported.insert(key).then_some(earlier)
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::new(s).unwrap()
    }

    #[test]
    fn the_route_memory_stays_within_its_cap_and_counts_what_it_forgets() {
        let mut m = RouteMemory::with_cap(5);
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        let names: Vec<Arc<str>> = (0..20)
            .map(|i| Arc::from(format!("n{i}.example")))
            .collect();
        for name in &names {
            assert_eq!(m.observe(dev, name, cc("DE")), None);
        }
        assert_eq!(m.untracked, 15, "pairs past the cap are counted");
        // A remembered pair still reports its move; a forgotten one cannot.
        assert_eq!(m.observe(dev, &names[0], cc("CN")), Some(cc("DE")));
        assert_eq!(m.observe(dev, &names[19], cc("CN")), None);
        assert_eq!(m.untracked, 16);
    }

    #[test]
    fn a_name_moving_country_is_reported_once() {
        let mut m = RouteMemory::default();
        let dev: IpAddr = "192.168.1.50".parse().unwrap();
        let name: Arc<str> = Arc::from("api.vendor.example");
        assert_eq!(m.observe(dev, &name, cc("DE")), None);
        assert_eq!(m.observe(dev, &name, cc("DE")), None);
        assert_eq!(m.observe(dev, &name, cc("CN")), Some(cc("DE")));
        assert_eq!(m.observe(dev, &name, cc("CN")), None);
        let other: IpAddr = "192.168.1.60".parse().unwrap();
        assert_eq!(m.observe(other, &name, cc("CN")), None, "per device");
    }

    #[test]
    fn baseline_from_a_summary_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"event_type\":\"flow\"}\n",
                "{\"event_type\":\"summary\",\"devices\":[{\"device\":{\"ip\":\"192.168.1.50\",\"name\":\"cam\"},",
                "\"countries\":{\"DE\":{},\"non-public\":{}},",
                "\"names\":{\"api.vendor.example\":{\"countries\":[\"DE\"]}}}]}\n"
            ),
        )
        .unwrap();
        let b = Baseline::from_file(&path).unwrap();
        let cam = Baseline::device_key(Some("cam"), "192.168.1.50".parse().unwrap());
        assert!(!b.is_new_country(&cam, cc("DE")));
        assert!(b.is_new_country(&cam, cc("CN")));
        assert_eq!(
            b.name_moved(&cam, "api.vendor.example", cc("CN"))
                .as_deref(),
            Some("DE")
        );
        assert_eq!(b.name_moved(&cam, "api.vendor.example", cc("DE")), None);
        assert_eq!(b.name_moved(&cam, "new.example", cc("CN")), None);
        let unknown = dir.path().join("none.jsonl");
        std::fs::write(&unknown, "{\"event_type\":\"flow\"}\n").unwrap();
        assert!(matches!(
            Baseline::from_file(&unknown),
            Err(BaselineError::NoSummary { .. })
        ));
    }
}
