#!/usr/bin/env bash
# Builds the baggage-service example and runs its tests: AsyncHTTPClient propagation against a
# real server, chains of 2 and 3 services on loopback under 1,000 requests with 64 in flight, and
# a chain of 3 traced with swift-otel, whose spans are exported over OTLP/HTTP to a receiver in the
# test and checked there (tenant and request id on every span, one trace per request).
# Then runs the README's walkthrough with the real executable: three processes on free ports, one
# request with `baggage: tenant=acme,request-id=r-1`, and every line of every service checked.
# A first build fetches and compiles Hummingbird, SwiftNIO, AsyncHTTPClient and swift-otel:
# minutes, not seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
integration="$(cd "$here/../../Sources/LocalsTracing" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

swift build --package-path "$here" --build-tests 2>&1 | tee "$work/build.log"

# Swift 6 mode, no warnings: fail on any warning in this example's code or in the integration it
# builds from source (not in the dependencies checked out under .build, nor elsewhere in the root
# package, which has its own CI step).
if grep ": warning:" "$work/build.log" | grep -F -e "$here/Sources/" -e "$here/Tests/" -e "$integration/"; then
    echo "ci.sh: warnings in Examples/BaggageService or Sources/LocalsTracing (listed above)" >&2
    exit 1
fi

swift test --package-path "$here" --skip-build

echo "== walkthrough: service-a -> service-b -> service-c, as three processes"
binary="$(swift build --package-path "$here" --show-bin-path)/baggage-service"

# Starts a service on a free port, logging to $work/<name>.log, and sets $port to the bound port.
start() {
    local name="$1"; shift
    "$binary" --port 0 --name "$name" "$@" > "$work/$name.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do
        port="$(sed -n 's/.*Server started and listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$name.log")"
        if [ -n "$port" ]; then return 0; fi
        sleep 0.1
    done
    echo "ci.sh: $name did not start:" >&2
    cat "$work/$name.log" >&2
    exit 1
}
start service-c;                                   port_c="$port"
start service-b --next "http://127.0.0.1:$port_c"; port_b="$port"
start service-a --next "http://127.0.0.1:$port_b"; port_a="$port"

answer="$(curl -sS --max-time 30 -H 'baggage: tenant=acme,request-id=r-1' "http://127.0.0.1:$port_a/hello/ann")"
echo "$answer"
if [ "$(echo "$answer" | tail -n 1)" != "service-c: Hello, ann. tenant=acme request-id=r-1" ]; then
    echo "ci.sh: the last service did not answer with tenant=acme request-id=r-1" >&2
    exit 1
fi
for name in service-a service-b service-c; do
    # Every line written for the request (each names it in name= or hb.request.path=).
    request_lines="$(grep -E 'name=ann|/hello/ann' "$work/$name.log" || true)"
    count="$(printf '%s\n' "$request_lines" | grep -c . || true)"
    carrying="$(printf '%s\n' "$request_lines" | grep -c ': tenant=acme request-id=r-1 ' || true)"
    echo "$name: $count request lines, $carrying with tenant=acme request-id=r-1"
    if [ "$count" -eq 0 ] || [ "$count" -ne "$carrying" ]; then
        echo "ci.sh: $name logged lines without the request's values:" >&2
        cat "$work/$name.log" >&2
        exit 1
    fi
done
