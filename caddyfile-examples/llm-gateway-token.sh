#!/bin/sh
# llm-gateway-token.sh — Claude Code's apiKeyHelper for a gateway with SSO
# (llm_gateway's oidc line): prints a fresh token from the organisation's
# identity provider on stdout, and nothing else.
#
# ~/.claude/settings.json (or the managed settings your IT ships):
#
#   {
#     "apiKeyHelper": "~/.claude/llm-gateway-token.sh",
#     "env": {
#       "ANTHROPIC_BASE_URL": "https://llm.example.com",
#       "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "900000"
#     }
#   }
#
# Claude Code runs the helper at start, again when the TTL (default 5
# minutes) has passed, and at once when the gateway answers 401 — which it
# does for an expired token. Keep the TTL below the token lifetime (see
# docs/sso.md).
#
# Two ways to get the token, chosen by the environment:
#
# 1. The login tool you already use (it handles browsers, device flows and
#    refresh tokens): LLMGW_TOKEN_COMMAND is run and its output printed.
#      LLMGW_TOKEN_COMMAND='gcloud auth print-identity-token --audiences=llm-gateway'
#      LLMGW_TOKEN_COMMAND='az account get-access-token --resource api://llm-gateway --query accessToken -o tsv'
#      LLMGW_TOKEN_COMMAND='step oauth --bare --oidc --provider https://login.example.com --client-id llm-gateway'
#
# 2. The provider's token endpoint, with curl: LLMGW_TOKEN_URL, and either
#    a refresh token (LLMGW_REFRESH_TOKEN_FILE, a file only you can read,
#    written by your login flow) or client credentials (LLMGW_CLIENT_SECRET,
#    for service accounts and CI). LLMGW_CLIENT_ID is required;
#    LLMGW_SCOPE defaults to "openid email profile"; LLMGW_TOKEN_FIELD
#    picks id_token (default) or access_token — whichever carries the
#    audience and claims the gateway's oidc line expects. A provider that
#    rotates refresh tokens at each use needs way 1 (this script does not
#    write the new one back).
#
# POSIX sh; needs curl and sed for the second way. Errors go to stderr
# with a non-zero exit, so Claude Code shows them.

set -eu

fail() {
	printf 'llm-gateway-token: %s\n' "$*" >&2
	exit 1
}

if [ -n "${LLMGW_TOKEN_COMMAND:-}" ]; then
	token=$(sh -c "$LLMGW_TOKEN_COMMAND") || fail "LLMGW_TOKEN_COMMAND failed"
	token=$(printf '%s' "$token" | tr -d '\r\n')
	[ -n "$token" ] || fail "LLMGW_TOKEN_COMMAND printed nothing"
	printf '%s\n' "$token"
	exit 0
fi

[ -n "${LLMGW_TOKEN_URL:-}" ] || fail "set LLMGW_TOKEN_COMMAND, or LLMGW_TOKEN_URL and LLMGW_CLIENT_ID"
[ -n "${LLMGW_CLIENT_ID:-}" ] || fail "set LLMGW_CLIENT_ID"
command -v curl >/dev/null 2>&1 || fail "curl is required"
field=${LLMGW_TOKEN_FIELD:-id_token}
case $field in
id_token | access_token) ;;
*) fail "LLMGW_TOKEN_FIELD must be id_token or access_token" ;;
esac

# curl reads its form from a config on stdin (-K -): secrets never appear
# on a command line other users could see in ps, and are URL-encoded.
opt() {
	printf '%s = "%s"\n' "$1" "$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}
form() {
	opt data-urlencode "client_id=$LLMGW_CLIENT_ID"
	opt data-urlencode "scope=${LLMGW_SCOPE:-openid email profile}"
	if [ -n "${LLMGW_REFRESH_TOKEN_FILE:-}" ]; then
		[ -r "$LLMGW_REFRESH_TOKEN_FILE" ] || fail "cannot read $LLMGW_REFRESH_TOKEN_FILE"
		opt data "grant_type=refresh_token"
		opt data-urlencode "refresh_token=$(tr -d '\r\n' <"$LLMGW_REFRESH_TOKEN_FILE")"
	elif [ -n "${LLMGW_CLIENT_SECRET:-}" ]; then
		opt data "grant_type=client_credentials"
		opt data-urlencode "client_secret=$LLMGW_CLIENT_SECRET"
	else
		fail "set LLMGW_REFRESH_TOKEN_FILE or LLMGW_CLIENT_SECRET"
	fi
}
config=$(form)
answer=$(printf '%s\n' "$config" | curl -sS --fail-with-body --max-time 10 -K - \
	-H 'Accept: application/json' "$LLMGW_TOKEN_URL") || fail "token endpoint: $answer"

# The field's value: JWTs are base64url and dots, so no JSON escapes.
token=$(printf '%s' "$answer" | tr -d '\r\n' | sed -n "s/.*\"$field\"[[:space:]]*:[[:space:]]*\"\([A-Za-z0-9._-]*\)\".*/\1/p")
[ -n "$token" ] || fail "the token endpoint's answer has no $field"
printf '%s\n' "$token"
