#!/usr/bin/env bash
# Load test of `kvssign serve` on loopback, as recorded in BENCHMARKS.md.
#
# Builds kvssign, starts `kvssign emulate` and `kvssign serve` (static
# token, rate limits off, audit log to a file), warms the cache with one
# request, then runs wrk against POST /v1/connections:
#   1. saturation: 4 connections as fast as they go;
#   2. paced: 36 connections, each waiting 1 ms after each answer (~20k/s);
# and prints the emulator's call counters before and after (they must not
# move: the cache answers everything) and the server's own latency
# histogram. Needs wrk (apt-get install -y wrk). Everything stays on
# 127.0.0.1 and stops on exit.
#
#   vend/testdata/loadtest.sh [DURATION]     # default 60s
set -euo pipefail
dur=${1:-60s}
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "loadtest: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/kvssign" ./cmd/kvssign

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
emu_port=$(free_port)
vend_port=$(free_port)
token="kvst_$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
hash=$(printf %s "$token" | "$work/kvssign" serve hash-token)
cat > "$work/vend.json" <<JSON
{
  "addr": "127.0.0.1:$vend_port",
  "region": "us-west-2",
  "endpointUrl": "http://127.0.0.1:$emu_port",
  "auth": {"tokens": [{"name": "bench", "sha256": "$hash"}]},
  "rules": [{"principals": ["token:bench"], "channels": ["bench"], "roles": ["MASTER", "VIEWER"]}],
  "limits": {"perIp": {"perSecond": -1}, "perPrincipal": {"perSecond": -1}}
}
JSON
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body   = '{"channel":"bench","role":"VIEWER","clientId":"token-bench.wrk"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
{ cat "$work/post.lua"; printf 'function delay()\n  return 1\nend\n'; } > "$work/paced.lua"

"$work/kvssign" emulate --addr "127.0.0.1:$emu_port" --create-channel bench --log-level warn > "$work/emulate.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$emu_port/_emulator/stats" >/dev/null && break; sleep 0.1; done
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
	"$work/kvssign" serve --config "$work/vend.json" > "$work/serve.out" 2> "$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$vend_port/v1/connections"
curl -sf -o /dev/null -X POST "$url" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	-d '{"channel":"bench","role":"VIEWER","clientId":"token-bench.wrk"}'

calls() { curl -s "http://127.0.0.1:$emu_port/_emulator/stats" | python3 -c 'import json,sys; c=json.load(sys.stdin)["calls"]; print(" ".join(f"{k}={v}" for k,v in sorted(c.items()) if v))'; }
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/')"
echo "emulator calls after warm-up: $(calls)"
echo
echo "== saturation: wrk -t1 -c4 -d$dur --latency"
wrk -t1 -c4 -d"$dur" --latency -s "$work/post.lua" "$url"
echo "load after: $(uptime | sed 's/.*load/load/')"
echo
echo "== paced (~20k/s): wrk -t1 -c36 -d$dur --latency, 1 ms delay per connection"
wrk -t1 -c36 -d"$dur" --latency -s "$work/paced.lua" "$url"
echo "load after: $(uptime | sed 's/.*load/load/')"
echo
echo "emulator calls after both runs: $(calls)"
echo "server-side latency histogram (connections), cache and upstream counters:"
curl -s "http://127.0.0.1:$vend_port/metrics" | grep -v '^#' | grep -E 'kvssign_vend_(request_duration_seconds_bucket\{route="connections"|cache_requests_total|upstream_calls_total|requests_total\{code)'
echo "audit lines logged: $(grep -c '"msg":"vended"' "$work/serve.log")"
