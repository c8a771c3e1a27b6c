#!/usr/bin/env bash
# Benchmark harness for egresswatch (DESIGN.md §7, BENCHMARKS.md).
#
#   scripts/bench.sh            # full run: 1 M-packet capture, 7 runs per tool, medians
#                               # (cat, tcpdump and replay interleaved, a round at a time)
#   scripts/bench.sh --quick    # 20 k packets, 1 run each: checks that the harness still works
#   scripts/bench.sh --profile  # also a perf profile of replay, grouped by module (full or quick)
#   scripts/bench.sh --floods   # peak RSS per flood capture (scripts/bench-floods.sh)
#   scripts/bench.sh --packets 10000000   # the main capture at another size (full runs)
#
# Builds release, generates (or reuses, by seed, size and generator version) the synthetic
# captures under bench-out/, times each tool, and prints a table of medians and ratios; the same
# table is written to bench-out/results.md. Prints figures only: no timing is asserted.
#
# Tools it cannot find (tcpdump, tshark, GNU time, perf) are installed with apt-get when run as
# root, and otherwise skipped with a note. File replay only: nothing is captured or sent.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench-out
mkdir -p "$OUT"

QUICK=0
PROFILE=0
ASKED_PACKETS=
while (($#)); do
    arg=$1
    shift
    case $arg in
        --quick) QUICK=1 ;;
        --packets)
            ASKED_PACKETS=${1:-}
            shift || true
            if ! [[ $ASKED_PACKETS =~ ^[1-9][0-9]*$ ]]; then
                echo "bench.sh: --packets needs a positive number of packets" >&2
                exit 2
            fi
            ;;
        --profile) PROFILE=1 ;;
        --floods) exec "$ROOT/scripts/bench-floods.sh" ;;
        -h | --help)
            sed -n '2,16p' "$0"
            exit 0
            ;;
        *)
            echo "bench.sh: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

SEED=${BENCH_SEED:-1}
if ((QUICK)); then
    PACKETS=20000 RUNS=1 START_RUNS=3 SCAN_PACKETS=20000
else
    PACKETS=${ASKED_PACKETS:-1000000} RUNS=7 START_RUNS=20 SCAN_PACKETS=1000000
fi
FLOWS=$((PACKETS / 50))
SLICE=100000 # tshark runs on this many packets (a few seconds), scaled per packet

