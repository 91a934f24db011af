#!/bin/sh
# Claude Code status line for llm_gateway: your own spend and budget as you
# work, e.g.
#
#   alice · today $1.23 · $3.77 left of $5/day · session $0.41
#
# POSIX sh and curl only. It asks the gateway's GET …/llm_gateway/me with the
# key Claude Code already uses: ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN
# (or ANTHROPIC_API_KEY), which the `env` of Claude Code's settings.json sets,
# and the session id from the JSON Claude Code passes on stdin. Install:
#
#   cp statusline.sh ~/.claude/statusline.sh
#
# and in ~/.claude/settings.json (see caddyfile-examples/claude-settings.json):
#
#   "statusLine": {"type": "command", "command": "sh ~/.claude/statusline.sh"}

input=$(cat)

base=${ANTHROPIC_BASE_URL:-}
token=${ANTHROPIC_AUTH_TOKEN:-}
header="Authorization: Bearer"
if [ -z "$token" ]; then
	token=${ANTHROPIC_API_KEY:-}
	header="x-api-key:"
fi
if [ -z "$base" ] || [ -z "$token" ]; then
	echo "llm_gateway: set ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN"
	exit 0
fi

# The top-level "session_id" of Claude Code's JSON, kept to the characters a
# session id has (a UUID).
session=$(printf '%s' "$input" | tr -d '\r\n' |
	sed -n 's/.*"session_id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' |
	tr -cd 'A-Za-z0-9._-' | cut -c1-128)

# Quotes and backslashes escaped for curl's config syntax.
token=$(printf '%s' "$token" | sed 's/[\\"]/\\&/g')

# The key goes to curl on its standard input (-K -), never on its command
# line, where other users of the machine could read it.
resp=$(
	{
		printf 'header = "%s %s"\n' "$header" "$token"
		if [ -n "$session" ]; then
			printf 'header = "X-Claude-Code-Session-Id: %s"\n' "$session"
		fi
	} | curl -s --max-time 3 -w '\n%{http_code}' -K - "${base%/}/llm_gateway/me?format=text" 2>/dev/null
) || {
	echo "llm_gateway: no answer from ${base%/}"
	exit 0
}
code=$(printf '%s\n' "$resp" | tail -n 1)
case $code in
200) printf '%s\n' "$resp" | head -n 1 ;;
401 | 403) echo "llm_gateway: key not accepted ($code)" ;;
*) echo "llm_gateway: HTTP $code from ${base%/}" ;;
esac
