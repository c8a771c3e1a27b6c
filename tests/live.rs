//! `egresswatch live` on real traffic between two network namespaces.
//!
//! Each test makes its own pair of namespaces joined by a veth pair: the device under test
//! (198.18.0.10) in one, the remote test hosts (198.18.1.20, 198.18.1.21, placed in CN by the
//! fixture's override) in the other. `egresswatch live` runs in the device's namespace on its veth
//! end; the test sends UDP datagrams and a TCP connection from threads that joined the
//! namespaces (`setns`), then reads the JSON output. Only 198.18.0.0/15 (and, in the IPv6 test,
//! 2001:db8::/32) is ever addressed. Tests that take a backend run once per backend this build
//! has (afpacket; libpcap with `--features libpcap`).
//!
//! They need root and iproute2 (`ip`); otherwise they print why and pass without checking. The
//! namespaces are deleted by a guard even when a test fails.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_egresswatch");
const DUT: &str = "198.18.0.10";
const REMOTE_UDP: &str = "198.18.1.20";
const REMOTE_TCP: &str = "198.18.1.21";
/// The veth end in the device's namespace, where `live` captures.
const DUT_IFACE: &str = "ewdut";
const REMOTE_IFACE: &str = "ewremote";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    dut: String,
    remote: String,
}

impl Lab {
    /// The lab, or `None` (with a printed reason) where it cannot be made.
    fn new(test: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!(
                "SKIPPED {test}: live capture tests need root (network namespaces, AF_PACKET)"
            );
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!(
                "SKIPPED {test}: iproute2's `ip` is not installed (apt-get install iproute2)"
            );
            return None;
        }
        let id = std::process::id();
        let lab = Lab {
            dut: format!("ewl-{id}-{test}-dut"),
            remote: format!("ewl-{id}-{test}-rem"),
        };
        if let Err(e) = ip(&["netns", "add", &lab.dut]) {
            eprintln!("SKIPPED {test}: cannot create a network namespace: {e}");
            return None;
        }
        if let Err(e) = lab.build() {
            panic!("lab setup failed: {e}");
        }
        Some(lab)
    }

    fn build(&self) -> Result<(), String> {
        ip(&["netns", "add", &self.remote])?;
        for ns in [&self.dut, &self.remote] {
            // No IPv6: router solicitations and DAD would add flows the tests do not expect.
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sh", "-c"])
                .arg(
                    "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; \
                     echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
                )
                .status();
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            &self.dut,
            "link",
            "add",
            DUT_IFACE,
            "type",
            "veth",
            "peer",
            "name",
            REMOTE_IFACE,
            "netns",
            &self.remote,
        ])?;
        ip(&[
            "-n",
            &self.dut,
            "addr",
            "add",
            "198.18.0.10/16",
            "dev",
            DUT_IFACE,
        ])?;
        ip(&[
            "-n",
            &self.remote,
            "addr",
            "add",
            "198.18.1.20/16",
            "dev",
            REMOTE_IFACE,
        ])?;
        ip(&[
            "-n",
            &self.remote,
            "addr",
            "add",
            "198.18.1.21/16",
            "dev",
            REMOTE_IFACE,
        ])?;
        ip(&["-n", &self.dut, "link", "set", DUT_IFACE, "up"])?;
        ip(&["-n", &self.remote, "link", "set", REMOTE_IFACE, "up"])?;
        Ok(())
    }

    /// Runs `f` on a thread inside namespace `ns`; sockets it opens live there.
    fn spawn_in<T, F>(ns: &str, f: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: `file` is an open namespace file; setns only changes this thread's
            // network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
    }

    /// Starts `egresswatch live` in the device's namespace.
    fn live(&self, dir: &Path, out: &Path, extra: &[&str]) -> Live {
        let mut args = vec!["--no-terminal"];
        args.extend_from_slice(extra);
        self.live_with_terminal(dir, out, &args)
    }

    /// Starts `egresswatch live` with the terminal view on, standard output and standard error
    /// going to files in `dir` (so piped, not a terminal).
    fn live_with_terminal(&self, dir: &Path, out: &Path, extra: &[&str]) -> Live {
        let stderr = File::create(dir.join("stderr.txt")).unwrap();
        let stdout = File::create(dir.join("stdout.txt")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.dut, BIN, "live", "-i", DUT_IFACE])
            .arg("--policy")
            .arg(fixture("live.toml"))
            .arg("--json")
            .arg(out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Live {
            child,
            stderr: dir.join("stderr.txt"),
        }
    }

    /// Runs `ip` inside namespace `ns`.
    fn ip_in(ns: &str, args: &[&str]) {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        ip(&all).unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        let _ = ip(&["netns", "del", &self.dut]);
        let _ = ip(&["netns", "del", &self.remote]);
    }
}

