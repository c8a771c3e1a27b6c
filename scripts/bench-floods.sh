#!/usr/bin/env bash
# Peak memory under floods (issue 6, docs/robustness.md "Floods"): `scripts/bench.sh --floods`.
#
#   scripts/bench.sh --floods                 # full scale (1 M names, 1 M-address scan, ...)
#   FLOOD_SCALE=100 scripts/bench.sh --floods # every flood 100 times smaller (a harness check)
#   FLOOD_PROFILE=dev scripts/bench.sh --floods  # debug build (peak RSS is data, not code)
#
# Generates each flood with examples/gen_flood.rs (deterministic) under bench-out/, replays it
# with the default caps under GNU time -v, and prints per flood: peak RSS, wall time, output
# lines, and the caps that dropped something (cap, dropped). The partial-hellos flood runs a
# second time with the reassembly budget lifted, to show what the budget holds back. Prints
# figures only: nothing is asserted (tests/floods.rs asserts the counts at small scale).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench-out
mkdir -p "$OUT"
PROFILE=${FLOOD_PROFILE:-release}
SCALE=${FLOOD_SCALE:-1}
note() { printf 'bench-floods: %s\n' "$*" >&2; }
[[ -x /usr/bin/time ]] || {
    note "GNU time (/usr/bin/time) is needed for peak RSS"
    exit 2
}
command -v python3 > /dev/null || {
    note "python3 is needed to read the summary"
    exit 2
}

note "building ($PROFILE)"
cargo build --profile "$PROFILE" --quiet --bin egresswatch --example gen_flood
DIR=$ROOT/target/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
EW=$DIR/egresswatch
GEN=$DIR/examples/gen_flood
GEN_VER=$(cat src/flood.rs examples/gen_flood.rs | cksum | cut -c1-8)

# Full-scale sizes: items per flood (see src/flood.rs for what an item is).
declare -A SIZE=(
    [scan]=1000000
    [dns-names]=1000000
    [dns-answers]=20000
    [cname-chains]=50000
    [pointer-loops]=1000000
    [fragments]=300000
    [partial-hellos]=200000
    [devices]=1000000
)
ORDER=(scan dns-names dns-answers cname-chains pointer-loops fragments partial-hellos devices)

REPORT=$OUT/floods.md
{
    echo "| flood | items | frames | capture MB | peak RSS MB | wall s | output lines | caps that dropped (cap: dropped) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
} > "$REPORT"

# run NAME LABEL FILE FLAGS...: one replay under time -v; appends a row to the report.
run() {
    local name=$1 label=$2 file=$3 n=$4
    shift 4
    local json=$OUT/flood-$name.jsonl rc=0
    /usr/bin/time -v -o "$OUT/time.txt" "$EW" replay --json "$json" --no-terminal \
        --events alert,summary "$@" "$file" 2> "$OUT/stderr.txt" || rc=$?
    if ((rc > 1)); then
        note "$label: exit $rc"
        tail -3 "$OUT/stderr.txt" >&2
    fi
    local rss wall
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$OUT/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$OUT/time.txt")
    python3 - "$json" "$label" "$n" "$(stat -c %s "$file")" "$rss" "$wall" >> "$REPORT" << 'PY'
import json, sys
path, label, n, size, rss, wall = sys.argv[1:]
lines = open(path).read().splitlines()
s = json.loads(lines[-1])
dropped = ", ".join(f"{k} ({v['cap']}: {v['dropped']})" for k, v in s["limits"].items() if v["dropped"])
print(f"| {label} | {int(n):,} | {s['counters']['frames']:,} | {int(size) / 1e6:.0f} | {rss} | {wall} | {len(lines)} | {dropped or '-'} |")
PY
    tail -1 "$REPORT" >&2
}

for name in "${ORDER[@]}"; do
    n=$((SIZE[$name] / SCALE))
    file=$OUT/flood-$name-n$n-g$GEN_VER.pcap
    if [[ ! -s $file ]]; then
        note "generating $(basename "$file")"
        "$GEN" --kind "$name" --count "$n" --out "$file.tmp" && mv "$file.tmp" "$file"
    fi
    run "$name" "$name" "$file" "$n"
    if [[ $name == partial-hellos ]]; then
        run "$name" "partial-hellos, budget lifted" "$file" "$n" --max-reassembly-bytes 1000000000000
    fi
    rm -f "$file"
done
note "written to bench-out/floods.md"
cat "$REPORT"
