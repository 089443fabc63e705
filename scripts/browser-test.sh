#!/usr/bin/env bash
# Real-browser end-to-end test of the demo page (web/, docs/web.md).
#
# Installs what it needs (Debian's chromium, the npm packages of web/ with
# `npm ci`), rebuilds web/dist and checks it matches what is committed,
# builds kvssign, then runs the rest inside a new network namespace that
# has only loopback: `kvssign emulate`, `kvssign serve --web` with a test
# config, web/test/ (unit tests, no browser) and web/e2e/browser.test.mjs
# (node --test, playwright-core driving /usr/bin/chromium). It ends with
# "browser-test: N passed, N failed". Screenshots and the traffic log go to
# artifacts/browser/. The servers are stopped and temporary files removed
# however the test ends.
#
# The test is skipped only when it cannot run here (not root, so no apt and
# no network namespace; no Node.js), and then it says so loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

skip() {
	{
		echo
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		echo "!!! BROWSER TEST SKIPPED: $*"
		echo "!!! The demo page was NOT tested in a real browser."
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		echo
	} >&2
	exit 0
}
say() { echo "== browser-test: $*"; }

if [ "${1:-}" != "--inside" ]; then
	# ---- outside the namespace: install and build (this needs the registries)
	CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
	if [ ! -x "$CHROMIUM" ]; then
		if [ "$(id -u)" != 0 ]; then
			skip "$CHROMIUM is missing and installing it needs root (apt-get install chromium)"
		fi
		say "installing Debian's chromium"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
	"$CHROMIUM" --version 2>/dev/null || { echo "$CHROMIUM is installed but does not run" >&2; exit 1; }
	command -v node >/dev/null || skip "node is not installed"
	command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare or ip (util-linux, iproute2) is missing"
	[ "$(id -u)" = 0 ] || skip "a network namespace with only loopback (unshare -n) needs root"

	say "npm ci in web/"
	(cd web && npm ci --no-audit --no-fund --loglevel=error)
	say "building web/dist"
	(cd web && node build.mjs)
	if git ls-files --error-unmatch web/dist/app.js >/dev/null 2>&1 && [ -n "$(git status --porcelain -- web/dist)" ]; then
		git status --short -- web/dist
		if [ "${CI:-}" = true ]; then
			echo "web/dist differs from what web/src builds: run 'npm run build' in web/ and commit web/dist" >&2
			exit 1
		fi
		echo "warning: web/dist changed by the build; commit it with web/src" >&2
	fi

	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	say "building kvssign"
	go build -o "$work/kvssign" ./cmd/kvssign
	unshare -n true 2>/dev/null || skip "unshare -n is not permitted here"
	say "running inside a network namespace with only loopback"
	set +e
	CHROMIUM="$CHROMIUM" unshare -n bash "$0" --inside "$work"
	rc=$?
	set -e
	exit $rc
fi

# ---- inside the namespace: loopback only; fixed ports are free here
work=$2
ip link set lo up
art="$root/artifacts/browser"
rm -rf "$art"
mkdir -p "$art"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

emu=127.0.0.1:4566
vendaddr=127.0.0.1:8080

# Long-term credentials the emulator accepts and the vending server holds.
# They are made up per run; the test asserts that neither the secret nor the
# access key id reaches the browser.
akid="AKIA$(openssl rand -hex 8 | tr a-f0-9 A-Z2-7 | head -c 16)"
secret=$(openssl rand -base64 30 | tr -d '/+=' | head -c 40)
token=$(openssl rand -hex 24)
channel="e2e-$(openssl rand -hex 4)"

wait_http() { # url, what, pid
	local i
	for i in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		kill -0 "$3" 2>/dev/null || { echo "$2 exited; its log:" >&2; cat "$art/$2.log" >&2; return 1; }
		sleep 0.1
	done
	echo "$2 did not answer at $1 within 10 s; its log:" >&2
	cat "$art/$2.log" >&2
	return 1
}

say "starting kvssign emulate on $emu"
"$work/kvssign" emulate --addr "$emu" --access-key-id "$akid" --secret-access-key "$secret" \
	--create-channel "$channel" >"$art/emulator.log" 2>&1 &
pids+=($!)
wait_http "http://$emu/" emulator "${pids[-1]}"

cat >"$work/serve.json" <<EOF
{
  "addr": "$vendaddr",
  "region": "us-west-2",
  "endpointUrl": "http://$emu",
  "auth": {"tokens": [{"name": "e2e", "sha256": "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"}]},
  "rules": [{"principals": ["token:e2e"], "channels": ["e2e-*"], "roles": ["MASTER", "VIEWER"]}],
  "scopedCredentials": {"roleArn": "arn:aws:iam::123456789012:role/kvssign-e2e"}
}
EOF
serve() {
	say "starting kvssign serve $* on $vendaddr"
	# Only these credentials (AWS_CA_BUNDLE, which some machines set
	# globally, is left as it is: kvssign must work with it).
	env -u AWS_SESSION_TOKEN -u AWS_PROFILE \
		AWS_ACCESS_KEY_ID=$akid AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-west-2 \
		AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		"$work/kvssign" serve --config "$work/serve.json" "$@" >"$art/vend.log" 2>&1 &
	pids+=($!)
}
serve --web
wait_http "http://$vendaddr/healthz" vend "${pids[-1]}"

# One call outside the browser first, so that a misconfigured server fails
# here with its own message rather than as a page that never connects.
say "checking the vending service answers for channel $channel"
curl -sS --fail-with-body --max-time 10 -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	-d "{\"channel\":\"$channel\",\"role\":\"MASTER\"}" "http://$vendaddr/v1/connections"

say "running web/test and web/e2e (chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}'))"
cd "$root/web"
set +e
KVSSIGN_WEB_URL="http://$vendaddr/" KVSSIGN_WEB_TOKEN="$token" KVSSIGN_WEB_CHANNEL="$channel" \
	KVSSIGN_SECRETS="$secret
$akid" KVSSIGN_ARTIFACTS="$art" CHROMIUM="$CHROMIUM" KVSSIGN_EMULATOR_URL="http://$emu" \
	timeout 300 node --test --test-reporter=tap test/ e2e/ 2>&1 | tee "$art/test.log"
rc=${PIPESTATUS[0]}
set -e
say "artifacts: $(cd "$root" && ls artifacts/browser | tr '\n' ' ')"
if [ "$rc" != 0 ]; then
	say "failed (exit $rc); server logs:"
	tail -n 20 "$art"/*.log | grep -v '^$' >&2 || true
fi
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$art/test.log")
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$art/test.log")
echo "browser-test: ${passed:-0} passed, ${failed:-1} failed"
exit $rc
