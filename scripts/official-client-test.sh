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
	for i in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 --cacert "$cert" "https://$host/" && break
		[ "$i" = 100 ] && { echo "the emulator did not answer at https://$host/" >&2; cat "$art/c-layout-emulator.log" >&2; exit 1; }
		sleep 0.1
	done
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
	if [ ! -x "$CHROMIUM" ]; then
		[ "$(id -u)" = 0 ] || skip "$CHROMIUM is missing and installing it needs root (apt-get install chromium)"
		say "installing Debian's chromium"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
	"$CHROMIUM" --version 2>/dev/null || { echo "$CHROMIUM is installed but does not run" >&2; exit 1; }
	command -v node >/dev/null || skip "node is not installed"
	command -v openssl >/dev/null || skip "openssl is not installed"
	command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare or ip (util-linux, iproute2) is missing"
	[ "$(id -u)" = 0 ] || skip "a network namespace with only loopback (unshare -n) needs root"

	say "npm ci in web/official/"
	(cd web/official && npm ci --no-audit --no-fund --loglevel=error)
	say "building web/official/dist"
	(cd web/official && node build.mjs)
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
art="$root/artifacts/official"
rm -rf "$art"
mkdir -p "$art"
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
akid="AKIA$(openssl rand -hex 8 | tr a-f0-9 A-Z2-7 | head -c 16)"
secret=$(openssl rand -base64 30 | tr -d '/+=' | head -c 40)
channel="official-$(openssl rand -hex 4)"
cert="$work/emulator.pem"

say "starting kvssign emulate --tls on $emu"
printf '%s\n' "$secret" | "$work/kvssign" emulate --tls --tls-cert "$cert" --addr "$emu" \
	--access-key-id "$akid" --secret-access-key - --create-channel "$channel" --log-level debug \
	>"$art/emulator.log" 2>&1 &
pid=$!
for i in $(seq 1 100); do
	curl -s -o /dev/null --max-time 1 --cacert "$cert" "https://$emu/" && break
	kill -0 "$pid" 2>/dev/null || { echo "the emulator exited; its log:" >&2; cat "$art/emulator.log" >&2; exit 1; }
	[ "$i" = 100 ] && { echo "the emulator did not answer within 10 s" >&2; cat "$art/emulator.log" >&2; exit 1; }
	sleep 0.1
done
# What Chromium is told to trust: the SHA-256 of this certificate's key.
spki=$(openssl x509 -in "$cert" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

say "running web/official/e2e (chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}'))"
cd "$root/web/official"
set +e
KVSSIGN_EMULATOR_URL="https://$emu" KVSSIGN_SPKI="$spki" KVSSIGN_CHANNEL="$channel" \
	KVSSIGN_AKID="$akid" KVSSIGN_SECRET="$secret" KVSSIGN_ARTIFACTS="$art" CHROMIUM="$CHROMIUM" \
	timeout 300 node --test --test-reporter=tap e2e/ 2>&1 | tee "$art/test.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$art/test.log")
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$art/test.log")
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
