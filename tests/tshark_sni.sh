#!/usr/bin/env bash
# Cross-checks egresswatch's SNI attribution against tshark, an independent TLS and QUIC reader.
#
#   tests/tshark_sni.sh [CAPTURE_OR_DIR...]      (default: ../shared/pcaps)
#
# For every ClientHello that tshark finds with a server_name (TLS over TCP, and the ClientHello
# inside QUIC Initial packets, which tshark decrypts itself), egresswatch's flow record with the
# same 5-tuple (either direction) must carry that name as remote.hostname, with
# hostname_source sni or quic. Prints a tally per capture and a total; exits 1 on any mismatch,
# 2 when a tool is missing or egresswatch fails.
#
# EGRESSWATCH names the binary to test (default: `cargo build`, then target/debug/egresswatch).
# tests/names.rs runs this script when tshark is on PATH.
#
# Two kinds of ClientHello are counted but not compared:
# - without SNI: nothing to compare;
# - inside a tunnel (6in4, VXLAN, GRE, ... : more than one IP header in the frame): egresswatch
#   reads the outer IP header only, so its flow is the tunnel's.
# Captures whose raw bytes hold neither a TLS record starting a ClientHello nor a UDP datagram
# starting with a QUIC Initial header are skipped without starting tshark (it would find nothing
# there, and each start costs about half a second): see may_hold_hello. A ClientHello whose
# first six bytes are split over two TCP segments would escape that test; TSHARK_SNI_ALL=1 runs
# tshark on every capture.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in tshark perl awk; do
    if ! command -v "$tool" > /dev/null; then
        echo "tshark_sni.sh: $tool is not on PATH" >&2
        exit 2
    fi
done

if [[ -z ${EGRESSWATCH:-} ]]; then
    (cd "$ROOT" && cargo build --quiet --bin egresswatch)
    EGRESSWATCH=${CARGO_TARGET_DIR:-$ROOT/target}/debug/egresswatch
fi
if [[ ! -x $EGRESSWATCH ]]; then
    echo "tshark_sni.sh: $EGRESSWATCH is not an executable" >&2
    exit 2
fi