/// A running `egresswatch live` (`ip netns exec` execs it: same pid); killed on drop.
struct Live {
    child: Child,
    stderr: PathBuf,
}

impl Live {
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "egresswatch live still running after {limit:?}; stderr: {}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The complete lines of a JSON-lines file, parsed (a trailing partial line is left out).
fn read_lines(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A file that the run has finished: every line whole and JSON.
fn finished_lines(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a partial line",
        path.display()
    );
    read_lines(path)
}

/// Polls the file until a line satisfies `pred`; returns it and when it was seen.
fn wait_for(
    path: &Path,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
    live: &Live,
) -> (Value, Instant) {
    let start = Instant::now();
    loop {
        if let Some(v) = read_lines(path).into_iter().find(|v| pred(v)) {
            return (v, Instant::now());
        }
        assert!(
            start.elapsed() < limit,
            "no matching line in {} after {limit:?}; stderr: {}",
            path.display(),
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["event_type"] == t).collect()
}

fn is_stats(v: &Value) -> bool {
    v["event_type"] == "stats"
}

fn alert_to(ip: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["event_type"] == "alert" && v["remote"]["ip"] == ip
}

/// Sends UDP datagrams from the device, each from a new socket (so a new flow), every `gap`,
/// until `stop` is set or `limit` passes; counts them.
fn udp_traffic(
    lab: &Lab,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    gap: Duration,
    limit: Duration,
) -> JoinHandle<()> {
    Lab::spawn_in(&lab.dut, move || {
        let start = Instant::now();
        let to: SocketAddr = format!("{REMOTE_UDP}:9999").parse().unwrap();
        while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
            let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
            if sock.send_to(b"egresswatch live test", to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(gap);
        }
    })
}

/// The backends this build has: afpacket always, libpcap with the `libpcap` feature.
fn backends() -> Vec<&'static str> {
    let mut b = vec!["afpacket"];
    if cfg!(feature = "libpcap") {
        b.push("libpcap");
    }
    b
}

/// A DNS response to `query` answering its question with one A record for `addr`.
fn dns_answer(query: &[u8], addr: [u8; 4]) -> Vec<u8> {
    let mut r = query.to_vec();
    r[2] = 0x81; // response, recursion desired
    r[3] = 0x80; // recursion available, no error
    r[6..8].copy_from_slice(&1u16.to_be_bytes()); // one answer
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    r.extend_from_slice(&addr);
    r
}

/// A DNS query for an A record of `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x4e, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

const TELEMETRY_NAME: &str = "telemetry.lab.test";

/// Replays a capture file with the live tests' policy; the alerts it raises.
fn replay_alerts(files: &[PathBuf], dir: &Path) -> (Vec<Value>, Value) {
    let out = dir.join("replay.jsonl");
    let status = Command::new(BIN)
        .arg("replay")
        .args(files)
        .arg("--policy")
        .arg(fixture("live.toml"))
        .arg("--json")
        .arg(&out)
        .arg("--no-terminal")
        .status()
        .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "replay: {status}");
    let lines = finished_lines(&out);
    let alerts = of_type(&lines, "alert").into_iter().cloned().collect();
    (alerts, lines.last().cloned().unwrap())
}

