# Shared steps of the real-browser scripts (browser-test.sh,
# official-client-test.sh), sourced by them; not run on its own.
#
# The functions call the sourcing script's own `say MESSAGE` and
# `skip REASON` (which says why loudly and exits 0), so that each script's
# output keeps its own name.

# ensure_browser_tools installs Debian's Chromium when $CHROMIUM is missing,
# checks that it runs, and skips the test when the other tools it needs
# (node, the commands named as arguments, unshare and ip, root) are not
# there.
ensure_browser_tools() {
	local tool
	if [ ! -x "$CHROMIUM" ]; then
		[ "$(id -u)" = 0 ] || skip "$CHROMIUM is missing and installing it needs root (apt-get install chromium)"
		say "installing Debian's chromium"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
	"$CHROMIUM" --version 2>/dev/null || { echo "$CHROMIUM is installed but does not run" >&2; exit 1; }
	for tool in node "$@"; do
		command -v "$tool" >/dev/null || skip "$tool is not installed"
	done
	command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare or ip (util-linux, iproute2) is missing"
	[ "$(id -u)" = 0 ] || skip "a network namespace with only loopback (unshare -n) needs root"
}

# npm_build DIR installs DIR's locked npm packages and runs its build.mjs.
npm_build() {
	say "npm ci in $1/"
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
	say "building $1/dist"
	(cd "$1" && node build.mjs)
}

# rerun_inside_namespace builds kvssign into a temporary directory work,
# removed on exit, runs the calling script again as `SCRIPT --inside DIR`
# in a new network namespace that has only loopback, and exits with its
# status.
rerun_inside_namespace() {
	local rc
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
}

# start_inside NAME brings loopback up and empties artifacts/NAME, where
# the logs go; it sets art to that directory.
start_inside() {
	ip link set lo up
	art="$root/artifacts/$1"
	rm -rf "$art"
	mkdir -p "$art"
}

# make_credentials sets akid and secret to a made-up long-term key pair,
# new for every run, so that a test can look for them where they must not
# be.
make_credentials() {
	akid="AKIA$(openssl rand -hex 8 | tr a-f0-9 A-Z2-7 | head -c 16)"
	secret=$(openssl rand -base64 30 | tr -d '/+=' | head -c 40)
}

# wait_http URL NAME PID [CURL OPTION]... waits up to 10 s for URL to
# answer, while the process PID runs; if it does not, it prints the log
# $art/NAME.log and fails.
wait_http() {
	local url=$1 name=$2 pid=$3 i
	shift 3
	for i in $(seq 1 100); do
		curl -s -o /dev/null --max-time 1 "$@" "$url" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "$name exited; its log:" >&2; cat "$art/$name.log" >&2; return 1; }
		sleep 0.1
	done
	echo "$name did not answer at $url within 10 s; its log:" >&2
	cat "$art/$name.log" >&2
	return 1
}

# tap_counts sets passed and failed from the summary of the TAP log
# $art/test.log.
tap_counts() {
	passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$art/test.log")
	failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$art/test.log")
}