if [[ $# -eq 0 ]]; then
    set -- "$ROOT/../shared/pcaps"
fi
captures=()
for arg in "$@"; do
    if [[ -d $arg ]]; then
        while IFS= read -r f; do captures+=("$f"); done < <(
            find "$arg" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.gz' \) | LC_ALL=C sort
        )
    else
        captures+=("$arg")
    fi
done
if [[ ${#captures[@]} -eq 0 ]]; then
    echo "tshark_sni.sh: no captures in $*" >&2
    exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Whether the raw bytes may hold a ClientHello:
# - TLS: a handshake record (type 22, version 3.0-3.4, two length bytes) whose first message is a
#   ClientHello (type 1, three length bytes, then legacy_version 3.x);
# - QUIC: a UDP datagram of at least 1200 bytes (RFC 9000 §14.1) whose payload starts with a
#   long header of Initial or 0-RTT type, version 1, 2 or draft 17-33, a destination connection
#   ID of 8 to 20 bytes (§7.2: a client's first one has at least 8) and a source one of at most 20.
may_hold_hello() {
    local reader=(cat)
    [[ $1 == *.gz ]] && reader=(gzip -dc)
    "${reader[@]}" -- "$1" 2> /dev/null | LC_ALL=C perl -0777 -ne '
        my $hit = /\x16\x03[\x00-\x04]..\x01...\x03[\x00-\x04]/s;
        while (!$hit && /(?:[\x05-\xff].|\x04[\xb8-\xff])..[\xc0-\xdf]
                         (?:\x00\x00\x00\x01|\x6b\x33\x43\xcf|\xff\x00\x00[\x11-\x21])
                         ([\x08-\x14])/gsx) {
            $hit = ord(substr($_, pos() + ord($1), 1)) <= 20;
        }
        exit($hit ? 0 : 1)'
}

# Flow records → "transport|addr|port|addr|port<TAB>hostname<TAB>source", in both directions.
# Reads the fixed layout of egresswatch's JSON lines (docs/json-format.md) with plain awk, so
# that no JSON tool is needed.
flow_names() {
    awk '
    function after(s, key,   i) { i = index(s, key); return i ? substr(s, i + length(key)) : "" }
    function jstr(s,   out, c) {            # a JSON string body, escapes kept as written
        out = ""
        while (length(s) > 0) {
            c = substr(s, 1, 1)
            if (c == "\\") { out = out substr(s, 1, 2); s = substr(s, 3); continue }
            if (c == "\"") break
            out = out c; s = substr(s, 2)
        }
        return out
    }
    function endpoint(s,   ip, rest) {     # s starts just after {"ip":"
        ip = jstr(s)
        rest = substr(s, length(ip) + 2)
        if (substr(rest, 1, 8) == ",\"port\":" && match(substr(rest, 9), /^[0-9]+/))
            return ip "|" substr(rest, 9, RLENGTH)
        return ip "|"
    }
    index($0, "\"event_type\":\"flow\"") {
        dev = endpoint(after($0, "\"device\":{\"ip\":\""))
        rem = endpoint(after($0, "\"remote\":{\"ip\":\""))
        tr = jstr(after($0, "\"transport\":\""))
        host = jstr(after($0, "\"hostname\":\""))
        src = jstr(after($0, "\"hostname_source\":\""))
        if (host == "") next
        print tr "|" dev "|" rem "\t" host "\t" src
        print tr "|" rem "|" dev "\t" host "\t" src
    }'
}

# Checks one capture; writes its tally line to $2.tally and mismatch details to $2.detail.
check_one() {
    local file=$1 out=$2 name
    name=$(basename -- "$file")
    : > "$out.detail"
    if [[ -z ${TSHARK_SNI_ALL:-} ]] && ! may_hold_hello "$file"; then
        echo "skip" > "$out.tally"
        return 0
    fi
    # tshark reports a damaged capture on stderr and exits non-zero after the frames it read.
    tshark -n -r "$file" -Y 'tls.handshake.type == 1' -T fields -E separator=/t \
        -e frame.number -e frame.protocols \
        -e ip.src -e ipv6.src -e tcp.srcport -e udp.srcport \
        -e ip.dst -e ipv6.dst -e tcp.dstport -e udp.dstport \
        -e tls.handshake.extensions_server_name \
        > "$out.tshark" 2> "$out.tshark.err" || true
    if [[ ! -s $out.tshark ]]; then
        echo "none" > "$out.tally"
        return 0
    fi
    local rc=0
    "$EGRESSWATCH" replay "$file" --events flow --json - --no-terminal --fail-on never \
        > "$out.flows" 2> "$out.flows.err" || rc=$?
    if [[ $rc -ne 0 && $rc -ne 3 ]]; then
        echo "error egresswatch exited with $rc: $(head -c 300 "$out.flows.err")" > "$out.tally"
        return 0
    fi
    flow_names < "$out.flows" > "$out.names"
    awk -F'\t' -v name="$name" -v detail="$out.detail" '
    FILENAME == ARGV[1] { have[$1] = have[$1] "\n" $2 "\t" $3; next }
    {
        hellos++
        # frame.protocols is like eth:ethertype:ip:tcp:tls; count the IP layers.
        n = split($2, layers, ":"); ips = 0
        for (i = 1; i <= n; i++) if (layers[i] == "ip" || layers[i] == "ipv6") ips++
        sni = $11; sub(/,.*/, "", sni); sni = tolower(sni)
        if (sni == "") { nosni++; next }
        if (ips != 1) { tunnelled++; next }
        if ($5 != "") { tr = "tcp"; sp = $5; dp = $9 } else { tr = "udp"; sp = $6; dp = $10 }
        src = $3 != "" ? $3 : $4; dst = $7 != "" ? $7 : $8
        key = tr "|" src "|" sp "|" dst "|" dp
        compared++
        found = 0
        n = split(have[key], entries, "\n")
        for (i = 1; i <= n; i++) {
            split(entries[i], e, "\t")
            if (e[1] == sni && (e[2] == "sni" || e[2] == "quic")) found = 1
        }
        if (found) { matched++; next }
        mismatches++
        seen = have[key] == "" ? "no named flow with this 5-tuple" : "egresswatch has:" have[key]
        gsub(/\n/, "\n      ", seen); gsub(/\t/, " ", seen)
        printf "  %s frame %s: %s %s:%s -> %s:%s SNI %s\n    %s\n", name, $1, tr, src, sp, dst, dp, sni, seen >> detail
    }
    END {
        printf "ok %d %d %d %d %d %d\n", hellos, compared, matched, nosni + 0, tunnelled + 0, mismatches + 0
    }' "$out.names" "$out.tshark" > "$out.tally"
}

# tshark spends most of its start waiting (dissector registration, reading its files): run a
# few more than the CPUs.
jobs_max=$(($(nproc 2> /dev/null || echo 2) + 2))
running=0
for i in "${!captures[@]}"; do
    check_one "${captures[$i]}" "$TMP/$i" &
    running=$((running + 1))
    if [[ $running -ge $jobs_max ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

status=0
files=0 hellos=0 compared=0 matched=0 nosni=0 tunnelled=0 mismatches=0
printf '%-45s %8s %8s %8s %8s %8s %10s\n' capture hellos compared matched no-sni tunnel mismatches
for i in "${!captures[@]}"; do
    name=$(basename -- "${captures[$i]}")
    read -r kind a b c d e f < "$TMP/$i.tally" || kind=error
    case $kind in
        skip | none) continue ;;
        ok)
            files=$((files + 1))
            hellos=$((hellos + a)) compared=$((compared + b)) matched=$((matched + c))
            nosni=$((nosni + d)) tunnelled=$((tunnelled + e)) mismatches=$((mismatches + f))
            printf '%-45s %8d %8d %8d %8d %8d %10d\n' "$name" "$a" "$b" "$c" "$d" "$e" "$f"
            cat "$TMP/$i.detail"
            ;;
        *)
            echo "$name: $(cat "$TMP/$i.tally")"
            status=2
            ;;
    esac
done
echo "total: $files capture(s) with ClientHellos, $hellos ClientHello(s), $compared with SNI compared, $matched matched, $nosni without SNI, $tunnelled tunnelled; mismatches: $mismatches"
if [[ $mismatches -ne 0 && $status -eq 0 ]]; then
    status=1
fi
exit $status