fn alerts_on_udp_dns_and_tcp(backend: &str) {
    let test = format!("alert-{backend}");
    let Some(lab) = Lab::new(&test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let evidence = dir.path().join("evidence.pcapng");
    let evidence_arg = evidence.to_str().unwrap().to_owned();
    let mut live = lab.live(
        dir.path(),
        &out,
        &[
            "--duration",
            "6",
            "--stats-interval",
            "1",
            "--backend",
            backend,
            "--write-pcap",
            &evidence_arg,
        ],
    );
    // The first stats line is written once the interface is open and being read.
    wait_for(&out, Duration::from_secs(10), is_stats, &live);

    // UDP: one datagram to a remote test host in CN.
    let sent_at = Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        let at = Instant::now();
        sock.send_to(b"hello from the dut", format!("{REMOTE_UDP}:9999"))
            .unwrap();
        at
    })
    .join()
    .unwrap();
    let (alert, seen_at) = wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_UDP), &live);
    let latency = seen_at.duration_since(sent_at);
    println!(
        "[{backend}] alert latency (datagram sent -> alert line in the file): {:.2} ms",
        latency.as_secs_f64() * 1e3
    );
    assert!(latency < Duration::from_secs(1), "alert took {latency:?}");
    assert_eq!(alert["rule"]["id"], "no-cn");
    assert_eq!(alert["rule"]["severity"], "high");
    assert_eq!(alert["remote"]["country"], "CN");
    assert_eq!(alert["remote"]["asn"], 64501);
    assert_eq!(alert["device"]["ip"], DUT);
    assert_eq!(alert["device"]["name"], "dut-01");
    assert_eq!(alert["transport"], "udp");
    assert_eq!(alert["source"]["name"], DUT_IFACE);

    // DNS: the test's own server (in the remote namespace) answers with the TCP host's address.
    let dns_server = Lab::spawn_in(&lab.remote, || {
        let sock = UdpSocket::bind(format!("{REMOTE_UDP}:53")).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        let reply = dns_answer(
            &buf[..n],
            REMOTE_TCP.parse::<std::net::Ipv4Addr>().unwrap().octets(),
        );
        sock.send_to(&reply, from).unwrap();
    });
    let listener = Lab::spawn_in(&lab.remote, || {
        let l = TcpListener::bind(format!("{REMOTE_TCP}:7000")).unwrap();
        let (mut conn, _) = l.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        conn.write_all(b"ok").unwrap();
        got
    });
    std::thread::sleep(Duration::from_millis(100));
    let reply = Lab::spawn_in(&lab.dut, || {
        // Resolve through the test's server, then connect to the address it gave.
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.send_to(&dns_query(TELEMETRY_NAME), format!("{REMOTE_UDP}:53"))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        let answer: [u8; 4] = buf[n - 4..n].try_into().unwrap();
        let to = SocketAddr::from((answer, 7000));
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        conn.write_all(b"telemetry upload").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).unwrap();
        reply
    })
    .join()
    .unwrap();
    dns_server.join().unwrap();
    assert_eq!(reply, b"ok");
    assert_eq!(listener.join().unwrap(), b"telemetry upload");
    let (tcp_alert, _) = wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_TCP), &live);
    assert_eq!(tcp_alert["transport"], "tcp");
    assert_eq!(tcp_alert["remote"]["port"], 7000);
    assert_eq!(tcp_alert["remote"]["country"], "CN");
    assert_eq!(tcp_alert["remote"]["hostname"], TELEMETRY_NAME);
    assert_eq!(tcp_alert["remote"]["hostname_source"], "dns");

    // --duration ends the run; a high alert means exit code 1.
    let status = live.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "stderr: {}", live.stderr());
    let lines = finished_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["event_type"], "summary");
    let alerts = of_type(&lines, "alert");
    assert_eq!(last["counters"]["alerts"], alerts.len());
    assert!(alerts.len() >= 2);
    assert_eq!(last["inputs"][0]["name"], DUT_IFACE);
    assert!(last["inputs"][0]["frames"].as_u64().unwrap() >= 9);
    assert!(
        last["inputs"][0]["drops"].is_u64(),
        "the summary carries the kernel's drop count"
    );
    let flows = of_type(&lines, "flow");
    let tcp_flow = flows
        .iter()
        .find(|f| f["remote"]["ip"] == REMOTE_TCP)
        .expect("a flow record for the TCP connection");
    assert_eq!(tcp_flow["payload_bytes_out"], 16);
    assert_eq!(tcp_flow["payload_bytes_in"], 2);
    assert!(tcp_flow["tcp_flags_out"].as_str().unwrap().contains('S'));
    assert!(flows.iter().any(|f| f["remote"]["ip"] == REMOTE_UDP));
    let stats = of_type(&lines, "stats");
    assert!(stats.len() >= 3, "stats lines: {}", stats.len());
    let final_stats = stats.last().unwrap();
    assert_eq!(final_stats["packets"], last["counters"]["frames"]);
    assert_eq!(final_stats["alerts"], alerts.len());
    assert_eq!(final_stats["interfaces"][0]["name"], DUT_IFACE);
    assert!(
        final_stats["drops"].is_u64(),
        "{backend} reports kernel drops"
    );

    // The evidence file holds exactly what was captured: replayed, it raises the same alerts
    // on the same packets.
    let (replayed, replay_summary) = replay_alerts(std::slice::from_ref(&evidence), dir.path());
    assert_eq!(
        replay_summary["counters"]["frames"],
        last["counters"]["frames"]
    );
    let key = |a: &Value| {
        (
            a["source"]["packet"].as_u64().unwrap(),
            a["remote"]["ip"].as_str().unwrap().to_owned(),
            a["rule"]["id"].as_str().unwrap().to_owned(),
        )
    };
    let live_keys: Vec<_> = alerts.iter().map(|a| key(a)).collect();
    let replay_keys: Vec<_> = replayed.iter().map(key).collect();
    assert_eq!(live_keys, replay_keys);
}

