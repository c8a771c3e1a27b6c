//! Writing captures: a small pcap / pcapng writer for evidence files and test fixtures.
