#!/bin/sh
# `make demo`: gatepass end to end in a throw-away home (./demo-home), against the fake upstream
# that ships with gatepass (it speaks Anthropic's and OpenAI's wire formats; no real key is used).
set -eu
GATEPASS=${GATEPASS:-gatepass}
PYTHON=${PYTHON:-python3}
export GATEPASS_HOME="${GATEPASS_HOME:-$(pwd)/demo-home}"
rm -rf "$GATEPASS_HOME"
FAKE_PORT=${FAKE_PORT:-9100}
PORT=${PORT:-8790}
ADMIN_PORT=${ADMIN_PORT:-8791}
step() { printf '\n$ %s\n' "$*"; }
cleanup() { kill "$GATEWAY" "$FAKE" 2>/dev/null || true; wait 2>/dev/null || true; }

$PYTHON -m gatepass.testing.fake_upstream --port "$FAKE_PORT" >/dev/null 2>&1 &
FAKE=$!
GATEWAY=$FAKE
trap cleanup EXIT

step gatepass init
$GATEPASS init
step "printf FAKE-... | gatepass secret add anthropic-main --upstream anthropic"
$GATEPASS upstream add anthropic --type anthropic --base-url "http://127.0.0.1:$FAKE_PORT" --secret anthropic-main
printf 'FAKE-demo-%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
  | $GATEPASS secret add anthropic-main --upstream anthropic
step gatepass agent create acme-research-dev --owner me@example.com --budget 5/day
$GATEPASS agent create acme-research-dev --owner me@example.com --budget 5/day
step "gatepass allow acme-research-dev anthropic --models 'claude-haiku-*'"
$GATEPASS allow acme-research-dev anthropic --models 'claude-haiku-*' >/dev/null
step gatepass alert add acme-research-dev 1/day:warn 4/day:stop
$GATEPASS alert add acme-research-dev 1/day:warn 4/day:stop
step "KEY=\$(gatepass key issue acme-research-dev --ttl 1h)"
KEY=$($GATEPASS key issue acme-research-dev --ttl 1h)

step gatepass serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" '&'
$GATEPASS serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" 2>"$GATEPASS_HOME/../demo-gateway.log" &
GATEWAY=$!
i=0; while [ ! -f "$GATEPASS_HOME/gateway.json" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done

BODY='{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}'
step "curl http://127.0.0.1:$PORT/anthropic/v1/messages  (ANTHROPIC_BASE_URL=http://127.0.0.1:$PORT/anthropic)"
$PYTHON - "$PORT" "$KEY" "$BODY" <<'PY'
import json, sys, urllib.request
port, key, body = sys.argv[1:]
for model in ("claude-haiku-4-5", "claude-opus-4-1"):
    data = json.loads(body); data["model"] = model
    request = urllib.request.Request(f"http://127.0.0.1:{port}/anthropic/v1/messages", json.dumps(data).encode(),
                                     {"x-api-key": key, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
            print(f"{model}: {response.status} {answer['content'][0]['text']!r}, usage {answer['usage']}")
    except urllib.error.HTTPError as exc:
        print(f"{model}: {exc.code} {exc.headers['x-gatepass-denied']}: {json.load(exc)['error']['message']}")
PY

step gatepass spend
$GATEPASS spend
step gatepass audit tail -n 4
$GATEPASS audit tail -n 4
step gatepass revoke acme-research-dev
$GATEPASS revoke acme-research-dev
kill "$GATEWAY"; wait "$GATEWAY" 2>/dev/null || true
step gatepass audit verify
$GATEPASS audit verify
printf '\nthe demo home is %s; the gateway log is demo-gateway.log\n' "$GATEPASS_HOME"