#[test]
fn live_alerts_on_udp_dns_and_tcp_within_milliseconds() {
    for backend in backends() {
        alerts_on_udp_dns_and_tcp(backend);
    }
}

#[test]
fn live_sighup_reopens_and_sigterm_writes_the_summary() {
    for backend in backends() {
        sighup_and_sigterm(backend);
    }
}

fn sighup_and_sigterm(backend: &str) {
    let Some(lab) = Lab::new(&format!("sig-{backend}")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let rotated = dir.path().join("live.jsonl.1");
    let evidence = dir.path().join("ev.pcapng");
    let evidence_arg = evidence.to_str().unwrap().to_owned();
    let mut live = lab.live(
        dir.path(),
        &out,
        &[
            "--idle-timeout",
            "1",
            "--stats-interval",
            "0.5",
            "--backend",
            backend,
            "--write-pcap",
            &evidence_arg,
            "--write-pcap-size",
            "8k",
        ],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let traffic = udp_traffic(
        &lab,
        Arc::clone(&stop),
        Arc::clone(&sent),
        Duration::from_millis(10),
        Duration::from_secs(30),
    );
    // Flows end after a second idle (wall-clock expiry): flow records flow continuously.
    wait_for(
        &out,
        Duration::from_secs(10),
        |v| v["event_type"] == "flow",
        &live,
    );
    fs::rename(&out, &rotated).unwrap();
    live.signal("HUP");
    wait_for(
        &out,
        Duration::from_secs(10),
        |v| v["event_type"] == "flow",
        &live,
    );
    std::thread::sleep(Duration::from_millis(500));
    live.signal("TERM");
    let status = live.wait(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {}", live.stderr());

    let old = finished_lines(&rotated);
    let new = finished_lines(&out);
    assert!(of_type(&old, "summary").is_empty());
    let summary = new.last().unwrap();
    assert_eq!(summary["event_type"], "summary", "the summary comes last");
    // No line lost: every flow created left a record, in one file or the other, once.
    let mut ids: Vec<&str> = of_type(&old, "flow")
        .into_iter()
        .chain(of_type(&new, "flow"))
        .map(|f| f["flow_id"].as_str().unwrap())
        .collect();
    let records = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), records, "a flow record was written twice");
    assert_eq!(
        u64::try_from(records).unwrap(),
        summary["counters"]["flows"].as_u64().unwrap()
    );
    assert!(!of_type(&old, "flow").is_empty() && !of_type(&new, "flow").is_empty());
    let alerts = of_type(&old, "alert").len() + of_type(&new, "alert").len();
    assert_eq!(
        u64::try_from(alerts).unwrap(),
        summary["counters"]["alerts"].as_u64().unwrap()
    );
    println!(
        "[{backend}] sent {} datagrams; {} flow records before SIGHUP, {} after",
        sent.load(Ordering::Relaxed),
        of_type(&old, "flow").len(),
        of_type(&new, "flow").len()
    );

    // --write-pcap-size: several complete files, FILE then FILE.1, FILE.2, ...; together they
    // hold every frame the run counted.
    let mut files = vec![evidence.clone()];
    while let Some(next) =
        Some(dir.path().join(format!("ev.pcapng.{}", files.len()))).filter(|p| p.exists())
    {
        files.push(next);
    }
    assert!(files.len() >= 2, "rotation made {} file(s)", files.len());
    let (_, replay_summary) = replay_alerts(&files, dir.path());
    assert_eq!(
        replay_summary["counters"]["frames"],
        summary["counters"]["frames"]
    );
    for input in replay_summary["inputs"].as_array().unwrap() {
        assert!(input.get("error").is_none(), "{input}");
        assert!(input["frames"].as_u64().unwrap() > 0, "{input}");
    }
}

#[test]
fn live_max_packets_stops_after_exactly_n_frames() {
    let Some(lab) = Lab::new("maxpk") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(
        dir.path(),
        &out,
        &["--max-packets", "5", "--stats-interval", "0.2"],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let traffic = udp_traffic(
        &lab,
        Arc::clone(&stop),
        Arc::clone(&sent),
        Duration::from_millis(20),
        Duration::from_secs(10),
    );
    let status = live.wait(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {}", live.stderr());
    let lines = finished_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event_type"], "summary");
    assert_eq!(summary["counters"]["frames"], 5);
}

#[test]
fn live_unknown_interface_lists_the_ones_that_exist() {
    let out = Command::new(BIN)
        .args(["live", "-i", "ew-no-such0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("no network interface named \"ew-no-such0\""),
        "{stderr}"
    );
    assert!(stderr.contains("lo"), "{stderr}");
}

#[test]
fn live_without_privilege_says_how_to_grant_it() {
    let mut cmd = if is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED live_without_privilege_says_how_to_grant_it: no setpriv to drop root"
            );
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .args(["live", "-i", "lo", "--duration", "1", "--no-terminal"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("setpriv:") {
        eprintln!("SKIPPED live_without_privilege_says_how_to_grant_it: {stderr}");
        return;
    }
    if out.status.code() != Some(2) && !is_root() {
        eprintln!("SKIPPED live_without_privilege_says_how_to_grant_it: this user may capture");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("sudo setcap cap_net_raw,cap_net_admin=eip $(which egresswatch)"),
        "{stderr}"
    );
    assert!(stderr.contains("run as root"), "{stderr}");
}

#[test]
fn interfaces_lists_loopback_with_its_address() {
    let out = Command::new(BIN).arg("interfaces").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.starts_with("INDEX"), "{stdout}");
    let lo = stdout
        .lines()
        .find(|l| l.contains(" lo "))
        .expect("lo listed");
    assert!(
        lo.contains("127.0.0.1/8") && lo.contains("loopback"),
        "{lo}"
    );
    let json = Command::new(BIN)
        .args(["interfaces", "--json"])
        .output()
        .unwrap();
    let first: Value = serde_json::from_slice(
        json.stdout
            .split(|&b| b == b'\n')
            .find(|l| l.windows(6).any(|w| w == b"\"lo\",\""))
            .expect("lo as JSON"),
    )
    .unwrap();
    assert_eq!(first["loopback"], true);
}

#[cfg(feature = "libpcap")]
#[test]
fn live_libpcap_filter_keeps_only_matching_frames_and_refuses_bad_expressions() {
    let Some(lab) = Lab::new("filter") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    // A bad expression: refused at start, named in the message, exit code 2.
    let mut bad = lab.live(
        dir.path(),
        &out,
        &["--backend", "libpcap", "--filter", "port nonsense-x"],
    );
    let status = bad.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "stderr: {}", bad.stderr());
    assert!(
        bad.stderr()
            .contains("\"port nonsense-x\" is not a valid BPF filter expression"),
        "{}",
        bad.stderr()
    );

    let mut live = lab.live(
        dir.path(),
        &out,
        &[
            "--backend",
            "libpcap",
            "--immediate",
            "--filter",
            "not udp",
            "--stats-interval",
            "0.5",
        ],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    let listener = Lab::spawn_in(&lab.remote, || {
        let l = TcpListener::bind(format!("{REMOTE_TCP}:7001")).unwrap();
        let (mut conn, _) = l.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"filtered out", format!("{REMOTE_UDP}:9999"))
            .unwrap();
        let to: SocketAddr = format!("{REMOTE_TCP}:7001").parse().unwrap();
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        conn.write_all(b"kept").unwrap();
    })
    .join()
    .unwrap();
    listener.join().unwrap();
    wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_TCP), &live);
    std::thread::sleep(Duration::from_millis(200));
    live.signal("TERM");
    assert_eq!(live.wait(Duration::from_secs(10)).code(), Some(1));
    let lines = finished_lines(&out);
    assert!(
        !lines.iter().any(|v| v["transport"] == "udp"),
        "a UDP event passed the filter 'not udp'"
    );
}

