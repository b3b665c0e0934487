#!/usr/bin/env bash
# Builds the Benchmarks package in release mode, the way the benchmarks run: the package-benchmark
# suite (LocalsBenchmarks), the performance table (locals-compare), the profiling loop
# (locals-profile) and the W3C baggage costs (baggage-bench). Times nothing that is checked:
# timings on shared CI machines are noise. It only runs baggage-bench briefly, to show that it
# works and prints its rows. Fails on a compiler warning in this package's own sources.
#
#     Benchmarks/ci.sh            # from anywhere; about 4 minutes from a clean clone on 2 cores
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "Benchmarks: release build of LocalsBenchmarks, locals-compare, locals-profile and baggage-bench"
started=$SECONDS
if ! swift build -c release --package-path "$here" 2>&1 | tee "$log"; then
    echo "Benchmarks: build failed" >&2
    exit 1
fi

# Warnings from this package's sources (not from dependencies checked out under .build).
if grep -E "^$here/(Sources|LocalsBenchmarks|Package.swift)[^ ]*: warning:" "$log" >&2; then
    echo "Benchmarks: the build has warnings (above); fix them" >&2
    exit 1
fi
echo "Benchmarks: built in $((SECONDS - started)) s"

echo "Benchmarks: a short smoke run of baggage-bench"
"$(swift build -c release --package-path "$here" --show-bin-path)/baggage-bench" --iterations 2000 | tee "$log"
for row in "extract:" "inject:" "bind:" "baseline: ServiceContext.withValue"; do
    if ! grep -q "^$row" "$log"; then
        echo "Benchmarks: baggage-bench printed no '$row' row" >&2
        exit 1
    fi
done
