#!/usr/bin/env bash
# Builds the LocalsTracing integration and runs its tests (the W3C baggage table, the instrument,
# the scopes, the InMemoryTracer wrapper), then builds baggage-bench in release mode and runs it
# briefly to show that it works. Its timings are not checked: on shared CI machines they are noise.
#
#     Integrations/LocalsTracing/ci.sh     # from anywhere; about 2 minutes from a clean clone on 2 cores
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Swift 6 mode, no warnings: fail on any warning in this package's own sources (not in the
# dependencies checked out under .build, nor in the root package, which has its own CI step).
check_warnings() {
    if grep ": warning:" "$log" | grep -F -e "$here/Sources/" -e "$here/Tests/"; then
        echo "ci.sh: warnings in Integrations/LocalsTracing (listed above)" >&2
        exit 1
    fi
}

swift build --package-path "$here" --build-tests 2>&1 | tee "$log"
check_warnings
swift test --package-path "$here" --skip-build

swift build --package-path "$here" -c release --product baggage-bench 2>&1 | tee "$log"
check_warnings
"$here/.build/release/baggage-bench" --iterations 2000 | tee "$log"
for row in "extract:" "inject:" "bind:" "baseline: ServiceContext.withValue"; do
    grep -q "^$row" "$log" || { echo "ci.sh: baggage-bench printed no '$row' row" >&2; exit 1; }
done