note() { printf 'bench: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
have() { command -v "$1" > /dev/null 2>&1; }
missing=()
have tcpdump || missing+=(tcpdump)
have tshark || missing+=(tshark)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && have apt-get; then
        note "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # tshark asks whether non-root users may capture: no (we only read files).
        echo 'wireshark-common wireshark-common/install-setuid boolean false' |
            debconf-set-selections 2> /dev/null || true
        if apt-get update -qq > "$OUT/apt.log" 2>&1; then
            apt-get install -y -qq "${missing[@]}" >> "$OUT/apt.log" 2>&1 ||
                note "apt-get install failed (see bench-out/apt.log); missing tools are skipped"
        else
            note "apt-get update failed (see bench-out/apt.log); missing tools are skipped"
        fi
    else
        note "not root or no apt-get: ${missing[*]} will be skipped if absent"
    fi
fi
TIME_OK=0
[[ -x /usr/bin/time ]] && TIME_OK=1

# --- build and captures ------------------------------------------------------------------------
note "building release"
EXAMPLES=(--example gen_bench)
# The converter that gives tshark the embedded country data in MaxMind's layout.
have tshark && EXAMPLES+=(--example mmdb_to_maxmind)
cargo build --release --quiet --bin egresswatch "${EXAMPLES[@]}"
EW=$ROOT/target/release/egresswatch
GEN=$ROOT/target/release/examples/gen_bench
GEN_VER=$(cksum < examples/gen_bench.rs | cut -c1-8)

# capture NAME ARGS...: generates bench-out/NAME-<version>.pcap unless it already exists.
capture() {
    local name=$1
    shift
    local file=$OUT/$name-g$GEN_VER.pcap
    if [[ ! -s $file ]]; then
        note "generating $(basename "$file")"
        "$GEN" "$@" --seed "$SEED" --out "$file.tmp" 2> "$OUT/gen.log" && mv "$file.tmp" "$file"
        sed 's/^/bench:   /' "$OUT/gen.log" >&2
    fi
    echo "$file"
}
MAIN=$(capture "main-s$SEED-n$PACKETS-f$FLOWS" --packets "$PACKETS" --flows "$FLOWS")
SCAN=$(capture "scan-s$SEED-n$SCAN_PACKETS" --scan --packets "$SCAN_PACKETS")
ONE=$(capture "one-s$SEED" --packets 1 --flows 1)
if ((PACKETS > SLICE)) && have tcpdump; then
    SLICE_FILE=$OUT/slice$SLICE-$(basename "$MAIN")
    [[ -s $SLICE_FILE ]] || tcpdump -r "$MAIN" -c "$SLICE" -w "$SLICE_FILE" 2> /dev/null
else
    SLICE_FILE=$MAIN
    SLICE=$PACKETS
fi
# A policy without rules (the policy stage does nothing) for the breakdown.
NORULES=$OUT/no-rules.toml
printf 'version = 1\nname = "no-rules"\n' > "$NORULES"

# --- timing ------------------------------------------------------------------------------------
# sample KEY CMD...: runs CMD once (stdout discarded) and adds its wall time (s) and peak RSS (KiB,
# with GNU time) to KEY's samples. A failing command (other than exit 1, "alerts") is reported and
# marks KEY failed.
#
# The file after `--json` is removed before each run, so every run writes a new file as a CI job
# does. Rewriting an existing file costs more on ext4, and not in the tool: the file is truncated
# to zero first, and ext4 (auto_da_alloc) then starts writing it back to disk when it is closed,
# ~10 ms for the 25 MB of the main capture, charged to the close. BENCHMARKS.md says more.
declare -A WALLS RSSS FAILED W R N
sample() {
    local key=$1
    shift
    local t0 t1 rc=0 out="" prev=""
    for arg in "$@"; do
        if [[ $prev == --json ]]; then out=$arg; fi
        prev=$arg
    done
    # Only a regular file: never a device (`/dev/null`), a link or standard output (`-`).
    if [[ -f $out && ! -L $out ]]; then rm -f -- "$out"; fi
    t0=$EPOCHREALTIME
    if ((TIME_OK)); then
        /usr/bin/time -f %M -o "$OUT/rss" "$@" > /dev/null 2> "$OUT/stderr" || rc=$?
    else
        "$@" > /dev/null 2> "$OUT/stderr" || rc=$?
    fi
    t1=$EPOCHREALTIME
    if ((rc > 1)); then
        note "failed (exit $rc): $*"
        sed 's/^/bench:   /' "$OUT/stderr" | tail -5 >&2
        FAILED[$key]=1
        return
    fi
    WALLS[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }') "
    if ((TIME_OK)); then RSSS[$key]+="$(tail -n1 "$OUT/rss") "; fi
}

# median VALUES...: the median (the mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# settle KEY PACKETS: sets W (median wall s, or "-" when failed), R (median peak KiB, or "-") and
# N for KEY from its samples.
settle() {
    local key=$1
    N[$key]=$2
    if [[ -n ${FAILED[$key]:-} || -z ${WALLS[$key]:-} ]]; then
        W[$key]=- R[$key]=-
        return
    fi
    # shellcheck disable=SC2086 # the samples are space-separated numbers
    W[$key]=$(median ${WALLS[$key]})
    if ((TIME_OK)); then
        # shellcheck disable=SC2086
        R[$key]=$(median ${RSSS[$key]} | awk '{ printf "%d", $1 }')
    else
        R[$key]=-
    fi
}

# row KEY PACKETS RUNS CMD...: measures and records one tool, RUNS runs in a row.
row() {
    local key=$1 packets=$2 runs=$3
    shift 3
    note "timing $key ($runs run(s))"
    for ((i = 0; i < runs; i++)); do sample "$key" "$@"; done
    settle "$key" "$packets"
}

# The rows of the main target run interleaved, a round of the three at a time, so that load from
# elsewhere (a VM's neighbours) falls on them alike; replay / tcpdump is also taken per round.
JSON=$OUT/replay.json
if ! have tcpdump; then
    note "tcpdump unavailable: skipped"
fi
note "timing cat, tcpdump and replay, interleaved ($RUNS round(s))"
for ((round = 0; round < RUNS; round++)); do
    sample cat cat "$MAIN"
    if have tcpdump; then
        # A filter that matches nothing but that libpcap cannot prove empty, so every packet is
        # read and filtered: libpcap's bare read loop.
        sample tcpdump tcpdump -nr "$MAIN" 'ether[0]=1 and ether[1]=2'
    fi
    sample replay "$EW" replay "$MAIN" --json "$JSON" --no-terminal
done
for key in cat tcpdump replay; do
    [[ -z ${WALLS[$key]:-} && -z ${FAILED[$key]:-} ]] || settle "$key" "$PACKETS"
done
# Per round: replay's wall over tcpdump's in the same round.
ROUND_RATIOS=""
if [[ -n ${WALLS[tcpdump]:-} && -n ${WALLS[replay]:-} ]]; then
    # shellcheck disable=SC2086
    ROUND_RATIOS=$(paste <(printf '%s\n' ${WALLS[replay]}) <(printf '%s\n' ${WALLS[tcpdump]}) |
        awk '$2 > 0 { printf "%.2f ", $1 / $2 }')
fi
# Breakdown variants (see BENCHMARKS.md): no rules and summary only; summary only; all events.
row replay_norules_summary "$PACKETS" "$RUNS" "$EW" replay "$MAIN" --json "$OUT/v1.json" \
    --no-terminal --events summary --policy "$NORULES"
row replay_summary "$PACKETS" "$RUNS" "$EW" replay "$MAIN" --json "$OUT/v2.json" \
    --no-terminal --events summary
row replay_terminal "$PACKETS" "$RUNS" "$EW" replay "$MAIN" --json "$OUT/v3.json" --color never

TSHARK_NOTE=""
if have tshark; then
    # tshark reads GeoIP only from MaxMind-layout databases (country.iso_code) in a directory
    # (maxmind_db_paths). It gets the data egresswatch uses: the embedded country database
    # (layout country_code) converted by examples/mmdb_to_maxmind.rs and `geoip build` (redone
    # when its inputs change), beside the embedded ASN and registered-country databases, which are
    # in MaxMind's layouts already.
    GEODIR=$OUT/tshark-geoip
    COUNTRY_DB=$GEODIR/dbip-country-maxmind.mmdb
    GEO_KEY=$(cat geoip/dbip-country.mmdb examples/mmdb_to_maxmind.rs src/geoip/writer.rs \
        src/geoip/writer/*.rs | cksum | cut -d' ' -f1)
    mkdir -p "$GEODIR"
    if [[ ! -s $COUNTRY_DB || $(cat "$GEODIR/key" 2> /dev/null) != "$GEO_KEY" ]]; then
        note "converting the embedded country database to MaxMind's layout for tshark"
        rm -f "$GEODIR"/*.mmdb "$GEODIR/key"
        CSV=$OUT/tshark-countries.csv
        "$ROOT/target/release/examples/mmdb_to_maxmind" --db geoip/dbip-country.mmdb \
            --out "$CSV" 2> "$OUT/convert.log" || {
            note "conversion failed (see bench-out/convert.log)"
            exit 1
        }
        epoch=$(sed -n 's/.*--build-epoch \([0-9]*\).*/\1/p' "$OUT/convert.log")
        "$EW" geoip build --input "$CSV" --layout country --columns country=1,registered_country=2 \
            ${epoch:+--build-epoch "$epoch"} --out "$COUNTRY_DB" >> "$OUT/convert.log" 2>&1 || {
            note "geoip build failed (see bench-out/convert.log)"
            exit 1
        }
        rm -f "$CSV"
        echo "$GEO_KEY" > "$GEODIR/key"
        grep -v '^next:' "$OUT/convert.log" | sed 's/^/bench:   /' >&2
    fi
    cp geoip/asn.mmdb geoip/asn-country.mmdb "$GEODIR/"
    TSHARK_NOTE="the embedded databases, the country one converted to MaxMind's layout"

    TS_GEO=(-o "uat:maxmind_db_paths:\"$GEODIR\"")
    # Per-flow totals: packets and bytes each way per TCP and UDP 5-tuple, as egresswatch's flows.
    TS_FLOWS=(-z conv,tcp -z conv,udp)
    # A GeoIP field of every packet in a tap filter, so tshark dissects each packet into a tree
    # and looks both addresses up (cached per address, as egresswatch does); io,stat counts the
    # packets with a country and those to or from CN. Without a filter or fields (`-q -z conv,ip`,
    # the tshark_nogeoip row) tshark builds no tree and makes no lookup at all.
    TS_COUNT=(-z 'io,stat,0,ip.geoip.country_iso || ipv6.geoip.country_iso,ip.geoip.country_iso == "CN" || ipv6.geoip.country_iso == "CN"')
    TSHARK=(tshark "${TS_GEO[@]}" -q "${TS_FLOWS[@]}" "${TS_COUNT[@]}")
    # The same totals plus, for every packet, the country and AS of both ends as text fields.
    TS_FIELDS=(-T fields)
    for f in src dst; do
        for ip in ip ipv6; do
            TS_FIELDS+=(-e "$ip.$f" -e "$ip.geoip.${f}_country_iso" -e "$ip.geoip.${f}_asnum")
        done
    done
    row tshark "$SLICE" "$RUNS" "${TSHARK[@]}" -r "$SLICE_FILE"
    row tshark_fields "$SLICE" "$RUNS" tshark "${TS_GEO[@]}" "${TS_FLOWS[@]}" "${TS_FIELDS[@]}" \
        -r "$SLICE_FILE"
    row tshark_nogeoip "$SLICE" "$RUNS" tshark "${TS_GEO[@]}" -q -z conv,ip -r "$SLICE_FILE"
    row tshark_1 1 "$RUNS" "${TSHARK[@]}" -r "$ONE"

    # Untimed checks that tshark's lookups happen and answer as egresswatch does: the io,stat
    # counts of the tshark row, and each address's country in the fields of the first 20,000
    # packets of the slice against `egresswatch lookup` (addresses egresswatch does not look up,
    # non-public ones, are left out).
    "${TSHARK[@]}" -r "$SLICE_FILE" > "$OUT/tshark-counts.txt" 2> /dev/null || true
    read -r TS_LOCATED TS_CN < <(awk -F'|' '/<>/ { gsub(/ /, ""); print $3, $5 }' \
        "$OUT/tshark-counts.txt") || true
    tshark "${TS_GEO[@]}" "${TS_FIELDS[@]}" -c 20000 -r "$SLICE_FILE" 2> /dev/null |
        awk -F'\t' '{ for (i = 1; i + 1 <= NF; i += 3) if ($i != "" && ($i $(i + 1)) !~ /,/)
            print $i "\t" ($(i + 1) == "" ? "-" : $(i + 1)) }' | sort -u > "$OUT/tshark-countries.tsv" ||
        true
    cut -f1 "$OUT/tshark-countries.tsv" | xargs -r "$EW" lookup 2> /dev/null |
        sed -e 's/.*"public":false.*/private/' -e 's/.*"country":"\([A-Z]*\)".*/\1/' -e 's/^{.*/-/' \
            > "$OUT/egresswatch-countries.txt" || true
    read -r TS_SAME TS_PUBLIC TS_PRIVATE < <(paste "$OUT/tshark-countries.tsv" \
        "$OUT/egresswatch-countries.txt" | awk -F'\t' '$3 == "private" { skip++; next }
            { n++; same += ($2 == $3) } END { print same + 0, n + 0, skip + 0 }') || true
else
    note "tshark unavailable: skipped"
fi

# Scan: 1 M distinct one-packet flows with the default flow cap.
row scan "$SCAN_PACKETS" 1 "$EW" replay "$SCAN" --json "$OUT/scan.json" --no-terminal
SCAN_COUNTERS=$(tail -n1 "$OUT/scan.json" | grep -o '"flows":[0-9]*,"flows_evicted":[0-9]*,"flows_peak":[0-9]*' || true)
# Start-up to first packet: a 1-packet capture, embedded database and default policy.
row startup 1 "$START_RUNS" "$EW" replay "$ONE" --json "$OUT/one.json" --no-terminal
row version 0 "$START_RUNS" "$EW" --version

# --- report ------------------------------------------------------------------------------------
calc() { awk "BEGIN { $1 }"; }
{
    echo "## egresswatch benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $([[ $QUICK == 1 ]] && echo quick || echo full))"
    echo
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
    echo "Capture: $(basename "$MAIN"), $PACKETS packets, $(du -m "$MAIN" | cut -f1) MiB; medians of $RUNS run(s)"
    echo
    echo "| tool | packets | median wall s | packets/s | ns/packet | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for key in cat tcpdump replay replay_norules_summary replay_summary replay_terminal tshark tshark_fields tshark_nogeoip tshark_1 scan startup version; do
        [[ -n ${W[$key]:-} ]] || continue
        w=${W[$key]} r=${R[$key]} n=${N[$key]}
        if [[ $w == - ]]; then
            echo "| $key | $n | failed | | | |"
            continue
        fi
        pps=- nsp=-
        if ((n > 1)); then
            pps=$(calc "printf \"%.0f\", $n / $w")
            nsp=$(calc "printf \"%.0f\", $w * 1e9 / $n")
        fi
        rss=-
        [[ $r == - ]] || rss=$(calc "printf \"%.1f\", $r / 1024")
        echo "| $key | $n | $(calc "printf \"%.4f\", $w") | $pps | $nsp | $rss |"
    done
    echo
    ok() { [[ -n ${W[$1]:-} && ${W[$1]} != - ]]; }
    if ok replay && ok tcpdump; then
        # shellcheck disable=SC2086
        echo "- replay / tcpdump bare loop: $(calc "printf \"%.2f\", ${W[replay]} / ${W[tcpdump]}")× of the medians; per round (same minute): ${ROUND_RATIOS}→ median $(median $ROUND_RATIOS | awk '{ printf "%.2f", $1 }')× (target ≤ 1.5×)"
    fi
    if ok replay && ok cat; then
        echo "- replay / cat: $(calc "printf \"%.2f\", ${W[replay]} / ${W[cat]}")×"
    fi
    if ok tshark && ok replay; then
        per_replay=$(calc "print ${W[replay]} / ${N[replay]}")
        # ratio KEY: tshark's time per packet over replay's, raw and net of tshark's start-up.
        ratio() {
            printf '%s× raw' "$(calc "printf \"%.0f\", (${W[$1]} / ${N[$1]}) / $per_replay")"
            if ok tshark_1; then
                printf ', %s× net of its start-up' \
                    "$(calc "printf \"%.0f\", ((${W[$1]} - ${W[tshark_1]}) / ${N[$1]}) / $per_replay")"
            fi
        }
        echo "- tshark / replay per packet, $SLICE-packet slice: $(ratio tshark) (target ≥ 300×)$(ok tshark_fields && echo "; writing each packet's countries and AS numbers (tshark_fields): $(ratio tshark_fields)")$(ok tshark_1 && echo "; tshark's start-up (tshark_1): $(calc "printf \"%.2f\", ${W[tshark_1]}") s")"
        echo "- tshark's GeoIP data, $TSHARK_NOTE: ${TS_LOCATED:-?} of $SLICE slice packets with a country (io,stat), ${TS_CN:-?} to or from CN; countries of the addresses in its first 20,000 packets agree with \`egresswatch lookup\` for ${TS_SAME:-?} of ${TS_PUBLIC:-?} public addresses (${TS_PRIVATE:-?} non-public not compared)"
    fi
    if ok scan; then
        echo "- scan ($SCAN_PACKETS one-packet flows, default cap): $(calc "printf \"%.2f\", ${W[scan]}") s, peak RSS $(calc "printf \"%.0f\", ${R[scan]} / 1024") MiB (target < 512), ${SCAN_COUNTERS:-counters not found}"
    fi
    if ok startup; then
        echo "- start-up (1-packet replay, median of $START_RUNS): $(calc "printf \"%.1f\", ${W[startup]} * 1000") ms (target < 50 ms); process floor (--version): $(calc "printf \"%.1f\", ${W[version]} * 1000") ms"
    fi
    if ok replay && ok replay_norules_summary && ok replay_summary; then
        echo "- breakdown: summary-only, no rules $(calc "printf \"%.3f\", ${W[replay_norules_summary]}") s; + policy $(calc "printf \"%+.3f\", ${W[replay_summary]} - ${W[replay_norules_summary]}") s; + flow/alert JSON $(calc "printf \"%+.3f\", ${W[replay]} - ${W[replay_summary]}") s$(ok replay_terminal && echo "; terminal view instead of none $(calc "printf \"%+.3f\", ${W[replay_terminal]} - ${W[replay]}") s")"
    fi
} | tee "$OUT/results.md"

