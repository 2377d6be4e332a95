#!/usr/bin/env bash
# scripts/bench.sh -- `make bench`: yubin against Postfix, measured in the same run.
#
# For every case below it runs the shared Postfix harness (../shared/bench,
# called in place) and scripts/bench/yubin_run.sh one after the other, on the
# same loopback ports, with the same smtp-source load and the same idle wait,
# REPS times (alternating which MTA goes first).  Cases (N messages each):
#   accept-only  1 KB and 20 KB at concurrency 10 and 50 (message on disk at the 250)
#   relay        1 KB at concurrency 10, smtp-source -> MTA -> smtp-sink, end to end
# The cases in CLUSTER_CASES are also run on a three-node yubin cluster on this
# same machine (scripts/bench/cluster, which prints the same kind of line plus
# the time to 250), and after the loop FAILOVER_REPS failover runs kill the
# cluster's leader under load (lost mail, duplicates, time until deliveries
# resume).
# Prints each summary line as it comes, then the shared harness's table
# (lib/summarize.py) and the yubin/Postfix comparison (bench/compare.py) with
# the targets: accept-only >= 1.5x Postfix, relay >= 1.2x Postfix, three-node
# accept-only >= 1.0x single-node Postfix.
#
# Environment (defaults in brackets):
#   N [2000]  REPS [5]  CASES ["accept:1000:10 accept:1000:50 accept:20000:10 accept:20000:50 relay:1000:10"]
#   CLUSTER_CASES ["accept:1000:10 accept:1000:50 relay:1000:10"]  ("" = no cluster runs)
#   FAILOVER_REPS [2]  FAILOVER_N [3000]  FAILOVER_CONC [9]
#   BUDGET_S [600]      after this many seconds no further repetition of a case
#                       starts (each case always gets one), so that `make bench`
#                       stays under ~15 minutes; the tables show the runs done
#   BENCH_ROOT [/tmp/yubin-bench]  scratch and logs (must be under /tmp)
#   BENCH_STRICT [0]    1 = exit 3 when a target is missed
#   IDLE_MIN [85], IDLE_WAIT_S [20]  the shared harness's wait for an idle machine
#   SHARED_BENCH [<repo>/../shared/bench], YUBIN [<repo>/bin/yubin]
# Exit status: 0; 1 when a run failed or lost messages; 2 on a setup error.
# Needs root (the Postfix instance and smtp-sink -u postfix).  Only 127.0.0.1 is
# used; ports are picked free by the OS and checked again before each start;
# every process is stopped by PID.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$HERE/../../shared/bench" 2>/dev/null && pwd)}
export SHARED_BENCH
export YUBIN=${YUBIN:-$REPO/bin/yubin}
N=${N:-2000}
REPS=${REPS:-5}
CASES=${CASES:-"accept:1000:10 accept:1000:50 accept:20000:10 accept:20000:50 relay:1000:10"}
CLUSTER_CASES=${CLUSTER_CASES-"accept:1000:10 accept:1000:50 relay:1000:10"}
FAILOVER_REPS=${FAILOVER_REPS:-2}
FAILOVER_N=${FAILOVER_N:-3000}
FAILOVER_CONC=${FAILOVER_CONC:-9}
BUDGET_S=${BUDGET_S:-600}
BENCH_ROOT=${BENCH_ROOT:-/tmp/yubin-bench}
BENCH_STRICT=${BENCH_STRICT:-0}
export IDLE_MIN=${IDLE_MIN:-85}
export IDLE_WAIT_S=${IDLE_WAIT_S:-20}

die() { echo "bench: $*" >&2; exit 2; }

[[ -n $SHARED_BENCH && -x $SHARED_BENCH/postfix_accept_only.sh && -x $SHARED_BENCH/postfix_relay.sh ]] ||
    die "shared Postfix harness not found next to the repository (../shared/bench); set SHARED_BENCH"
[[ -x $YUBIN ]] || die "no yubin binary at $YUBIN (run make build)"
[[ $(id -u) == 0 ]] || die "must run as root (private Postfix instance, smtp-sink -u postfix)"
[[ $N =~ ^[1-9][0-9]*$ && $REPS =~ ^[1-9][0-9]*$ && $BUDGET_S =~ ^[0-9]+$ ]] ||
    die "N and REPS must be positive integers, BUDGET_S a number of seconds"
