//! `egresswatch live` on real traffic between two network namespaces.
//!
//! Each test makes its own pair of namespaces joined by a veth pair: the device under test
//! (198.18.0.10) in one, the remote test hosts (198.18.1.20, 198.18.1.21, placed in CN by the
//! fixture's override) in the other. `egresswatch live` runs in the device's namespace on its veth
//! end; the test sends UDP datagrams and a TCP connection from threads that joined the
//! namespaces (`setns`), then reads the JSON output. Only 198.18.0.0/15 is ever addressed.
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
        let stderr = File::create(dir.join("stderr.txt")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.dut, BIN, "live", "-i", DUT_IFACE])
            .arg("--policy")
            .arg(fixture("live.toml"))
            .arg("--json")
            .arg(out)
            .args(["--no-terminal"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Live {
            child,
            stderr: dir.join("stderr.txt"),
        }
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

#[test]
fn live_alerts_on_udp_and_tcp_within_milliseconds() {
    let Some(lab) = Lab::new("alert") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let mut live = lab.live(
        dir.path(),
        &out,
        &["--duration", "6", "--stats-interval", "1"],
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
        "alert latency (datagram sent -> alert line in the file): {:.2} ms",
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

    // TCP: a whole connection to the other remote host.
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
        let to: SocketAddr = format!("{REMOTE_TCP}:7000").parse().unwrap();
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        conn.write_all(b"telemetry upload").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).unwrap();
        reply
    })
    .join()
    .unwrap();
    assert_eq!(reply, b"ok");
    assert_eq!(listener.join().unwrap(), b"telemetry upload");
    let (tcp_alert, _) = wait_for(&out, Duration::from_secs(5), alert_to(REMOTE_TCP), &live);
    assert_eq!(tcp_alert["transport"], "tcp");
    assert_eq!(tcp_alert["remote"]["port"], 7000);
    assert_eq!(tcp_alert["remote"]["country"], "CN");

    // --duration ends the run; a high alert means exit code 1.
    let status = live.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "stderr: {}", live.stderr());
    let lines = finished_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["event_type"], "summary");
    assert_eq!(last["counters"]["alerts"], 2);
    assert_eq!(last["inputs"][0]["name"], DUT_IFACE);
    assert!(last["inputs"][0]["frames"].as_u64().unwrap() >= 7);
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
    assert!(final_stats["packets"].as_u64().unwrap() >= 7);
    assert_eq!(final_stats["alerts"], 2);
    assert_eq!(final_stats["interfaces"][0]["name"], DUT_IFACE);
    assert!(
        final_stats["drops"].is_u64(),
        "AF_PACKET reports kernel drops"
    );
}

#[test]
fn live_sighup_reopens_and_sigterm_writes_the_summary() {
    let Some(lab) = Lab::new("signals") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let rotated = dir.path().join("live.jsonl.1");
    let mut live = lab.live(
        dir.path(),
        &out,
        &["--idle-timeout", "1", "--stats-interval", "0.5"],
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
        "sent {} datagrams; {} flow records before SIGHUP, {} after",
        sent.load(Ordering::Relaxed),
        of_type(&old, "flow").len(),
        of_type(&new, "flow").len()
    );
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
