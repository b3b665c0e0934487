#!/usr/bin/env bash
# Builds the Benchmarks package in release mode, the way the benchmarks run: the package-benchmark
# suite (LocalsBenchmarks), the performance table (locals-compare) and the profiling loop
# (locals-profile). Runs no benchmark: timings on shared CI machines are noise. Fails on a
# compiler warning in this package's own sources.
#
#     Benchmarks/ci.sh            # from anywhere; about 4 minutes from a clean clone on 2 cores
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "Benchmarks: release build of LocalsBenchmarks, locals-compare and locals-profile"
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