[[ $BENCH_ROOT == /tmp/* ]] || die "BENCH_ROOT must be under /tmp (got $BENCH_ROOT)"
for c in $CASES $CLUSTER_CASES; do
    [[ $c =~ ^(accept|relay):[1-9][0-9]*:[1-9][0-9]*$ ]] || die "bad case '$c' (want accept|relay:SIZE:CONC)"
done
[[ $FAILOVER_REPS =~ ^[0-9]+$ && $FAILOVER_N =~ ^[1-9][0-9]*$ && $FAILOVER_CONC =~ ^[1-9][0-9]*$ ]] ||
    die "FAILOVER_REPS, FAILOVER_N and FAILOVER_CONC must be numbers"
for t in postfix postconf smtp-source smtp-sink ss python3 awk; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool '$t' (run make test-deps)"
done

# free_port : a port on 127.0.0.1 that the kernel just handed out as free.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port_in_use() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

pick_ports() {
    local i
    for ((i = 0; i < 20; i++)); do
        SMTPD_PORT=$(free_port) && SINK_PORT=$(free_port) || die "cannot pick a free port"
        if [[ $SMTPD_PORT != "$SINK_PORT" ]] && ! port_in_use "$SMTPD_PORT" && ! port_in_use "$SINK_PORT"; then
            export SMTPD_PORT SINK_PORT
            return 0
        fi
    done
    die "no two free ports on 127.0.0.1"
}

mkdir -p "$BENCH_ROOT"
export PF_ROOT=$BENCH_ROOT/postfix YB_ROOT=$BENCH_ROOT/yubin
CLUSTER_BENCH=$BENCH_ROOT/cluster-bench
if [[ -n $CLUSTER_CASES || $FAILOVER_REPS != 0 ]]; then
    (cd "$REPO" && go build -o "$CLUSTER_BENCH" ./scripts/bench/cluster) || die "cannot build scripts/bench/cluster"
fi
STAMP=$(date +%Y%m%d-%H%M%S)
LOG=$BENCH_ROOT/bench-$STAMP.log
ERR=$LOG.stderr

# The run in progress; on INT/TERM it gets SIGTERM and cleans up after itself
# (its own trap stops its MTA and sink by PID).
CHILD=
stop_child() {
    [[ -n $CHILD ]] || return 0
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
    CHILD=
}
trap 'stop_child' EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

FAILED=0
# run_one MTA TEST SIZE CONC REP : one measurement; its summary line goes to stdout and the log.
run_one() {
    local mta=$1 test=$2 size=$3 conc=$4 rep=$5 cmd out rc
    case $mta/$test in
        postfix/accept) cmd=("$SHARED_BENCH/postfix_accept_only.sh" "$N" "$conc" "$size") ;;
        postfix/relay) cmd=("$SHARED_BENCH/postfix_relay.sh" "$N" "$conc" "$size") ;;
        yubin/*) cmd=("$HERE/bench/yubin_run.sh" "$test" "$N" "$conc" "$size") ;;
        yubin-cluster/*) cmd=("$CLUSTER_BENCH" -mode "$test" -n "$N" -conc "$conc" -size "$size"
            -yubin "$YUBIN" -root "$BENCH_ROOT/cluster" -idle-min "$IDLE_MIN" -idle-wait "${IDLE_WAIT_S}s") ;;
        failover/*) cmd=("$CLUSTER_BENCH" -mode failover -n "$FAILOVER_N" -conc "$FAILOVER_CONC" -size "$size"
            -yubin "$YUBIN" -root "$BENCH_ROOT/cluster" -idle-min "$IDLE_MIN" -idle-wait "${IDLE_WAIT_S}s") ;;
    esac
    pick_ports
    echo "# $(date -Is) rep=$rep SMTPD_PORT=$SMTPD_PORT SINK_PORT=$SINK_PORT: ${cmd[*]}" >> "$LOG"
    out=$BENCH_ROOT/run.out
    "${cmd[@]}" >"$out" 2>>"$ERR" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
    if [[ ! -s $out ]]; then
        local label="$mta $test"
        [[ $mta == failover ]] && label="yubin-cluster failover"
        echo "$label: N=$N conc=$conc size=$size FAILED rc=$rc (no summary line; see $ERR)" >"$out"
    fi
    tee -a "$LOG" < "$out"
    if [[ $rc != 0 ]]; then
        FAILED=1
        tail -5 "$ERR" | sed 's/^/    /' >&2
    fi
    return 0
}

{
    echo "# scripts/bench.sh $(date -Is) host=$(hostname) cores=$(nproc) postfix=$(postconf -h mail_version 2>/dev/null) $("$YUBIN" version 2>/dev/null)"
    echo "# N=$N REPS=$REPS CASES='$CASES' CLUSTER_CASES='$CLUSTER_CASES' FAILOVER_REPS=$FAILOVER_REPS FAILOVER_N=$FAILOVER_N IDLE_MIN=$IDLE_MIN IDLE_WAIT_S=$IDLE_WAIT_S SHARED_BENCH=$SHARED_BENCH"
} >> "$LOG"
echo "yubin vs Postfix, N=$N, up to $REPS repetitions, log $LOG"
echo "targets: accept-only >= 1.5x Postfix msgs/s, relay (end to end) >= 1.2x Postfix msgs/s, three-node accept-only >= 1.0x Postfix"
START=$SECONDS
for ((rep = 1; rep <= REPS; rep++)); do
    for c in $CASES; do
        if ((rep > 1 && SECONDS - START > BUDGET_S)); then
            echo "bench: ${BUDGET_S}s budget used; no more repetitions (rep $rep not done for $c and later)" | tee -a "$LOG"
            break 2
        fi
        IFS=: read -r test size conc <<< "$c"
        # Alternate the order so that neither MTA always runs on a box just
        # busied by the other's cleanup.
        if ((rep % 2)); then order="postfix yubin"; else order="yubin postfix"; fi
        [[ " $CLUSTER_CASES " == *" $c "* ]] && order+=" yubin-cluster"
        for mta in $order; do
            run_one "$mta" "$test" "$size" "$conc" "$rep"
        done
    done
done
for ((rep = 1; rep <= FAILOVER_REPS; rep++)); do
    run_one failover failover 1000 "$FAILOVER_CONC" "$rep"
done
echo "# done $(date -Is) after $((SECONDS - START))s" >> "$LOG"

echo
echo "## All runs (shared lib/summarize.py)"
echo
python3 "$SHARED_BENCH/lib/summarize.py" "$LOG"
echo
echo "## yubin / Postfix"
echo
strict=()
[[ $BENCH_STRICT == 1 ]] && strict=(--strict)
python3 "$HERE/bench/compare.py" "${strict[@]}" "$LOG"
crc=$?
echo
echo "log: $LOG (progress and errors: $ERR); took $((SECONDS - START))s"
((FAILED)) && exit 1
exit "$crc"
