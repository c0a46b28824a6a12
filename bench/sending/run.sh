#!/usr/bin/env bash
# The sending benchmarks of docs/benchmarks.md ("Sending"), end to end:
#
#   1. submission: messages/s accepted durably (storage.durability = full)
#      over SMTP (STARTTLS + AUTH once per connection, then pipelined
#      MAIL/RCPT/DATA) and over HTTP (POST /v1/messages, raw
#      message/rfc822), 16 connections, 10 KB messages; the same client
#      against Postfix, and Postfix's own smtp-source against Postfix.
#   2. outbound: messages/s delivered from tidings to smtp-sink after
#      enqueueing N messages: plain text without DKIM, with RSA-2048, with
#      Ed25519, and HTML with 10 links (click tracking rewrites them).
#
# Usage: bench/sending/run.sh [all|submission|postfix|outbound|dkim] ...
# Settings (environment): N (messages per run, default 20000), RUNS
# (repetitions, default 2), CONNS (default 16), SIZE (default 10240),
# PER_DEST (outbound.per_destination for the outbound runs, default: the
# configured default, 4), VARIANTS (outbound variants, default
# "none rsa2048 ed25519 html"), DOMAINS (recipient domains in the outbound
# runs, default 1: every message to the same domain, so per_destination
# caps concurrency), BENCH_TIDINGS_BIN (use this binary instead of
# building; BENCH_TIDINGS_REV names its revision), WORK (scratch directory, default /tmp/tidings-bench-sending),
# SKIP_BUILD=1.
#
# Needs root (Postfix), `apt-get install postfix` (smtp-source, smtp-sink,
# Postfix 3.7), curl, and ports 38080, 38525-38527, 38587, 38599 free on
# 127.0.0.1. Every load goes to 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/sending"
N=${N:-20000}
RUNS=${RUNS:-2}
CONNS=${CONNS:-16}
SIZE=${SIZE:-10240}
WORK=${WORK:-/tmp/tidings-bench-sending}
HTTP_PORT=38080 SMTP_PORT=38587 INBOUND_PORT=38525
SINK_PORT=38526 POSTFIX_PORT=38527 BLACKHOLE_PORT=38599
HZ=$(getconf CLK_TCK)

mkdir -p "$WORK"
LOAD="$ROOT/target/release/sending-load"
TIDINGS=${BENCH_TIDINGS_BIN:-$ROOT/target/release/tidings}

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- set-up

build() {
    [ "${SKIP_BUILD:-}" = 1 ] && return
    (cd "$ROOT" && cargo build --release -p tidings-bench-sending)
    if [ -z "${BENCH_TIDINGS_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release -p tidings)
    fi
}

machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${BENCH_TIDINGS_BIN:-}" ]; then
        echo "tidings: $TIDINGS (given; built from ${BENCH_TIDINGS_REV:-an unrecorded revision})"
    else
        echo "tidings: $TIDINGS (built $(date -u -r "$TIDINGS" +%H:%MZ)) from $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'), last change to the service's crates $(cd "$ROOT" && git log -1 --format=%h -- crates ':!crates/bench' ':!crates/bench-sending' 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- crates ':!crates/bench' ':!crates/bench-sending' 2>/dev/null || echo ' (working tree differs)')"
    fi
    # What a durable commit costs on this disk right now: 4 KiB pwrite +
    # fsync, 200 times, in $WORK (where the data directories go).
    python3 - "$WORK" <<'PY'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
t = time.perf_counter()
for i in range(200):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    os.fsync(fd)
print("fsync: %.2f ms per 4 KiB write + fsync" % ((time.perf_counter() - t) / 200 * 1000))
os.close(fd); os.unlink(p)
PY
    echo "postfix: $(postconf -h mail_version 2>/dev/null || echo 'not installed')"
}