# --- profile -----------------------------------------------------------------------------------
if ((PROFILE)); then
    if have perf && perf record -q -F 4000 -e cpu-clock -o "$OUT/perf.data" -- "$EW" replay "$MAIN" \
        --json "$OUT/perf.json" --no-terminal > /dev/null 2>&1 || [[ -s $OUT/perf.data ]]; then
        echo
        echo "### perf profile of replay (self time by module, cpu-clock samples)"
        perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio 2> /dev/null |
            awk -F'\t' '/^ +[0-9.]+%/ {
                pct = $0; sub(/%.*/, "", pct); gsub(/ /, "", pct)
                s = $0
                if (s ~ /\[k\]/) m = "kernel (read syscalls, page faults)"
                else if (s ~ /egresswatch::capture::|capture::file/) m = "capture (read)"
                else if (s ~ /egresswatch::decode::/) m = "decode"
                else if (s ~ /egresswatch::flow::/) m = "flow table"
                else if (s ~ /hashbrown|sip::Hasher|hash_one|BuildHasher/) m = "hash maps (flow index, geoip cache, dedup)"
                else if (s ~ /egresswatch::geoip::|maxminddb/) m = "geoip"
                else if (s ~ /egresswatch::policy::/) m = "policy"
                else if (s ~ /serde|egresswatch::sink::|egresswatch::event::|core::fmt|fmt::|Rfc3339/) m = "output (JSON, formatting)"
                else if (s ~ /egresswatch::engine::|cli::replay/) m = "engine (process, inlined flow update)"
                else if (s ~ /malloc|free|realloc|memmove|memcpy|memcmp|memset/) m = "libc (alloc, memcpy)"
                else m = "other"
                share[m] += pct
            }
            END { for (m in share) printf "| %s | %.1f%% |\n", m, share[m] }' |
            sort -t'|' -k3 -gr | { echo "| module | share |"; echo "|---|---:|"; cat; } | tee -a "$OUT/results.md"
    else
        note "perf unavailable: no profile"
    fi
fi
