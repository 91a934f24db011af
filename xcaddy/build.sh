#!/usr/bin/env bash
# Builds Caddy with the llm_gateway plugin using the real xcaddy tool, run
# through `go run` at a pinned version so nothing has to be installed.
#
#   xcaddy/build.sh            # builds ./caddy from this checkout
#   XCADDY_WITH=github.com/llmgateway/caddy-llm-gateway@v0.1.0 xcaddy/build.sh
#
# The result is the same binary as `go build ./xcaddy/caddy`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
XCADDY_VERSION="${XCADDY_VERSION:-v0.4.5}"
CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
OUTPUT="${OUTPUT:-$root/caddy}"
# A local checkout is pinned to v0.0.0 and replaced by the directory, so
# `go get` never asks the module proxy for this (unpublished) module.
with="${XCADDY_WITH:-github.com/llmgateway/caddy-llm-gateway@v0.0.0=$root}"
cd "$root"
exec go run "github.com/caddyserver/xcaddy/cmd/xcaddy@${XCADDY_VERSION}" build "$CADDY_VERSION" \
	--output "$OUTPUT" \
	--with "$with"
