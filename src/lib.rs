//! egresswatch: a network egress monitor.
//!
//! It reads packets (from capture files, later live interfaces), decodes them, groups them into
//! bidirectional flows with a device side and a remote side, tags every remote with its country and
//! operator from MaxMind-format databases, checks each flow against a policy and emits alerts, flow
//! records and a summary as JSON lines.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! capture ──► decode ──► flow ──► geoip ──► policy ──► event ──► sink
//! ```
//!
//! [`engine`] is the only module that knows the whole order. The CLI lives in the binary.

pub mod capture;
pub mod craft;
pub mod decode;
pub mod engine;
pub mod event;
pub mod flood;
pub mod flow;
pub mod geoip;
pub mod limits;
pub mod names;
pub mod policy;
pub mod reroute;
pub mod resolvers;
pub mod routes;
pub mod sink;
