#!/bin/sh
# cli-check.sh [BIN]: the command line without a server: --version, the
# general help and each command's own page, usage errors naming what is
# wrong with their exit codes (2; 3 for status, a monitoring plugin),
# misspelt WALCOUNT_* variables refused with "did you mean", and
# `walcount config` (sources, redaction, --json). BIN defaults to
# bin/walcount. Ends with "cli: N passed, M failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin=${1:-bin/walcount}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The caller's WALCOUNT_* settings would change what walcount reads.
for v in $(env | sed -n 's/^\(WALCOUNT_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

. tests/checks.sh

# run ARGS...: runs walcount, leaving rc, out and err.
run() {
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# expect NAME RC STDOUT-PATTERN STDERR-EXACT ARGS...: one run; STDOUT-PATTERN
# is a grep -E pattern its stdout must match ("" for empty stdout).
expect() {
	name=$1 want_rc=$2 want_out=$3 want_err=$4
	shift 4
	run "$@"
	why=""
	[ "$rc" -eq "$want_rc" ] || why="exit $rc, want $want_rc"
	if [ -z "$want_out" ]; then
		[ -z "$out" ] || why="$why; stdout not empty"
	else
		printf '%s\n' "$out" | grep -Eq "$want_out" || why="$why; stdout does not match $want_out"
	fi
	[ "$err" = "$want_err" ] || why="$why; stderr is \"$err\", want \"$want_err\""
	if [ -z "$why" ]; then ok "$name"; else bad "$name" "walcount $*: $why"; fi
}

expect "--version" 0 '^walcount [0-9]+\.[0-9]+\.[0-9]+ \(revision [^ ]+\)$' "" --version
expect "-V" 0 '^walcount [0-9]+\.[0-9]+\.[0-9]+ \(revision [^ ]+\)$' "" -V
expect "help" 0 '^Usage: walcount COMMAND' "" help
expect "--help" 0 '^Usage: walcount COMMAND' "" --help
expect "no command: the help on stderr" 2 "" "$("$bin" help)"

for cmd in run init status reconcile drop config help; do
	expect "help $cmd" 0 "^Usage: walcount $cmd" "" help "$cmd"
	page=$out
	for flag in --help -h; do
		run "$cmd" "$flag"
		if [ "$rc" -eq 0 ] && [ "$out" = "$page" ]; then
			ok "$cmd $flag is help $cmd"
		else
			bad "$cmd $flag is help $cmd" "exit $rc: $out$err"
		fi
	done
	if printf '%s\n' "$page" | grep -q '^Exit status:$'; then
		ok "help $cmd names its exit codes"
	else
		bad "help $cmd names its exit codes" "$page"
	fi
done

expect "help of an unknown command" 2 "" "walcount: unknown command 'bogus' (see walcount help)" help bogus
expect "unknown command" 2 "" "walcount: unknown command 'bogus' (see walcount --help)" bogus
expect "unknown option" 2 "" "walcount: unknown argument '--bogus' (see walcount help run)" run --bogus
expect "--config without a path" 2 "" "walcount: a PATH must follow '--config' (see walcount help run)" run --config
expect "an option that does not apply" 2 "" \
	"walcount: --json does not apply to run (see walcount help run)" run --json
expect "two options that do not apply" 2 "" \
	"walcount: --json, --yes do not apply to run (see walcount help run)" run --yes --json
expect "status: an option that does not apply is UNKNOWN" 3 "" \
	"walcount: --yes does not apply to status (see walcount help status)" status --yes
expect "status: a bad config is UNKNOWN" 3 "" \
	"walcount: $tmp/none.yaml: cannot read: No such file or directory" status --config "$tmp/none.yaml"
# Variables are exported for the runs that need them, then unset.
export WALCOUNT_BATCH_MAX_CHANGE=5
expect "a misspelt variable is refused" 1 "" \
	"walcount: WALCOUNT_BATCH_MAX_CHANGE: unknown variable (did you mean WALCOUNT_BATCH_MAX_CHANGES?)" \
	config --config config.yaml
unset WALCOUNT_BATCH_MAX_CHANGE
export WALCOUNT_SLOT_NAEM=x
expect "status: a misspelt variable is UNKNOWN" 3 "" \
	"walcount: WALCOUNT_SLOT_NAEM: unknown variable (did you mean WALCOUNT_SLOT_NAME?)" status
unset WALCOUNT_SLOT_NAEM
export WALCOUNT_LOCAL_PORT=5500 WALCOUNT_BIN=x WALCOUNT_CONFIG=config.yaml
expect "reserved variables are accepted" 0 '^# walcount configuration: config.yaml' "" config
unset WALCOUNT_LOCAL_PORT WALCOUNT_BIN WALCOUNT_CONFIG

# walcount config: values, sources and redaction.
printf 'batch:\n  max_changes: 77\n' >"$tmp/c.yaml"
export WALCOUNT_DATABASE_DSN="host=db user=w password=s3cr3t-pw" WALCOUNT_BATCH_MAX_DELAY=2s
expect "config: text" 0 '^  max_changes: 77 +# '"$tmp"'/c.yaml:2:16$' "" config --config "$tmp/c.yaml"
text=$out
for line in '^  max_delay: 2s +# WALCOUNT_BATCH_MAX_DELAY$' '^  max_keys: 100000 +# default$' \
	'^  dsn: "user=w password=\*\*\* host=db" +# WALCOUNT_DATABASE_DSN$' '^batch:$'; do
	if printf '%s\n' "$text" | grep -Eq "$line"; then ok "config: text has $line"; else bad "config: text has $line" "$text"; fi
done
export WALCOUNT_DATABASE_DSN="postgresql://w:s3cr3t-pw@db/audius"
expect "config --json" 0 '"keys"' "" config --json --config "$tmp/c.yaml"
unset WALCOUNT_DATABASE_DSN WALCOUNT_BATCH_MAX_DELAY
if printf '%s\n' "$text$out" | grep -q s3cr3t-pw; then
	bad "config: the password is never shown" "$text$out"
else
	ok "config: the password is never shown"
fi
if printf '%s' "$out" | "$py" -c '
import json, sys
doc = json.load(sys.stdin)
keys = doc["keys"]
assert keys["batch.max_changes"] == {"value": "77", "source": "file", "where": sys.argv[1] + ":2:16"}, keys["batch.max_changes"]
assert keys["database.dsn"]["source"] == "env" and "password=***" in keys["database.dsn"]["value"]
assert keys["database.password_file"] == {"value": None, "source": "default", "where": None}
assert len(keys) >= 30
' "$tmp/c.yaml" 2>"$tmp/py"; then
	ok "config --json: one object with value, source and where per key"
else
	bad "config --json: one object with value, source and where per key" "$(cat "$tmp/py")"
fi
expect "config: --dry-run does not apply" 2 "" \
	"walcount: --dry-run does not apply to config (see walcount help config)" config --dry-run

checks_summary cli
