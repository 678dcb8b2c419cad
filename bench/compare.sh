#!/usr/bin/env bash
# bench/compare.sh BEFORE_COMMIT AFTER_COMMIT [RUNS]
#
# Measures two commits of this repository back to back on this machine, alternating
# BEFORE, AFTER, BEFORE, AFTER, ... (RUNS rounds, default 3), and prints a table of
# medians: metric, before, after, after/before.
#
# For each commit it makes a detached worktree under /tmp/segexpand-compare/<short-sha>
# (removed again at the end unless KEEP_WORKTREES=1), copies in
# bench/examples/select_stall_probe.rs from this checkout when the commit lacks it (and
# adds the `segexpand-redistributor` dev-dependency line to its bench/Cargo.toml when
# missing; the probe uses only the engine's root re-exports and the redistributor API
# that src/demo.rs uses), and builds with its own CARGO_TARGET_DIR
# (/tmp/segexpand-compare/target-<short-sha>, kept, so a second comparison of the same
# commit builds little):
#     cargo build --release -p segexpand-bench --examples
#     cargo build --release --bin segexpand
# Each round then runs, per commit:
#   1. point_get_probe               (1 M rows, 3 M gets; as committed, no flags)
#   2. mover_vs_seq_write MOVER_ROWS (default 1000000, the size BENCHMARKS.md quotes)
#   3. segexpand demo --fresh --json --rows DEMO_ROWS --idle-s DEMO_IDLE_S, in a fresh
#      temp data dir (SHRUNK from the defaults 1 M rows / 3 s idle to 200000 rows / 1 s:
#      the flip's stall does not grow with the table, see BENCHMARKS.md); a flag is
#      passed only if both commits' demos have it
#   4. select_stall_probe --runs 1 --csv PROBE_ARGS (200000 rows, 3 s idle, 3 -> 5)
# Environment: MOVER_ROWS, DEMO_ROWS, DEMO_IDLE_S, PROBE_ARGS (extra probe flags, e.g.
# "--readers 2"), COMPARE_ROOT (default /tmp/segexpand-compare), KEEP_WORKTREES=1.
#
# Time: a cold build is ~4 min per commit on the 2-core machine (deps included); each
# round is ~30 s per commit, so RUNS=3 takes ~10-12 min cold, ~3-4 min warm. Logs and the
# raw values (values.tsv) go to $COMPARE_ROOT/results-<date>/.
#
# The machine is shared: whatever else runs (builds, tests) shows up in every figure.
# The load average is logged per run, and select_stall_probe's stall floor (gaps > 1 ms
# seen by a thread that only spins on the clock) says how much of a slow SELECT count is
# the machine rather than the engine. Compare medians, not single rounds.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 BEFORE_COMMIT AFTER_COMMIT [RUNS]" >&2
    exit 2
fi
RUNS=${3:-3}
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "RUNS must be a whole number >= 1, got $RUNS" >&2
    exit 2
fi
MOVER_ROWS=${MOVER_ROWS:-1000000}
DEMO_ROWS=${DEMO_ROWS:-200000}
DEMO_IDLE_S=${DEMO_IDLE_S:-1}
PROBE_ARGS=${PROBE_ARGS:-}
ROOT=${COMPARE_ROOT:-/tmp/segexpand-compare}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
PROBE_SRC="$REPO/bench/examples/select_stall_probe.rs"
[[ -f $PROBE_SRC ]] || { echo "missing $PROBE_SRC" >&2; exit 1; }

T0=$(date +%s)
mkdir -p "$ROOT"
RES="$ROOT/results-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RES"
VALUES="$RES/values.tsv"
: >"$VALUES"
COMMANDS=()

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Remembers a command for the final list and $RES/commands.log.
note_cmd() {
    COMMANDS+=("$1")
    echo "$1" >>"$RES/commands.log"
}

# run_in DIR LOGFILE CMD...: runs CMD in DIR (output to LOGFILE) and remembers the
# exact command line for the final list (and $RES/commands.log).
run_in() {
    local dir=$1 logfile=$2
    shift 2
    local line="cd $dir && $(printf '%q ' "$@")"
    line=${line% }
    note_cmd "$line"
    log "$line"
    (cd "$dir" && "$@") >"$logfile" 2>&1
}

