#!/usr/bin/env bash
# The browser demo on this machine, no AWS account needed: starts
# `kvssign emulate` (with a channel "demo") and `kvssign serve --web` on
# loopback with a fresh bearer token, and prints the master and viewer URLs
# to open. Ctrl-C stops both. docs/web.md explains what happens.
#
#   scripts/web-demo.sh                 # emulator on :4566, page and API on :8080
#   EMULATOR_ADDR=127.0.0.1:4600 VEND_ADDR=127.0.0.1:8090 scripts/web-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

emu=${EMULATOR_ADDR:-127.0.0.1:4566}
vendaddr=${VEND_ADDR:-127.0.0.1:8080}
channel=${CHANNEL:-demo}

work=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building kvssign…"
go build -o "$work/kvssign" ./cmd/kvssign

wait_http() { # url, name, pid, log
	local i
	for i in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	echo "$2 did not start; its output:" >&2
	cat "$4" >&2
	exit 1
}

# The emulator accepts AWS's documented example key pair by default; the
# vending server signs with it (through STS, scoped to the channel). It is
# public and works only here: never use it against AWS.
"$work/kvssign" emulate --addr "$emu" --create-channel "$channel" >"$work/emulator.log" 2>&1 &
pids+=($!)
wait_http "http://$emu/" "kvssign emulate" "${pids[-1]}" "$work/emulator.log"

token=$(openssl rand -hex 24)
cat >"$work/serve.json" <<EOF
{
  "addr": "$vendaddr",
  "region": "us-west-2",
  "endpointUrl": "http://$emu",
  "auth": {"tokens": [{"name": "demo", "sha256": "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"}]},
  "rules": [{"principals": ["token:demo"], "channels": ["$channel"], "roles": ["MASTER", "VIEWER"]}],
  "scopedCredentials": {"roleArn": "arn:aws:iam::123456789012:role/kvssign-demo"}
}
EOF
env -u AWS_CA_BUNDLE -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	"$work/kvssign" serve --config "$work/serve.json" --web >"$work/vend.log" 2>&1 &
pids+=($!)
wait_http "http://$vendaddr/healthz" "kvssign serve --web" "${pids[-1]}" "$work/vend.log"

cat <<EOF

kvssign emulator on http://$emu, vending service and page on http://$vendaddr/

Open these two in two tabs (or two browsers on this machine):

  master: http://$vendaddr/#role=MASTER&channel=$channel&token=$token&autoconnect=1
  viewer: http://$vendaddr/#role=VIEWER&channel=$channel&token=$token&autoconnect=1

The token is valid until you stop this script (Ctrl-C). Logs: $work/
EOF
wait -n "${pids[@]}" || true
echo "a server stopped; its logs:" >&2
tail -n 20 "$work"/*.log >&2
exit 1