SINK_PID= BLACKHOLE_PID= TPID=
cleanup() {
    for p in $TPID $SINK_PID $BLACKHOLE_PID; do kill -9 "$p" 2>/dev/null || true; done
    "$HERE/postfix.sh" stop "$WORK/postfix" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start_helpers() {
    local p
    for p in $HTTP_PORT $SMTP_PORT $INBOUND_PORT $SINK_PORT $POSTFIX_PORT $BLACKHOLE_PORT; do
        if ss -ltn "sport = :$p" | grep -q LISTEN; then
            echo "port $p on 127.0.0.1 is taken; stop what listens there first" >&2
            exit 1
        fi
    done
    # smtp-sink: a fast MX that accepts everything and throws it away
    # (PIPELINING, no TLS). Backlog 1000.
    smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1000 &
    SINK_PID=$!
    # A smarthost that takes the connection and never greets: the
    # outbound worker waits (timeout 3600 s) instead of delivering, which
    # isolates acceptance.
    "$LOAD" blackhole --listen "127.0.0.1:$BLACKHOLE_PORT" >/dev/null &
    BLACKHOLE_PID=$!
    sleep 0.5
}

# CPU ticks of a process (and its reaped children) plus its live children.
ticks() {
    local t c
    t=$(awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0)
    for c in $(pgrep -P "$1" 2>/dev/null); do
        t=$((t + $(awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# Busy and total jiffies of the whole machine.
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# Run a load generator, then print its CPU time and that of PID ($1) and
# the machine's busy share over the run.
measure() {
    local server=$1; shift
    local s0 m0 m1 g
    s0=$(ticks "$server"); read -r mb0 mt0 < <(machine_ticks)
    g=$( ( "$@" >&2; awk '{print $16+$17}' "/proc/$BASHPID/stat" ) )
    read -r mb1 mt1 < <(machine_ticks)
    local s1; s1=$(ticks "$server")
    echo "  cpu: server $(( (s1 - s0) * 1000 / HZ )) ms ($(( (s1 - s0) * 1000000 / HZ / N )) µs/msg), load generator $(( g * 1000 / HZ )) ms ($(( g * 1000000 / HZ / N )) µs/msg), machine busy $(( (mb1 - mb0) * 100 / (mt1 - mt0 + 1) ))% of $(nproc) cores" >&2
}

# start_tidings DATA_DIR SMARTHOST [VAR=value ...]: start the release binary,
# wait until it listens; sets TPID and (first start) KEY. Any sender is
# allowed, so that a variant decides alone whether sender.test has a key.
start_tidings() {
    local data=$1 smarthost=$2; shift 2
    mkdir -p "$data"
    env TIDINGS_DATA_DIR="$data" \
        TIDINGS_HTTP__LISTEN="127.0.0.1:$HTTP_PORT" \
        TIDINGS_SMTP__LISTEN="127.0.0.1:$SMTP_PORT" \
        TIDINGS_INBOUND__LISTEN="127.0.0.1:$INBOUND_PORT" \
        TIDINGS_OUTBOUND__SMARTHOST="$smarthost" \
        TIDINGS_OUTBOUND__TIMEOUT_SECS=3600 \
        TIDINGS_STORAGE__DURABILITY=full \
        TIDINGS_SENDING__ALLOW_ANY_SENDER=true \
        TIDINGS_SMTP__MAX_CONNECTIONS_PER_IP=256 \
        TIDINGS_HTTP__MAX_CONNECTIONS_PER_IP=4096 \
        "$@" "$TIDINGS" serve >>"$data/serve.out" 2>>"$data/serve.err" &
    TPID=$!
    for _ in $(seq 200); do
        grep -q '^listening on' "$data/serve.out" 2>/dev/null && break
        kill -0 "$TPID" || { cat "$data/serve.err" >&2; return 1; }
        sleep 0.05
    done
    local k; k=$(sed -n 's/^api key (shown once): //p' "$data/serve.out" | head -1)
    [ -n "$k" ] && KEY=$k
    return 0
}
# kill -9: the blackholed deliveries would hold a graceful stop for an hour;
# nothing accepted is lost (that is the point of durability = full).
kill_tidings() { kill -9 "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true; TPID=; }

fresh() { rm -rf "$WORK/$1"; echo "$WORK/$1"; }

# ---------------------------------------------------------------- 1. submission

submission() {
    log "== tidings submission, acceptance only (smarthost = blackhole), N=$N, $CONNS connections, $SIZE bytes"
    for r in $(seq "$RUNS"); do
        start_tidings "$(fresh sub-smtp)" "127.0.0.1:$BLACKHOLE_PORT"
        measure "$TPID" "$LOAD" smtp --addr "127.0.0.1:$SMTP_PORT" --starttls --auth "apikey:$KEY" \
            --conns "$CONNS" --messages "$N" --size "$SIZE" --label "tidings-smtp-$r"
        kill_tidings
        start_tidings "$(fresh sub-http)" "127.0.0.1:$BLACKHOLE_PORT"
        measure "$TPID" "$LOAD" http --addr "127.0.0.1:$HTTP_PORT" --key "$KEY" \
            --conns "$CONNS" --messages "$N" --size "$SIZE" --label "tidings-http-$r"
        kill_tidings
    done
    log "== tidings submission while delivering to smtp-sink (smarthost = smtp-sink)"
    for r in $(seq "$RUNS"); do
        local d; d=$(fresh sub-smtp-sink)
        start_tidings "$d" "127.0.0.1:$SINK_PORT"
        measure "$TPID" "$LOAD" smtp --addr "127.0.0.1:$SMTP_PORT" --starttls --auth "apikey:$KEY" \
            --conns "$CONNS" --messages "$N" --size "$SIZE" --label "tidings-smtp-delivering-$r"
        log "  sent by the end of acceptance: $(sqlite_count "$d" sent) of $N"
        kill_tidings
    done
}

sqlite_count() {
    python3 -c "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'/tidings.db?mode=ro', uri=True); print(c.execute('select count(*) from recipients where status=?', (sys.argv[2],)).fetchone()[0])" "$1" "$2"
}

# ---------------------------------------------------------------- Postfix

postfix_runs() {
    local pf="$WORK/postfix" mode
    for mode in hold relay; do
        log "== Postfix $(postconf -h mail_version), mode $mode (hold: every message parked in the hold queue; relay: relayed to smtp-sink at once)"
        "$HERE/postfix.sh" setup "$pf" "$POSTFIX_PORT" "$mode" "$SINK_PORT" >/dev/null
        "$HERE/postfix.sh" start "$pf" >/dev/null
        sleep 1
        local master; master=$(cat "$pf/queue/pid/master.pid" | tr -d ' ')
        for r in $(seq "$RUNS"); do
            log "-- smtp-source -s $CONNS -l $SIZE -m $N (a new connection per message, no pipelining, no TLS)"
            measure "$master" timed smtp-source -s "$CONNS" -l "$SIZE" -m "$N" \
                -f app@sender.test -t rcpt@example.test "127.0.0.1:$POSTFIX_PORT"
            settle "$pf" "$mode"
            log "-- smtp-source -d -s $CONNS -l $SIZE -m $N (connections kept)"
            measure "$master" timed smtp-source -d -s "$CONNS" -l "$SIZE" -m "$N" \
                -f app@sender.test -t rcpt@example.test "127.0.0.1:$POSTFIX_PORT"
            settle "$pf" "$mode"
            log "-- sending-load smtp --starttls (the client used for tidings; Postfix has no SASL here, so no AUTH)"
            measure "$master" "$LOAD" smtp --addr "127.0.0.1:$POSTFIX_PORT" --starttls \
                --conns "$CONNS" --messages "$N" --size "$SIZE" --label "postfix-$mode-starttls-$r"
            settle "$pf" "$mode"
        done
        "$HERE/postfix.sh" stop "$pf" >/dev/null
    done
}

# Wall time of a command, as a RESULT line.
timed() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    awk -v n="$N" -v ns=$((t1 - t0)) -v c="$*" \
        'BEGIN{printf "RESULT %s: %d messages in %.2f s = %.0f msg/s\n", c, n, ns/1e9, n/(ns/1e9)}'
}

# Between runs: empty the hold queue, or wait for the relay queue to drain.
settle() {
    local pf=$1 mode=$2
    if [ "$mode" = hold ]; then
        log "  $("$HERE/postfix.sh" count "$pf" | tr '\n' ' ')"
        "$HERE/postfix.sh" flush "$pf"
    else
        for _ in $(seq 600); do
            [ "$(find "$pf/queue/incoming" "$pf/queue/active" "$pf/queue/deferred" -type f | wc -l)" = 0 ] && break
            sleep 0.5
        done
        log "  relay queue drained: $("$HERE/postfix.sh" count "$pf" | tr '\n' ' ')"
    fi
}

# ---------------------------------------------------------------- 2. outbound

outbound() {
    local variant r d since s0 k0 k1 s1
    for variant in ${VARIANTS:-none rsa2048 ed25519 html}; do
        log "== outbound to smtp-sink, variant $variant, N=$N, per_destination=${PER_DEST:-default (4)}, recipient domains ${DOMAINS:-1}"
        for r in $(seq "$RUNS"); do
            d=$(fresh "out-$variant")
            start_tidings "$d" "127.0.0.1:$BLACKHOLE_PORT"
            local alg=none body=()
            case "$variant" in
            rsa2048 | ed25519) alg=$variant ;;
            # HTML with 10 links: click tracking rewrites each (a fresh
            # signed token per link and recipient), no DKIM.
            html) body=(--html-links 10) ;;
            esac
            if [ "$alg" != none ]; then
                curl -sf "http://127.0.0.1:$HTTP_PORT/v1/domains" -H "Authorization: Bearer $KEY" \
                    -H 'content-type: application/json' \
                    -d "{\"domain\": \"sender.test\", \"algorithm\": \"$alg\"}" >/dev/null
            fi
            "$LOAD" http --addr "127.0.0.1:$HTTP_PORT" --key "$KEY" --conns "$CONNS" \
                --messages "$N" --size "$SIZE" --domains "${DOMAINS:-1}" \
                --label "enqueue-$variant-$r" "${body[@]}" >&2
            kill_tidings
            # Now deliver: the same data, the smarthost is smtp-sink.
            k0=$(ticks "$SINK_PID"); read -r mb0 mt0 < <(machine_ticks)
            since=$(date +%s%3N)
            local extra=()
            [ -n "${PER_DEST:-}" ] && extra+=(TIDINGS_OUTBOUND__PER_DESTINATION="$PER_DEST")
            start_tidings "$d" "127.0.0.1:$SINK_PORT" "${extra[@]}"
            "$LOAD" wait-sent --db "$d/tidings.db" --count "$N" --since-ms "$since" \
                --label "$variant-$r"
            read -r mb1 mt1 < <(machine_ticks)
            s1=$(ticks "$TPID"); k1=$(ticks "$SINK_PID")
            log "  cpu: tidings $(( s1 * 1000 / HZ )) ms ($(( s1 * 1000000 / HZ / N )) µs/msg), smtp-sink $(( (k1 - k0) * 1000 / HZ )) ms ($(( (k1 - k0) * 1000000 / HZ / N )) µs/msg), machine busy $(( (mb1 - mb0) * 100 / (mt1 - mt0 + 1) ))% of $(nproc) cores"
            if [ "$alg" != none ]; then
                log "  dkim keys: $(python3 -c "import sqlite3,sys; print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute('select domain, algorithm from domain_keys').fetchall())" "$d/tidings.db")"
            fi
            kill_tidings
        done
    done
}

dkim() {
    log "== DKIM signing alone (tidings-mail dkim-bench, one thread, 10 KB)"
    (cd "$ROOT" && cargo run -q -p tidings-mail --release --bin dkim-bench -- 3)
}

# ---------------------------------------------------------------- main

what=${*:-all}
build
machine
start_helpers
for w in $what; do
    case "$w" in
    all) submission; postfix_runs; outbound; dkim ;;
    submission) submission ;;
    postfix) postfix_runs ;;
    outbound) outbound ;;
    dkim) dkim ;;
    *) echo "unknown: $w" >&2; exit 2 ;;
    esac
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