resolve() { git -C "$REPO" rev-parse --verify --quiet "$1^{commit}" || { echo "not a commit: $1" >&2; exit 1; }; }
BEFORE_SHA=$(resolve "$1")
AFTER_SHA=$(resolve "$2")
BEFORE_SHORT=$(git -C "$REPO" rev-parse --short=10 "$BEFORE_SHA")
AFTER_SHORT=$(git -C "$REPO" rev-parse --short=10 "$AFTER_SHA")

WORKTREES=()
cleanup() {
    if [[ ${KEEP_WORKTREES:-0} != 1 ]]; then
        for w in "${WORKTREES[@]}"; do
            git -C "$REPO" worktree remove --force "$w" >/dev/null 2>&1 || true
        done
    fi
}
trap cleanup EXIT

# Sets up and builds one commit; prints nothing on stdout. Sets HAS_PROBE_<short>.
prepare() {
    local sha=$1 short=$2
    local wt="$ROOT/$short" target="$ROOT/target-$short"
    if [[ -d $wt ]] && [[ $(git -C "$wt" rev-parse HEAD 2>/dev/null || true) == "$sha" ]]; then
        log "reusing worktree $wt"
    else
        git -C "$REPO" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
        git -C "$REPO" worktree prune
        note_cmd "git -C $REPO worktree add --detach $wt $sha"
        git -C "$REPO" worktree add --detach "$wt" "$sha" >/dev/null
    fi
    WORKTREES+=("$wt")
    local copied=0
    if ! git -C "$wt" cat-file -e "HEAD:bench/examples/select_stall_probe.rs" 2>/dev/null; then
        cp "$PROBE_SRC" "$wt/bench/examples/select_stall_probe.rs"
        copied=1
        note_cmd "cp $PROBE_SRC $wt/bench/examples/select_stall_probe.rs"
        if ! grep -q '^segexpand-redistributor' "$wt/bench/Cargo.toml"; then
            if grep -q '^\[dev-dependencies\]' "$wt/bench/Cargo.toml"; then
                sed -i '/^\[dev-dependencies\]/a segexpand-redistributor.workspace = true' "$wt/bench/Cargo.toml"
            else
                printf '\n[dev-dependencies]\nsegexpand-redistributor.workspace = true\n' >>"$wt/bench/Cargo.toml"
            fi
            note_cmd "sed -i '/^\\[dev-dependencies\\]/a segexpand-redistributor.workspace = true' $wt/bench/Cargo.toml"
        fi
    fi
    local has_probe=1
    if ! run_in "$wt" "$RES/build-$short-examples.log" \
        env CARGO_TARGET_DIR="$target" cargo build --release -p segexpand-bench --examples; then
        if [[ $copied == 1 ]]; then
            log "WARNING: $short does not build with the copied select_stall_probe.rs (its API differs);" \
                "building without it, the probe's rows will be empty for $short. See $RES/build-$short-examples.log"
            rm -f "$wt/bench/examples/select_stall_probe.rs"
            has_probe=0
            run_in "$wt" "$RES/build-$short-examples-2.log" \
                env CARGO_TARGET_DIR="$target" cargo build --release -p segexpand-bench --examples ||
                { tail -30 "$RES/build-$short-examples-2.log" >&2; exit 1; }
        else
            tail -30 "$RES/build-$short-examples.log" >&2
            exit 1
        fi
    fi
    run_in "$wt" "$RES/build-$short-bin.log" \
        env CARGO_TARGET_DIR="$target" cargo build --release --bin segexpand || { tail -30 "$RES/build-$short-bin.log" >&2; exit 1; }
    eval "HAS_PROBE_$short=$has_probe"
}

# Records one value: side round metric value (skips empty values).
put() {
    [[ -n ${4:-} ]] && printf '%s\t%s\t%s\t%s\n' "$3" "$1" "$2" "$4" >>"$VALUES"
    return 0
}

