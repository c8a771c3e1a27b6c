#!/usr/bin/env bash
# Live-capture benchmark (BENCHMARKS.md, "Live capture"): offers generated traffic with tcpreplay
# at several packet rates to a veth inside network namespaces this script creates, with
# `egresswatch live` capturing on the other end, once per backend. Prints, per backend and rate:
# packets offered, captured, kernel drops (the backend's counter), drops before the capture point
# (the veth's rx_dropped), CPU of the egresswatch process, and alert latency (median, p99).
#
#   sudo scripts/live-bench.sh                 # 50k, 100k, 200k packets/s, 5 s each, both backends
#                                              # (libpcap: block buffering, the default;
#                                              # libpcap-imm: --immediate; libpcap-snap2k: --immediate --snaplen 2048)
#   sudo scripts/live-bench.sh --seconds 3 --rates "50000 200000" --backends libpcap
#
# Needs root, iproute2, tcpreplay and python3 (installed with apt-get when missing). Every address
# is a test host in 198.18.0.0/15 (examples/gen_live_bench.rs); nothing leaves the namespaces.
#
# Alert latency: for each alert line, (the moment a follower polling the JSON file every 0.5 ms
# saw the line) - (the alert's `timestamp`, the kernel's receive time of the packet). It includes
# the wait in the kernel queue, the batch hand-over, the engine and the write, plus up to 0.5 ms
# of polling. 254 alerts per run, spread evenly over the offered packets.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=5
RATES="50000 100000 200000"
BACKENDS="afpacket libpcap libpcap-imm"
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --rates) RATES="$2"; shift 2 ;;
        --backends) BACKENDS="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "live-bench: needs root (network namespaces, AF_PACKET, tcpreplay)" >&2
    exit 2
fi
for tool in ip tcpreplay python3; do
    if ! command -v "$tool" > /dev/null; then
        echo "== installing $tool"
        apt-get install -y -qq --no-install-recommends iproute2 tcpreplay python3 > /dev/null
    fi
done

OUT=bench-out/live
mkdir -p "$OUT"
echo "== build (release, --features libpcap)"
cargo build --release --features libpcap --bin egresswatch --example gen_live_bench 2>&1 | tail -1
BIN=$PWD/target/release/egresswatch
MAX_RATE=0
for r in $RATES; do [ "$r" -gt "$MAX_RATE" ] && MAX_RATE=$r; done
PACKETS=$((MAX_RATE * SECONDS_PER_RUN))
CAPTURE=$OUT/live-bench-$PACKETS.pcap
if [ ! -s "$CAPTURE" ]; then
    echo "== generating $PACKETS packets into $CAPTURE"
    target/release/examples/gen_live_bench --packets "$PACKETS" --out "$CAPTURE"
fi