#[cfg(not(feature = "libpcap"))]
#[test]
fn live_libpcap_backend_missing_says_how_to_build_it() {
    let out = Command::new(BIN)
        .args(["live", "-i", "lo", "--backend", "libpcap"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--features libpcap"), "{stderr}");
}

#[test]
fn live_filter_needs_the_libpcap_backend() {
    let out = Command::new(BIN)
        .args(["live", "-i", "lo", "--filter", "udp"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--filter needs --backend libpcap"),
        "{stderr}"
    );
}

/// The real user id of a process, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn live_user_drops_root_after_opening_and_keeps_capturing() {
    let Some(lab) = Lab::new("user") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(
        dir.path(),
        &out,
        &["--user", "nobody", "--stats-interval", "0.5"],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    let uid = uid_of(live.child.id()).expect("the process's uid");
    assert_eq!(uid, 65534, "running as uid {uid}, not nobody");
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"after the drop", format!("{REMOTE_UDP}:9999"))
            .unwrap();
    })
    .join()
    .unwrap();
    wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_UDP), &live);
    live.signal("TERM");
    assert_eq!(live.wait(Duration::from_secs(10)).code(), Some(1));
    assert_eq!(
        finished_lines(&out).last().unwrap()["event_type"],
        "summary"
    );

    let unknown = Command::new(BIN)
        .args(["live", "-i", "lo", "--user", "ew-no-such-user-x"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no such user"));
}

#[test]
fn live_interface_going_down_keeps_what_was_gathered_and_exits_3() {
    let Some(lab) = Lab::new("down") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(dir.path(), &out, &["--stats-interval", "0.5"]);
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"before going down", format!("{REMOTE_UDP}:9999"))
            .unwrap();
    })
    .join()
    .unwrap();
    wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_UDP), &live);
    Lab::ip_in(&lab.dut, &["link", "set", DUT_IFACE, "down"]);
    let status = live.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(3), "stderr: {}", live.stderr());
    assert!(
        live.stderr()
            .contains(&format!("interface {DUT_IFACE} went down at ")),
        "{}",
        live.stderr()
    );
    let lines = finished_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event_type"], "summary");
    assert_eq!(summary["counters"]["alerts"], 1);
    assert!(
        summary["inputs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("went down"),
        "{summary}"
    );
    assert!(
        of_type(&lines, "flow")
            .iter()
            .any(|f| f["remote"]["ip"] == REMOTE_UDP)
    );
}

