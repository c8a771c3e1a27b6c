//! Wires source → decode → flow → geoip → policy → event → sink.