# The first number after "$2" in file $1 (a regex prefix), or nothing.
num_after() { grep -oE "$2[^0-9-]*-?[0-9]+(\.[0-9]+)?" "$1" | head -1 | grep -oE -- '-?[0-9]+(\.[0-9]+)?$' || true; }

log "BEFORE $BEFORE_SHORT, AFTER $AFTER_SHORT, $RUNS round(s); results in $RES"
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
prepare "$BEFORE_SHA" "$BEFORE_SHORT"
if [[ $AFTER_SHORT != "$BEFORE_SHORT" ]]; then
    prepare "$AFTER_SHA" "$AFTER_SHORT"
fi
T_BUILT=$(date +%s)

# Demo flags both binaries accept.
demo_help() { "$ROOT/target-$1/release/segexpand" demo --help 2>&1 || true; }
HELP_B=$(demo_help "$BEFORE_SHORT")
HELP_A=$(demo_help "$AFTER_SHORT")
both_have() { grep -q -- "$1" <<<"$HELP_B" && grep -q -- "$1" <<<"$HELP_A"; }
DEMO_FLAGS=(--fresh)
both_have --json && DEMO_FLAGS+=(--json)
both_have --rows && DEMO_FLAGS+=(--rows "$DEMO_ROWS")
both_have --idle-s && DEMO_FLAGS+=(--idle-s "$DEMO_IDLE_S")
DEMO_HAS_DIR=0
both_have --dir && DEMO_HAS_DIR=1
log "demo flags: ${DEMO_FLAGS[*]}$([[ $DEMO_HAS_DIR == 1 ]] && echo ' --dir <fresh temp dir>')"

# One round of one side.
measure() {
    local side=$1 short=$2 round=$3
    local wt="$ROOT/$short" bin="$ROOT/target-$short/release"
    local p="$RES/$side-r$round"
    put "$side" "$round" load_avg_1min "$(cut -d' ' -f1 /proc/loadavg)"

    # 1. point gets
    if run_in "$wt" "$p-point_get_probe.log" "$bin/examples/point_get_probe"; then
        put "$side" "$round" point_get_per_s "$(num_after "$p-point_get_probe.log" 'point get:')"
        put "$side" "$round" bulk_load_rows_per_s "$(num_after "$p-point_get_probe.log" 'bulk load:')"
        put "$side" "$round" reopen_ms "$(num_after "$p-point_get_probe.log" 'reopen:')"
    else
        log "point_get_probe failed ($side round $round), see $p-point_get_probe.log"
    fi

    # 2. mover against a plain write
    if run_in "$wt" "$p-mover_vs_seq_write.log" "$bin/examples/mover_vs_seq_write" "$MOVER_ROWS"; then
        local f="$p-mover_vs_seq_write.log"
        put "$side" "$round" mover_over_plain_ratio "$(num_after "$f" 'mover / plain =')"
        put "$side" "$round" mover_wal_mb_per_s "$(grep -oE '[0-9.]+ MB/s of WAL' "$f" | head -1 | grep -oE '^[0-9.]+' || true)"
        put "$side" "$round" seq_write_mb_per_s "$(grep -oE 'fsync of the same [0-9.]+ MB: [0-9.]+ s = [0-9.]+ MB/s' "$f" | grep -oE '[0-9.]+ MB/s$' | grep -oE '^[0-9.]+' || true)"
        put "$side" "$round" stay_flip_pct "$(grep -oE '= [0-9.]+ %' "$f" | head -1 | grep -oE '[0-9.]+' || true)"
    else
        log "mover_vs_seq_write failed ($side round $round), see $p-mover_vs_seq_write.log"
    fi

    # 3. the demo's flip stall, in a fresh temp data dir
    local dd
    dd=$(mktemp -d "$ROOT/demo-$short.XXXXXX")
    local dflags=("${DEMO_FLAGS[@]}")
    [[ $DEMO_HAS_DIR == 1 ]] && dflags+=(--dir "$dd/data")
    if run_in "$dd" "$p-demo.log" "$bin/segexpand" demo "${dflags[@]}"; then
        local f="$p-demo.log"
        for k in flip_dml_stall_us_max start_dml_stall_us select_p99_us_during select_max_us_during redistribute_s; do
            put "$side" "$round" "demo_$k" "$(num_after "$f" "\"?$k\"?")"
        done
    else
        log "demo failed ($side round $round), see $p-demo.log"
    fi
    rm -rf "$dd"

    # 4. slow point SELECTs
    local has_probe_var="HAS_PROBE_$short"
    if [[ ${!has_probe_var} == 1 ]]; then
        # shellcheck disable=SC2086 # PROBE_ARGS is a list of flags
        if run_in "$wt" "$p-select_stall_probe.log" "$bin/examples/select_stall_probe" --runs 1 --csv $PROBE_ARGS; then
            awk -F, -v side="$side" -v round="$round" '
                $1 == "csv" && $2 == "run" { for (i = 4; i <= NF; i++) col[i] = $i; next }
                $1 == "csv" && $2 == "all" {
                    ph = tolower($3)
                    for (i = 4; i <= NF; i++) {
                        if (col[i] == "" || $i == "") continue
                        if (col[i] ~ /^(move_s|start_stall_us|flip_stall_us)$/) {
                            if (ph != "during") continue
                            name = "probe_" col[i]
                        } else if (col[i] ~ /^(secs|select_errors|dml_errors|floor_stalled_ms)$/) {
                            continue
                        } else name = "probe_" ph "_" col[i]
                        printf "%s\t%s\t%s\t%s\n", name, side, round, $i
                    }
                }' "$p-select_stall_probe.log" >>"$VALUES"
        else
            log "select_stall_probe failed ($side round $round), see $p-select_stall_probe.log"
        fi
    fi
}

