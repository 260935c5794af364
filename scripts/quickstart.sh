#!/bin/sh
# The README's quickstart, run end to end in a throw-away home (./demo-home):
# init, a secret, an agent with a budget, a grant, a key, and a verified audit log.
set -eu
GATEPASS=${GATEPASS:-gatepass}
export GATEPASS_HOME="${GATEPASS_HOME:-$(pwd)/demo-home}"
rm -rf "$GATEPASS_HOME"

step() { printf '\n$ %s\n' "$*"; }

step gatepass init
$GATEPASS init

# A made-up credential, generated now: the demo never touches a real key.
step "printf FAKE-... | gatepass secret add anthropic-main --upstream anthropic"
printf 'FAKE-demo-%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
  | $GATEPASS secret add anthropic-main --upstream anthropic

step gatepass agent create acme-research-dev --owner me@example.com --budget 50/month
$GATEPASS agent create acme-research-dev --owner me@example.com --budget 50/month

step "gatepass allow acme-research-dev anthropic --models 'claude-haiku-*'"
$GATEPASS allow acme-research-dev anthropic --models 'claude-haiku-*'

step gatepass key issue acme-research-dev --ttl 1h
$GATEPASS key issue acme-research-dev --ttl 1h > /dev/null
echo "(key printed once on stdout; hidden here)"

step gatepass check acme-research-dev anthropic --model claude-haiku-4-5 --path /v1/messages
$GATEPASS check acme-research-dev anthropic --model claude-haiku-4-5 --path /v1/messages

step gatepass key list
$GATEPASS key list

step gatepass audit tail -n 5
$GATEPASS audit tail -n 5

step gatepass audit verify
$GATEPASS audit verify

printf '\ngatepass is set up in %s; try: GATEPASS_HOME=%s %s --help\n' "$GATEPASS_HOME" "$GATEPASS_HOME" "$GATEPASS"