#[test]
fn live_wait_for_interface_waits_at_start_and_after_going_down() {
    for backend in backends() {
        wait_for_interface(backend);
    }
}

fn wait_for_interface(backend: &str) {
    let Some(lab) = Lab::new(&format!("wait-{backend}")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    // Down at start: waited for, not refused.
    Lab::ip_in(&lab.dut, &["link", "set", DUT_IFACE, "down"]);
    let mut live = lab.live(
        dir.path(),
        &out,
        &[
            "--wait-for-interface",
            "--backend",
            backend,
            "--stats-interval",
            "0.5",
        ],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    std::thread::sleep(Duration::from_millis(300));
    // Alerts are de-duplicated per remote address: each phase contacts a remote of its own.
    let send = |lab: &Lab, to: &'static str| {
        Lab::spawn_in(&lab.dut, move || {
            let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
            sock.send_to(b"x", format!("{to}:9001")).unwrap();
        })
        .join()
        .unwrap();
    };
    let until_alert = |lab: &Lab, live: &Live, to: &'static str| {
        let start = Instant::now();
        while read_lines(&out).iter().all(|v| !alert_to(to)(v)) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no alert to {to}: {}",
                live.stderr()
            );
            send(lab, to);
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    Lab::ip_in(&lab.dut, &["link", "set", DUT_IFACE, "up"]);
    // Sending until the capture is back (it looks every 250 ms).
    until_alert(&lab, &live, REMOTE_UDP);
    // Down and up again mid-run: the run goes on.
    Lab::ip_in(&lab.dut, &["link", "set", DUT_IFACE, "down"]);
    std::thread::sleep(Duration::from_millis(600));
    Lab::ip_in(&lab.dut, &["link", "set", DUT_IFACE, "up"]);
    until_alert(&lab, &live, REMOTE_TCP);
    live.signal("TERM");
    let status = live.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "stderr: {}", live.stderr());
    let stderr = live.stderr();
    assert!(stderr.contains("waiting for it"), "{stderr}");
    assert!(
        stderr.contains(&format!("interface {DUT_IFACE} went down at ")),
        "{stderr}"
    );
    let summary = finished_lines(&out).last().cloned().unwrap();
    assert_eq!(summary["event_type"], "summary");
    assert!(summary["inputs"][0].get("error").is_none(), "{summary}");
}

