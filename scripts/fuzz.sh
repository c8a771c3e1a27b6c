#!/usr/bin/env bash
# Fuzzes egresswatch's parsers with libFuzzer (cargo-fuzz layout in fuzz/).
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]
#
# Installs cargo-fuzz if it is missing; builds the targets with the stable toolchain and
# RUSTC_BOOTSTRAP=1 (for these fuzz builds only; FUZZ_TOOLCHAIN=nightly uses a nightly instead);
# builds seed corpora into fuzz/corpus/ (git-ignored, rebuilt every run) from ../shared
# (captures, GeoIP databases) and the repository's policies; runs each target for N seconds
# (default 60), J at a time (default 2, or 1 on one core); prints per target: runs, executions
# per second, coverage and any crash, timeout or out-of-memory input (kept under
# fuzz/artifacts/TARGET/). Exits 1 if a target found something. CI: `scripts/fuzz.sh --seconds 10`.
#
# Environment: SHARED (default ../shared), FUZZ_LOG_DIR (default fuzz/logs), FUZZ_TOOLCHAIN.
set -euo pipefail

ALL_TARGETS=(capture_file decode dns tls http quic policy geoip_open engine reroute)

seconds=60
jobs=$(( $(nproc 2>/dev/null || echo 1) >= 2 ? 2 : 1 ))
targets=()
while (($#)); do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --jobs=*) jobs="${1#*=}"; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (known: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
shared="${SHARED:-$root/../shared}"
corpus="$root/fuzz/corpus"
artifacts="$root/fuzz/artifacts"
logs="${FUZZ_LOG_DIR:-$root/fuzz/logs}"
mkdir -p "$logs"

# Input size each target is fuzzed with: whole-capture targets get 64 KiB (the seeds are capture
# prefixes of that size), GeoIP databases 128 KiB (the largest test database is 75 KB).
max_len() {
    case "$1" in
    capture_file) echo 65537 ;;
    engine) echo 65536 ;;
    geoip_open) echo 131072 ;;
    decode) echo 4097 ;;
    quic) echo 12288 ;;
    tls | policy) echo 8192 ;;
    dns | http | reroute) echo 4096 ;;
    esac
}

# --- toolchain and cargo-fuzz --------------------------------------------------------------------
# The project's stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Zsanitizer flags),
# for these fuzz builds only; FUZZ_TOOLCHAIN=nightly uses a nightly toolchain instead.
toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
else
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

started=$(date +%s)
echo "== building fuzz targets (${toolchain[*]:-stable, RUSTC_BOOTSTRAP=1})"
# `cargo fuzz build` takes one target or all; build all when several are asked.
one=()
((${#targets[@]} == 1)) && one=("${targets[0]}")
if ! cargo "${toolchain[@]}" fuzz build "${one[@]}" >"$logs/build.log" 2>&1; then
    tail -40 "$logs/build.log" >&2
    exit 2
fi
bin_dir="$root/fuzz/target/x86_64-unknown-linux-gnu/release"
for t in "${targets[@]}"; do
    [[ -x "$bin_dir/$t" ]] || { echo "fuzz.sh: $t was not built" >&2; exit 2; }
done

# --- seeds -----------------------------------------------------------------------------------------
echo "== building seed corpora"
rm -rf "$corpus"
mkdir -p "$corpus"
if [[ -d "$shared/pcaps" ]]; then
    cargo "${toolchain[@]}" run --quiet --manifest-path fuzz/Cargo.toml --no-default-features \
        --example seeds -- "$shared/pcaps" "$corpus"
else
    echo "note: $shared/pcaps is missing: capture seeds come from examples/ only"
    cargo "${toolchain[@]}" run --quiet --manifest-path fuzz/Cargo.toml --no-default-features \
        --example seeds -- "$root/examples" "$corpus"
fi
mkdir -p "$corpus/policy" "$corpus/geoip_open"
for f in examples/*.toml tests/fixtures/*.toml src/policy/default.toml; do
    [[ -f "$f" ]] && cp "$f" "$corpus/policy/$(echo "$f" | tr / _)"
done
if [[ -d "$shared/mmdb" ]]; then
    find "$shared/mmdb" -name '*.mmdb' -size -128k -print0 |
        while IFS= read -r -d '' f; do cp "$f" "$corpus/geoip_open/$(basename "$(dirname "$f")")_$(basename "$f")"; done
fi
for f in geoip/*.mmdb; do
    [[ -f "$f" && $(stat -c %s "$f") -le 131072 ]] && cp "$f" "$corpus/geoip_open/"
done
for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t" "$artifacts/$t"
done
echo "   seeds: $(for t in "${targets[@]}"; do printf '%s=%s ' "$t" "$(find "$corpus/$t" -type f | wc -l)"; done)"
built=$(date +%s)

# --- runs ------------------------------------------------------------------------------------------
run_one() {
    local t="$1" log="$logs/$1.log"
    # A crash stops libFuzzer at the first finding: that is the report we want.
    "$bin_dir/$t" "$corpus/$t" \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=5 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t/" >"$log" 2>&1 || true
}

before=$(mktemp)
find "$artifacts" -type f | sort >"$before"
echo "== fuzzing ${#targets[@]} target(s) for ${seconds}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

# --- report ----------------------------------------------------------------------------------------
status=0
printf '%-13s %12s %9s %7s %7s %8s  %s\n' target runs exec/s cov ft rss_mb findings
for t in "${targets[@]}"; do
    log="$logs/$t.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    found=$(comm -13 "$before" <(find "$artifacts/$t" -type f | sort) | tr '\n' ' ')
    kind=$(grep -Eo 'ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+|panicked at [^:]*:[0-9]+' "$log" | head -1 || true)
    if [[ -n "$found" || -n "$kind" ]]; then
        status=1
    fi
    printf '%-13s %12s %9s %7s %7s %8s  %s\n' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${rss:-?}" \
        "${found:+$kind $found}"
done
rm -f "$before"
finished=$(date +%s)
echo "== build and seeds $((built - started))s, fuzzing $((finished - built))s; logs in $logs"
if ((status)); then
    echo "fuzz.sh: findings above; reproduce with: $bin_dir/TARGET FILE" >&2
fi
exit "$status"
