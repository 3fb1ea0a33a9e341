#!/bin/sh
# deps.sh [MODE]: installs the Debian 12 packages that one command needs,
# and nothing when they are there already. MODE, per command:
#   run    make run: build bin/walcount, run the local PostgreSQL 15 +
#          wal2json, and the README's commands in the second terminal
#   test   make test and make check (the default): all of run's, plus the
#          unit, deployment and integration tests' tools
#   fuzz   make fuzz: run's build tools plus clang with libFuzzer
#   bench  make bench*: run's packages (pgbench and pg_recvlogical come
#          with the server and client packages)
#   deps.sh --list MODE  prints MODE's package names, one a line, and exits
# It says which packages are missing and why each is needed, then runs
# apt-get (with sudo when not root). Another apt or dpkg at work (an
# unattended upgrade) is waited for, up to DEPS_LOCK_WAIT seconds (600),
# instead of failing. PostgreSQL must be 15.19 or later: earlier minors
# lack output_plugin_libraries (design.md §10).
set -eu

# One package a line: the modes that need it, its name, why.
packages='
run,test,fuzz,bench  gcc                      the C compiler
run,test,fuzz,bench  libc6-dev                the C library headers (gcc does not pull them without recommends)
run,test,fuzz,bench  make                     the build
run,test,fuzz,bench  libpq-dev                libpq and pg_config (walcount links libpq)
run,test,fuzz,bench  libjansson-dev           JSON: wal2json records, status --json, the JSON log
run,test,fuzz,bench  libyaml-dev              config.yaml
run,test,bench       libmicrohttpd-dev        the /metrics and /healthz listener
run,test,bench       postgresql-15            the local server (make run, the tests; pgbench)
run,test,bench       postgresql-15-wal2json   the output plugin walcount streams with
run,test,bench       postgresql-client-15     psql and pg_recvlogical
run,test,bench       curl                     the README'"'"'s metrics command and the benchmarks
test                 libcmocka-dev            the unit tests
test                 valgrind                 the unit tests under Valgrind
test                 clang-format-14          make format-check
test                 shellcheck               the shell scripts'"'"' lint (tests/compose-check.sh)
test                 docker-compose           docker-compose config, without a Docker engine (tests/compose-check.sh)
test                 prometheus               promtool: the metrics exposition, the Prometheus config, the alert rules and their tests
test                 mandoc                   mandoc -Tlint on the man pages (tests/install-check.sh)
test                 systemd                  systemd-analyze verify and security on the unit (tests/install-check.sh)
fuzz                 clang                    libFuzzer targets (tests/fuzz)
fuzz                 libclang-rt-14-dev       libFuzzer and the sanitizer runtimes for clang
'

# The lines of mode $1, as "NAME WHY".
for_mode() {
	printf '%s\n' "$packages" | awk -v m="$1" 'NF { n = split($1, a, ","); for (i = 1; i <= n; i++) if (a[i] == m) { $1 = ""; sub(/^ +/, ""); print; break } }'
}

if [ "${1:-}" = --list ]; then
	for_mode "${2:-test}" | awk '{ print $1 }'
	exit 0
fi
mode=${1:-test}
case "$mode" in
run | test | fuzz | bench) ;;
*) echo "usage: deps.sh [run|test|fuzz|bench] | deps.sh --list MODE" >&2; exit 2 ;;
esac
lock_wait=${DEPS_LOCK_WAIT:-600}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=$(for_mode "$mode")
missing="" why=""
while read -r p reason; do
	installed "$p" && continue
	missing="$missing $p" why="$why
  $p: $reason"
done <<EOF_NEED
$need
EOF_NEED
pgv=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
if [ -n "$pgv" ] && dpkg --compare-versions "$pgv" lt 15.19 && [ "$mode" != fuzz ]; then
	missing="$missing postgresql-15 postgresql-client-15 libpq-dev libpq5" why="$why
  postgresql-15 $pgv: older than 15.19 (no output_plugin_libraries), upgrading it with its client and libpq"
fi
n=$(printf '%s\n' "$need" | grep -c .)
if [ -z "$missing" ]; then
	echo "deps: the $n packages $mode needs are installed; nothing to install"
	exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$lock_wait"
echo "deps: $mode needs $n packages; installing the missing ones with apt-get:$why"

# DPkg::Lock::Timeout covers dpkg's lock, not the one on the package lists
# that `apt-get update` takes: that one is waited for here.
waited=0
while ! out=$($apt update -qq 2>&1); do
	case "$out" in
	*"Could not get lock"*) ;;
	*) printf '%s\n' "$out" >&2; exit 1 ;;
	esac
	if [ "$waited" -ge "$lock_wait" ]; then
		printf 'deps: gave up after %s s waiting for the apt lock:\n%s\n' "$waited" "$out" >&2
		exit 1
	fi
	[ "$waited" -eq 0 ] && echo "deps: another apt holds its lock ($(printf '%s\n' "$out" | sed -n 's/.*\(held by process [0-9]* ([^)]*)\).*/\1/p' | head -n1)); waiting up to $lock_wait s"
	sleep 5
	waited=$((waited + 5))
done
echo "deps: apt-get install$missing (waits up to $lock_wait s for another apt or dpkg to finish)"
# shellcheck disable=SC2086
$apt install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: installed$missing"