#[test]
fn live_status_line_is_never_written_when_piped() {
    let Some(lab) = Lab::new("status") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live_with_terminal(dir.path(), &out, &["--stats-interval", "0.5"]);
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"status", format!("{REMOTE_UDP}:9999"))
            .unwrap();
    })
    .join()
    .unwrap();
    wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_UDP), &live);
    // Longer than the status line's period.
    std::thread::sleep(Duration::from_millis(1200));
    live.signal("INT");
    assert_eq!(live.wait(Duration::from_secs(10)).code(), Some(1));
    let stdout = fs::read_to_string(dir.path().join("stdout.txt")).unwrap();
    let stderr = live.stderr();
    assert!(stdout.contains("no-cn"), "the alert is shown: {stdout}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains('\r'),
            "{name} has a carriage return: {text:?}"
        );
        assert!(
            !text.contains("\x1b[K"),
            "{name} has an erase-line: {text:?}"
        );
    }
}

#[test]
fn live_baseline_alerts_on_a_country_the_baseline_never_saw() {
    let Some(lab) = Lab::new("base") else { return };
    let dir = tempfile::tempdir().unwrap();
    // The baseline: an earlier run that saw no traffic at all.
    let base = dir.path().join("base.jsonl");
    let mut earlier = lab.live(dir.path(), &base, &["--duration", "0.3"]);
    assert_eq!(earlier.wait(Duration::from_secs(10)).code(), Some(0));
    let base_arg = base.to_str().unwrap().to_owned();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(
        dir.path(),
        &out,
        &["--baseline", &base_arg, "--stats-interval", "0.5"],
    );
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"new", format!("{REMOTE_UDP}:9999")).unwrap();
    })
    .join()
    .unwrap();
    let (alert, _) = wait_for(
        &out,
        Duration::from_secs(5),
        |v| v["event_type"] == "alert" && v["rule"]["id"] == "baseline-new-country",
        &live,
    );
    assert_eq!(alert["remote"]["country"], "CN");
    live.signal("TERM");
    assert_eq!(live.wait(Duration::from_secs(10)).code(), Some(1));
}

