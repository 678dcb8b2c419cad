#!/usr/bin/env bash
# bench/figures.sh [PRESET ...]
#
# Regenerates the harness figures of docs/BENCHMARKS.md: runs each preset (default: all
# of headline, sweep-nm, sweep-throttle, ycsb-a, pgbench) with
#   cargo run --release -p segexpand-bench --bin harness -- --preset P --out $WORK/P
# and copies what the document shows — the figures (PNG and SVG), sweep.csv,
# summary.json and report.md of the run or sweep — into docs/figures/P/. The full run
# directories (every run's CSVs and plots) stay in $WORK (printed at the end).
# pgbench needs PostgreSQL 15's client tools (apt-get install -y postgresql-client).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
cd "$REPO"
PRESETS=("$@")
(( ${#PRESETS[@]} )) || PRESETS=(headline sweep-nm sweep-throttle ycsb-a pgbench)
WORK=$(mktemp -d /tmp/segexpand-figures.XXXXXX)
cargo build --release -p segexpand-bench --bin harness
for p in "${PRESETS[@]}"; do
    echo "== $p" >&2
    ./target/release/harness --preset "$p" --out "$WORK/$p"
    dst=docs/figures/$p
    rm -rf "$dst" && mkdir -p "$dst"
    cp "$WORK/$p"/*.png "$WORK/$p"/*.svg "$WORK/$p"/summary.json "$WORK/$p"/report.md "$dst"/
    [[ -f $WORK/$p/sweep.csv ]] && cp "$WORK/$p/sweep.csv" "$dst"/
    # A sweep's first run's timelines too (its throughput and latency).
    first=$(find "$WORK/$p" -mindepth 1 -maxdepth 1 -type d -name '01-*' | head -1)
    if [[ -n $first ]]; then
        for f in throughput latency; do
            cp "$first/$f.png" "$dst/$(basename "$first")-$f.png"
        done
    fi
done
echo "full run directories: $WORK" >&2