DUT=ewbench-dut
GEN=ewbench-gen
cleanup() {
    ip netns del "$DUT" 2> /dev/null || true
    ip netns del "$GEN" 2> /dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$DUT"
ip netns add "$GEN"
for ns in "$DUT" "$GEN"; do
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
    ip -n "$ns" link set lo up
done
ip -n "$DUT" link add ewbdut type veth peer name ewbgen netns "$GEN"
ip -n "$DUT" addr add 198.18.0.10/16 dev ewbdut
ip -n "$GEN" addr add 198.18.1.1/16 dev ewbgen
ip -n "$DUT" link set ewbdut up
ip -n "$GEN" link set ewbgen up

# Follows a JSON-lines file until its summary line; prints "n median_ms p99_ms".
FOLLOW=$OUT/follow.py
cat > "$FOLLOW" << 'PY'
import calendar, json, sys, time
def ns(ts):
    secs, frac = ts.rstrip("Z").split(".") if "." in ts else (ts.rstrip("Z"), "0")
    base = calendar.timegm(time.strptime(secs, "%Y-%m-%dT%H:%M:%S"))
    return base * 10**9 + int((frac + "000000000")[:9])
path, limit = sys.argv[1], float(sys.argv[2])
lat, every, buf, start = [], [], "", time.time()
with open(path) as f:
    open(path + ".ready", "w").close()
    while time.time() - start < limit:
        chunk = f.read()
        if not chunk:
            time.sleep(0.0005)
            continue
        seen = time.time_ns()
        buf += chunk
        *lines, buf = buf.split("\n")
        done = False
        for line in lines:
            ev = json.loads(line)
            if ev.get("event_type") == "alert":
                lat.append((seen - ns(ev["timestamp"])) / 1e6)
                every.append("%d %.3f" % (ns(ev["timestamp"]) // 10**6, lat[-1]))
            elif ev.get("event_type") == "summary":
                done = True
        if done:
            break
with open(path + ".latency", "w") as out:
    out.write("\n".join(every) + "\n")
lat.sort()
if lat:
    over = sum(1 for x in lat if x > 100.0)
    print(len(lat), "%.2f" % lat[len(lat) // 2], "%.2f" % lat[min(len(lat) - 1, int(len(lat) * 0.99))], over)
else:
    print(0, "-", "-", "-")
PY

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rx_dropped() { ip netns exec "$DUT" cat /sys/class/net/ewbdut/statistics/rx_dropped; }
HZ=$(getconf CLK_TCK)

RESULTS=$OUT/results.md
{
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
    echo
    echo "| backend | asked pps | achieved pps | offered | captured | kernel drops | dropped before capture (veth rx_dropped) | CPU % of one core | alerts | latency median ms | latency p99 ms | alerts > 100 ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$RESULTS"
for backend in $BACKENDS; do
    for rate in $RATES; do
        count=$((rate * SECONDS_PER_RUN))
        json=$OUT/live-$backend-$rate.jsonl
        rm -f "$json" "$json.ready"
        case "$backend" in
            libpcap-imm) flags="--backend libpcap --immediate" ;;
            libpcap-snap2k) flags="--backend libpcap --immediate --snaplen 2048" ;;
            *) flags="--backend $backend" ;;
        esac
        # shellcheck disable=SC2086
        ip netns exec "$DUT" "$BIN" live -i ewbdut $flags \
            --policy tests/fixtures/live.toml --json "$json" --no-terminal \
            --stats-interval 1 --buffer-size 64M 2> "$OUT/live-$backend-$rate.stderr" &
        pid=$!
        for _ in $(seq 100); do [ -s "$json" ] && break; sleep 0.05; done
        python3 "$FOLLOW" "$json" $((SECONDS_PER_RUN * 4 + 30)) > "$OUT/lat-$backend-$rate.txt" &
        follower=$!
        # The follower must be reading before the first packet is offered.
        for _ in $(seq 200); do [ -e "$json.ready" ] && break; sleep 0.02; done
        drop0=$(rx_dropped)
        t0=$(ticks "$pid")
        start=$(date +%s.%N)
        ip netns exec "$GEN" tcpreplay -i ewbgen --pps="$rate" --limit="$count" "$CAPTURE" > "$OUT/tcpreplay-$backend-$rate.txt" 2>&1 || true
        sleep 1
        t1=$(ticks "$pid")
        end=$(date +%s.%N)
        drop1=$(rx_dropped)
        kill -TERM "$pid"
        wait "$pid" || true
        wait "$follower" || true
        offered=$(grep -oE 'Successful packets: +[0-9]+' "$OUT/tcpreplay-$backend-$rate.txt" | grep -oE '[0-9]+$' || echo "?")
        achieved=$(grep -oE '[0-9.]+ pps' "$OUT/tcpreplay-$backend-$rate.txt" | head -1 | cut -d' ' -f1 | cut -d. -f1 || echo "?")
        read -r captured kdrops < <(python3 -c '
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(s["counters"]["frames"], s["inputs"][0].get("drops", "n/a"))' "$json")
        read -r nlat med p99 slow < "$OUT/lat-$backend-$rate.txt"
        cpu=$(python3 -c "print('%.0f' % (100.0 * ($t1 - $t0) / $HZ / ($end - $start)))")
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$backend" "$rate" \
            "$achieved" "$offered" "$captured" "$kdrops" "$((drop1 - drop0))" "$cpu" "$nlat" "$med" \
            "$p99" "$slow" >> "$RESULTS"
        tail -1 "$RESULTS"
    done
done
echo
echo "== results ($RESULTS)"
cat "$RESULTS"
