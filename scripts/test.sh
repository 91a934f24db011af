#!/usr/bin/env bash
# Runs the whole test suite, offline: formatting, vet, the library packages
# under the race detector, then the Caddy glue and the end-to-end tests
# (a real Caddy with the plugin, mock upstreams on 127.0.0.1, official SDKs).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests never reach a cloud metadata endpoint, whatever the machine.
export AWS_EC2_METADATA_DISABLED=true

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== unit tests with -race (governance, providers)"
go test -race -count=1 ./governance/... ./providers/...

echo "== Caddy glue and end-to-end tests"
go test -count=1 ./module/... ./integration/... .