#[test]
fn live_status_line_on_a_terminal_is_cleared_before_an_alert() {
    let Some(lab) = Lab::new("tty") else { return };
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED live_status_line_on_a_terminal: util-linux `script` is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let typescript = dir.path().join("tty.txt");
    // `script` runs the command on a pseudo-terminal and copies what it shows into a file.
    let inner = format!(
        "ip netns exec {} {BIN} live -i {DUT_IFACE} --policy {} --json {} --stats-interval 0.5 \
         --duration 3 --color never",
        lab.dut,
        fixture("live.toml").display(),
        out.display()
    );
    let child = Command::new("script")
        .args(["-q", "-e", "-c", &inner])
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut live = Live {
        child,
        stderr: typescript.clone(),
    };
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    // Long enough for the status line to be drawn.
    std::thread::sleep(Duration::from_millis(1200));
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind(format!("{DUT}:0")).unwrap();
        sock.send_to(b"tty", format!("{REMOTE_UDP}:9999")).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(live.wait(Duration::from_secs(15)).code(), Some(1));
    let shown = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    assert!(
        shown.contains("\r\x1b[Klive: "),
        "no status line drawn: {shown:?}"
    );
    // Every line that is not the status line starts clean: the status was erased first.
    let alert_at = shown.find("no-cn").expect("the alert on the terminal");
    let before = &shown[..alert_at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let last_clear = before.rfind("\r\x1b[K").expect("a clear before the alert");
    assert!(
        !before[last_clear..].contains("live: ") || last_clear < line_start,
        "the alert was written after the status line without clearing it: {:?}",
        &before[line_start.min(last_clear)..]
    );
}

#[test]
fn live_alerts_on_ipv6_test_hosts() {
    let Some(lab) = Lab::new("v6") else { return };
    for ns in [&lab.dut, &lab.remote] {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c"])
            .arg(
                "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; \
                 echo 0 > /proc/sys/net/ipv6/conf/default/disable_ipv6; \
                 for d in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 0 > $d; done",
            )
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot enable IPv6 in {ns}");
    }
    Lab::ip_in(
        &lab.dut,
        &["addr", "add", "2001:db8::10/32", "dev", DUT_IFACE, "nodad"],
    );
    Lab::ip_in(
        &lab.remote,
        &[
            "addr",
            "add",
            "2001:db8:1::20/32",
            "dev",
            REMOTE_IFACE,
            "nodad",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(dir.path(), &out, &["--stats-interval", "0.5"]);
    wait_for(&out, Duration::from_secs(10), is_stats, &live);
    Lab::spawn_in(&lab.dut, || {
        let sock = UdpSocket::bind("[2001:db8::10]:0").unwrap();
        sock.send_to(b"hello over IPv6", "[2001:db8:1::20]:9999")
            .unwrap();
    })
    .join()
    .unwrap();
    let (alert, _) = wait_for(
        &out,
        Duration::from_secs(5),
        |v| v["event_type"] == "alert" && v["remote"]["ip"] == "2001:db8:1::20",
        &live,
    );
    assert_eq!(alert["remote"]["country"], "CN");
    assert_eq!(alert["device"]["ip"], "2001:db8::10");
    assert_eq!(alert["transport"], "udp");
    live.signal("TERM");
    assert_eq!(live.wait(Duration::from_secs(10)).code(), Some(1));
}
