#!/usr/bin/env bash
# Real-browser test of `kvssign emulate --tls` against AWS's own clients
# (issue #12): the page in web/official/ is built on the KVS WebRTC JS SDK's
# SignalingClient and SigV4 signer and the AWS SDK v3 KinesisVideo clients,
# not on kvssign's signer. Debian's Chromium, driven by playwright-core,
# opens a master page and a viewer page from another origin than the
# emulator (so every AWS call is a CORS request with a preflight); both
# connect, and a data-channel message goes each way, directly and then
# through the emulator's TURN server only.
#
# Installs what it needs (Debian's chromium, web/official's npm packages
# with `npm ci`), builds the page and kvssign, then runs the emulator and
# the browser inside a new network namespace with only loopback. Web
# security stays on: Chromium trusts the emulator's self-signed certificate
# only through --ignore-certificate-errors-spki-list. It ends with
# "official-client-test: N passed, N failed" and exits non-zero on failure.
# Page and emulator logs go to artifacts/official/.
#
# Skipped, loudly, only when it cannot run here (not root, so no apt and no
# network namespace; no Node.js).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

skip() {
	{
		echo
		echo "!!! OFFICIAL CLIENT TEST SKIPPED: $*"
		echo "!!! The emulator was NOT tested against AWS's browser clients."
		echo
	} >&2
	echo "official-client-test: 0 passed, 0 failed (skipped)"
	exit 0
}
say() { echo "== official-client-test: $*"; }
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

if [ "${1:-}" = "--c-layout" ]; then
	# ---- in a private mount namespace too: the C SDK's setup (docs/emulator.md).
	# KVS's own host name maps to 127.0.0.1 in a private /etc/hosts and the
	# emulator serves TLS on 443 under that name, so an AWS SDK with no
	# endpoint override at all, trusting the emulator's certificate, talks
	# to it. The machine's /etc/hosts is never touched.
	work=$2 art=$3
	host=kinesisvideo.us-west-2.amazonaws.com
	printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$host" >"$work/hosts"
	mount --bind "$work/hosts" /etc/hosts
	cert="$work/c-layout.pem"
	"$work/kvssign" emulate --tls --tls-cert "$cert" --addr 127.0.0.1:443 --hostname "$host" \
		--create-channel camera --log-level warn >"$art/c-layout-emulator.log" 2>&1 &
	cpid=$!
	trap 'kill $cpid 2>/dev/null; wait $cpid 2>/dev/null' EXIT
	wait_http "https://$host/" c-layout-emulator "$cpid" --cacert "$cert"
	export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
		AWS_REGION=us-west-2 AWS_CA_BUNDLE="$cert" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		AWS_EC2_METADATA_DISABLED=true
	unset AWS_ENDPOINT_URL AWS_SESSION_TOKEN AWS_PROFILE
	fail=0
	check() { # what, output, pattern
		if grep -Eq -- "$3" <<<"$2"; then echo "ok - C SDK layout: $1"; else echo "not ok - C SDK layout: $1: got: ${2:0:300}"; fail=1; fi
	}
	check "the control plane at https://$host (no --endpoint-url)" "$("$work/kvssign" channel list 2>&1)" "^camera +ACTIVE"
	check "WSS endpoints carry no port" "$("$work/kvssign" url --channel camera --role master 2>&1)" "^wss://$host/signaling/master/m-[0-9a-f]{8}\?"
	check "TURN URIs name the host, with their ports" "$("$work/kvssign" ice --channel camera 2>&1)" "\"turn:$host:[0-9]+\?transport=udp\",\"turns:$host:[0-9]+\?transport=tcp\",\"turn:$host:[0-9]+\?transport=tcp\""
	exit $fail
fi

if [ "${1:-}" != "--inside" ]; then
	# ---- outside the namespace: install and build (this needs the registries)
	CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
	ensure_browser_tools openssl
	npm_build web/official
	rerun_inside_namespace
fi

# ---- inside the namespace: loopback only; fixed ports are free here
work=$2
start_inside official
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

emu=127.0.0.1:4443
# Made-up long-term credentials, given to the emulator on stdin so they do
# not show in the process list.
make_credentials
channel="official-$(openssl rand -hex 4)"
cert="$work/emulator.pem"

say "starting kvssign emulate --tls on $emu"
printf '%s\n' "$secret" | "$work/kvssign" emulate --tls --tls-cert "$cert" --addr "$emu" \
	--access-key-id "$akid" --secret-access-key - --create-channel "$channel" --log-level debug \
	>"$art/emulator.log" 2>&1 &
pid=$!
wait_http "https://$emu/" emulator "$pid" --cacert "$cert"
# What Chromium is told to trust: the SHA-256 of this certificate's key.
spki=$(openssl x509 -in "$cert" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

say "running web/official/e2e (chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}'))"
cd "$root/web/official"
set +e
KVSSIGN_EMULATOR_URL="https://$emu" KVSSIGN_SPKI="$spki" KVSSIGN_CERT="$cert" KVSSIGN_CHANNEL="$channel" \
	KVSSIGN_AKID="$akid" KVSSIGN_SECRET="$secret" KVSSIGN_ARTIFACTS="$art" CHROMIUM="$CHROMIUM" \
	timeout 300 node --test --test-reporter=tap e2e/ 2>&1 | tee "$art/test.log"
rc=${PIPESTATUS[0]}
set -e
tap_counts
cd "$root"
say "the C SDK's layout: --tls on 443 with --hostname, in a private mount namespace for /etc/hosts"
if unshare -m bash "$0" --c-layout "$work" "$art" 2>&1 | tee "$art/c-layout.log"; then
	passed=$((${passed:-0} + 1))
else
	failed=$((${failed:-0} + 1))
	rc=1
fi
# The browser's calls were cross-origin: the emulator must have answered
# their preflights.
preflights=$(grep -c 'CORS preflight answered' "$art/emulator.log" || true)
say "the emulator answered $preflights CORS preflights"
if [ "$preflights" = 0 ]; then
	echo "no CORS preflight reached the emulator: the test did not exercise CORS" >&2
	failed=$((${failed:-0} + 1))
	rc=1
fi
if grep -q -- "$secret" "$art"/*.log; then
	echo "the secret access key appears in a log under $art" >&2
	failed=$((${failed:-0} + 1))
	rc=1
fi
if [ "$rc" != 0 ]; then
	say "failed (exit $rc); emulator log tail:"
	tail -n 30 "$art/emulator.log" >&2 || true
fi
echo "official-client-test: ${passed:-0} passed, ${failed:-1} failed"
exit $rc
