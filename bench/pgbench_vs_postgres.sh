#!/usr/bin/env bash
# bench/pgbench_vs_postgres.sh [SCALE] [SECONDS] [CLIENTS]
#
# pgbench against `segexpand serve` and against a throwaway PostgreSQL 15 cluster on the
# same machine, back to back: the same scale, clients, duration and protocol mode.
# Prints one table: the load time of `pgbench -i -s SCALE` with its default steps
# (dtgvp: drop, create, client-side generate with COPY, vacuum, primary keys) on both,
# then tps of `-S` and of the default tpcb-like script in each of -M simple, extended and
# prepared (with -n: the runs do not vacuum or truncate between them).
#
# Needs: the release binary (cargo build --release), the PostgreSQL 15 server binaries
# (Debian's postgresql-15: /usr/lib/postgresql/15/bin) and client tools, and root (the
# cluster runs as the `postgres` user). Defaults: SCALE 10, SECONDS 10, CLIENTS 4.
# PostgreSQL runs with its defaults (fsync on, synchronous_commit on), as segexpand
# fsyncs every commit.
set -euo pipefail
SCALE=${1:-10}
SECS=${2:-10}
CLIENTS=${3:-4}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
BIN="$REPO/target/release/segexpand"
PGBIN=/usr/lib/postgresql/15/bin
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }
[[ -x $PGBIN/initdb ]] || { echo "needs postgresql-15 (apt-get install -y postgresql-15)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pgbench-vs.XXXXXX)
chmod 755 "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SX_PORT=$(free_port)
PG_PORT=$(free_port)
cleanup() {
    [[ -n ${SX_PID:-} ]] && kill "$SX_PID" 2>/dev/null && wait "$SX_PID" 2>/dev/null || true
    su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m fast stop" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve --dir "$WORK/sx" --port "$SX_PORT" --segments 4 > "$WORK/sx.log" 2>&1 &
SX_PID=$!
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
su postgres -c "$PGBIN/initdb -D $WORK/pg -A trust -U postgres" > "$WORK/initdb.log" 2>&1
su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1' -l $WORK/pg/server.log start" > /dev/null
sleep 2

run() { # system port args...
    local port=$2; shift 2
    PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres pgbench "$@" 2>&1
}
tps() { grep -oP 'tps = \K[0-9.]+' | head -1; }
failed() { grep -oP 'number of failed transactions: \K[0-9]+' | head -1; }

printf '%-28s %14s %14s %8s\n' measure segexpand postgres15 ratio
for sys in sx pg; do
    port=$([[ $sys == sx ]] && echo "$SX_PORT" || echo "$PG_PORT")
    t0=$(date +%s.%N)
    run $sys "$port" -i -s "$SCALE" -q > "$WORK/init-$sys.log"
    t1=$(date +%s.%N)
    eval "init_$sys=$(echo "$t1 - $t0" | bc)"
done
printf '%-28s %13.2fs %13.2fs %8.2f\n' "init -s $SCALE (dtgvp)" "$init_sx" "$init_pg" "$(echo "$init_sx / $init_pg" | bc -l)"
for script in "-S" ""; do
    for mode in simple extended prepared; do
        name="${script:-tpcb-like} -M $mode"
        out_sx=$(run sx "$SX_PORT" -n -c "$CLIENTS" -j 2 -T "$SECS" -M $mode $script)
        out_pg=$(run pg "$PG_PORT" -n -c "$CLIENTS" -j 2 -T "$SECS" -M $mode $script)
        a=$(tps <<<"$out_sx"); b=$(tps <<<"$out_pg")
        printf '%-28s %14s %14s %8.2f   (failed: %s / %s)\n' "$name" "$a" "$b" "$(echo "$a / $b" | bc -l)" "$(failed <<<"$out_sx")" "$(failed <<<"$out_pg")"
    done
done
