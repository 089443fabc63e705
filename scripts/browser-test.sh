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
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

if [ "${1:-}" != "--inside" ]; then
	# ---- outside the namespace: install and build (this needs the registries)
	CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
	ensure_browser_tools
	npm_build web
	if git ls-files --error-unmatch web/dist/app.js >/dev/null 2>&1 && [ -n "$(git status --porcelain -- web/dist)" ]; then
		git status --short -- web/dist
		if [ "${CI:-}" = true ]; then
			echo "web/dist differs from what web/src builds: run 'npm run build' in web/ and commit web/dist" >&2
			exit 1
		fi
		echo "warning: web/dist changed by the build; commit it with web/src" >&2
	fi

	rerun_inside_namespace
fi

# ---- inside the namespace: loopback only; fixed ports are free here
work=$2
start_inside browser
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
make_credentials
token=$(openssl rand -hex 24)
channel="e2e-$(openssl rand -hex 4)"

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
tap_counts
echo "browser-test: ${passed:-0} passed, ${failed:-1} failed"
exit $rc
