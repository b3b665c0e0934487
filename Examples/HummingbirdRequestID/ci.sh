#!/usr/bin/env bash
# Builds the Hummingbird request-id example and runs its tests: Hummingbird's router tests, the
# event-loop cross-talk test, and the 1,000-request load tests (/hello and /stream mixed, and
# /greet-later with and without a snapshot) against the real server on 127.0.0.1 (ephemeral port).
# A first build fetches and compiles Hummingbird, SwiftNIO and AsyncHTTPClient: minutes, not seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

swift build --package-path "$here" --build-tests 2>&1 | tee "$log"

# Swift 6 mode, no warnings: fail on any warning in this example's own code.
if grep ": warning:" "$log" | grep -F -e "$here/Sources/" -e "$here/Tests/"; then
    echo "ci.sh: warnings in Examples/HummingbirdRequestID (listed above)" >&2
    exit 1
fi

swift test --package-path "$here" --skip-build
