#!/usr/bin/env bash
# Runs the whole test suite, offline: formatting, vet, the library packages
# under the race detector, then the Caddy glue and the end-to-end tests
# (a real Caddy with the plugin, mock upstreams on 127.0.0.1, official SDKs).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests never reach a cloud metadata endpoint, whatever the machine.
export AWS_EC2_METADATA_DISABLED=true

# Tests run real programs, never mocks of them: redis-server and PostgreSQL
# (each test starts its own server on a free port), headless Chromium for the
# dashboard, promtool to lint the metrics. Install Debian's packages for the
# ones missing; the services the packages start are not used.
sudo=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi
apt_updated=""
need() { # need <command> <package> [path-glob]: install <package> unless <command> is found
	if command -v "$1" >/dev/null 2>&1; then return; fi
	if [ -n "${3:-}" ] && compgen -G "$3" >/dev/null; then return; fi
	echo "== installing $2"
	if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
	$sudo service "$2" stop >/dev/null 2>&1 || true
}
need redis-server redis-server
need initdb postgresql '/usr/lib/postgresql/*/bin/initdb'
need chromium chromium
need promtool prometheus

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
