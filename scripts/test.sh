#!/usr/bin/env bash
# Runs the whole test suite, offline: formatting, vet, the library packages
# under the race detector, then the Caddy glue and the end-to-end tests
# (a real Caddy with the plugin, mock upstreams on 127.0.0.1, official SDKs).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests never reach a cloud metadata endpoint, whatever the machine.
export AWS_EC2_METADATA_DISABLED=true

# The Redis store's tests run a real redis-server (each test starts its own
# on a free port); install Debian's package when it is missing.
if ! command -v redis-server >/dev/null 2>&1; then
	echo "== installing redis-server"
	sudo=""
	if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
	# Tests start their own servers; the packaged service is not needed.
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi

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
