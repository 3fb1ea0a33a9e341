#!/bin/sh
# deps.sh: installs what walcount needs to build, run and test on Debian 12,
# and nothing when everything is there already. PostgreSQL must be 15.19 or
# later: earlier minors lack output_plugin_libraries (design.md §10).
set -eu

need="gcc make pkg-config postgresql-15 postgresql-15-wal2json postgresql-client-15 libpq-dev
libjansson-dev libyaml-dev libcmocka-dev libmicrohttpd-dev prometheus docker-compose shellcheck valgrind clang-format-14 mandoc systemd"
# `deps.sh fuzz` (make fuzz): libFuzzer comes with clang's runtime.
[ "${1:-}" = fuzz ] && need="$need clang libclang-rt-14-dev"
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
pgv=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
if [ -n "$pgv" ] && dpkg --compare-versions "$pgv" lt 15.19; then
	echo "deps: postgresql-15 $pgv is older than 15.19, upgrading"
	missing="$missing postgresql-15 postgresql-client-15 libpq-dev libpq5"
fi
if [ -z "$missing" ]; then
	echo "deps: the $(echo "$need" | wc -w) packages needed are installed; nothing to install"
	exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing$missing (not installed; needed to build or test walcount)"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The Debian package starts a "main" cluster of its own; walcount never uses
# it, so keep its postinst from starting one where policy-rc.d is honoured.
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