for ((r = 1; r <= RUNS; r++)); do
    log "round $r/$RUNS: BEFORE ($BEFORE_SHORT)"
    measure before "$BEFORE_SHORT" "$r"
    log "round $r/$RUNS: AFTER ($AFTER_SHORT)"
    measure after "$AFTER_SHORT" "$r"
done
T_END=$(date +%s)

echo
echo "== commands used (each once; every round repeats them; all of them, in order: $RES/commands.log) =="
declare -A seen=()
for c in "${COMMANDS[@]}"; do
    # The demo's data dir is a fresh mktemp dir each time.
    key=$(sed -E 's#demo-([0-9a-f]+)\.[A-Za-z0-9]{6}#demo-\1.XXXXXX#g' <<<"$c")
    if [[ -z ${seen[$key]:-} ]]; then
        seen[$key]=1
        echo "  $key"
    fi
done
echo
echo "== before = $BEFORE_SHORT, after = $AFTER_SHORT: medians of $RUNS round(s) (raw values: $VALUES) =="
awk -F'\t' '
    !($1 in order) { order[$1] = ++n; names[n] = $1 }
    { k = $1 SUBSEP $2; c = ++cnt[k]; v[k, c] = $4 + 0 }
    function med(k,    m, i, j, t, a) {
        m = cnt[k]
        if (m == 0) return ""
        for (i = 1; i <= m; i++) a[i] = v[k, i]
        for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        printf "%-34s %14s %14s %12s\n", "metric", "before", "after", "after/before"
        for (i = 1; i <= n; i++) {
            b = med(names[i] SUBSEP "before"); a = med(names[i] SUBSEP "after")
            if (b == "" || a == "") ratio = "-"
            else if (b == 0) ratio = (a == 0) ? "1.00" : "inf"
            else ratio = sprintf("%.2f", a / b)
            printf "%-34s %14s %14s %12s\n", names[i], (b == "" ? "-" : b), (a == "" ? "-" : a), ratio
        }
    }' "$VALUES"
echo
echo "build time $((T_BUILT - T0)) s, measuring $((T_END - T_BUILT)) s, total $((T_END - T0)) s"
echo "(counts such as probe_during_gt1ms are per run and phase; read them next to probe_*_floor_gaps_gt1ms, the machine's own stalls)"
