#!/usr/bin/env bash
# Builds the gRPC request-id example and runs its tests: the 1,000-call load test (Get and
# Expand, half with an id) and the malformed-id test against the real server on 127.0.0.1
# (ephemeral port), over plaintext HTTP/2 with a real gRPC client.
# A first build fetches and compiles grpc-swift, its NIO transport and SwiftNIO: minutes, not seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

swift build --package-path "$here" --build-tests 2>&1 | tee "$log"

# Swift 6 mode, no warnings: fail on any warning in this example's own code.
if grep ": warning:" "$log" | grep -F -e "$here/Sources/" -e "$here/Tests/"; then
    echo "ci.sh: warnings in Examples/GRPCRequestID (listed above)" >&2
    exit 1
fi

swift test --package-path "$here" --skip-build
