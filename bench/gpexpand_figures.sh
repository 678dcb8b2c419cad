#!/usr/bin/env bash
# bench/gpexpand_figures.sh [ROWS]
#
# The figures of the gpexpand workflow (issue 12's targets), on a fresh `segexpand serve`
# each time, 4 segments expanded to 6 by `segexpand gpexpand`:
#
# 1. -n 1 against -n 2 on two equal tables of ROWS rows each (default 400,000; ~80-byte
#    rows): the time of the redistribution phase and its rate (source bytes / s).
# 2. The estimate: four tables of ROWS/4 .. ROWS rows expanded with -n 2 while
#    gpexpand.expansion_progress is read every 0.2 s; at the first reading past 25%, 50%
#    and 75% of the bytes done, the view's "Estimated Time to Completion" against the
#    time that was actually left (known when the run ends).
#
# Needs the release binary (cargo build --release) and psql.
set -euo pipefail
ROWS=${1:-400000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
BIN="$REPO/target/release/segexpand"
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d /tmp/gpexpand-fig.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
    [[ -n ${SX_PID:-} ]] && kill "$SX_PID" 2>/dev/null && wait "$SX_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGUSER=bench PGDATABASE=bench

start() { # start NAME: a fresh 4-segment server
    export PGPORT=$(free_port)
    "$BIN" serve --dir "$WORK/$1" --port "$PGPORT" --segments 4 > "$WORK/$1.log" 2>&1 &
    SX_PID=$!
    for _ in $(seq 100); do psql -XqAt -c 'select 1' >/dev/null 2>&1 && return; sleep 0.1; done
    echo "serve did not start" >&2; exit 1
}
stop() { kill "$SX_PID"; wait "$SX_PID" 2>/dev/null || true; SX_PID=; }
load() { # load TABLE ROWS
    psql -XqAt -c "create table $1 (id int8, pad text) distributed by (id)" >/dev/null 2>&1
    seq 1 "$2" | awk '{printf "%d\tpadding-%064d\n", $1, $1}' > "$WORK/rows"
    psql -XqAt -c "\\copy $1 from '$WORK/rows'" >/dev/null
}
setup() {
    printf 'localhost|127.0.0.1|6004|%s/%s-gpseg4|6|4|p\nlocalhost|127.0.0.1|6005|%s/%s-gpseg5|7|5|p\n' \
        "$WORK" "$1" "$WORK" "$1" > "$WORK/$1.in"
    "$BIN" gpexpand -s -i "$WORK/$1.in" >/dev/null
}
now() { date +%s.%N; }

echo "== 1. -n 1 against -n 2: two tables of $ROWS rows, 4 -> 6 segments"
for n in 1 2; do
    start "par$n"
    load a "$ROWS"; load b "$ROWS"
    setup "par$n"
    bytes=$(psql -XqAt -c "select sum(source_bytes) from gpexpand.status_detail")
    t0=$(now); "$BIN" gpexpand -s -n "$n"; t1=$(now)
    secs=$(echo "$t1 - $t0" | bc -l)
    rate=$(echo "$bytes / $secs / 1048576" | bc -l)
    printf -- "-n %d: %.2f s, %.1f MB/s (%s source bytes)\n" "$n" "$secs" "$rate" "$bytes"
    eval "rate$n=$rate"
    stop
done
printf -- "-n 2 / -n 1 rate: %.2fx\n" "$(echo "$rate2 / $rate1" | bc -l)"

echo "== 2. The estimate of time to completion: four tables, -n 2"
start est
i=1
for r in $((ROWS / 4)) $((ROWS / 2)) $((ROWS * 3 / 4)) "$ROWS"; do load "t$i" "$r"; i=$((i + 1)); done
setup est
t0=$(now)
"$BIN" gpexpand -s -n 2 &
GPX=$!
: > "$WORK/samples"
while kill -0 "$GPX" 2>/dev/null; do
    line=$(psql -XqAt -F' ' -c "select
        (select value from gpexpand.expansion_progress where name = 'Bytes Done'),
        (select value from gpexpand.expansion_progress where name = 'Bytes Left'),
        (select value from gpexpand.expansion_progress where name = 'Bytes In Progress'),
        (select value from gpexpand.expansion_progress where name = 'Estimated Time to Completion')" 2>/dev/null || true)
    [[ -n $line ]] && echo "$(now) $line" >> "$WORK/samples"
    sleep 0.2
done
wait "$GPX"
t_end=$(now)
printf "run took %.2f s\n" "$(echo "$t_end - $t0" | bc -l)"
printf "%-6s %-12s %-12s %-8s\n" "point" "estimated s" "actual s" "error"
for p in 25 50 75; do
    awk -v p="$p" -v end="$t_end" '
        $5 != "" && $2 + $3 + $4 > 0 {
            frac = 100 * $2 / ($2 + $3 + $4)
            if (frac >= p) {
                split($5, hms, ":"); est = hms[1] * 3600 + hms[2] * 60 + hms[3]
                act = end - $1
                printf "%-6s %-12.1f %-12.1f %+.0f%%\n", p "%", est, act, 100 * (est - act) / act
                exit
            }
        }' "$WORK/samples"
done
stop
