#!/bin/sh
# alerts-check.sh: the alert rules of docker/prometheus/alerts.yml:
#   - promtool check rules (syntax, PromQL, templates)
#   - promtool test rules docker/prometheus/alerts_test.yml (their unit tests)
#   - every alert has a test in alerts_test.yml in which it fires, and a
#     runbook row in README.md ("| `NAME` |")
# Needs promtool (Debian's prometheus package; scripts/deps.sh installs it)
# and python3 with PyYAML (docker-compose's). Ends with
# "alerts: N passed, M failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
rules=docker/prometheus/alerts.yml
tests=docker/prometheus/alerts_test.yml

. tests/checks.sh

if command -v promtool >/dev/null 2>&1; then
	check "promtool check rules $rules" promtool check rules "$rules"
	check "promtool test rules $tests" promtool test rules "$tests"
else
	bad "promtool is installed" "missing: apt-get install prometheus (scripts/deps.sh installs it)"
fi

# One "ok NAME" or "FAIL NAME: detail" line per alert.
if out=$(/usr/bin/python3 -I - "$rules" "$tests" README.md 2>&1 <<'EOF'
import re, sys, yaml
rules, tests, readme = sys.argv[1:4]
alerts = [r["alert"] for g in yaml.safe_load(open(rules))["groups"] for r in g["rules"] if "alert" in r]
fires = {t["alertname"] for u in yaml.safe_load(open(tests))["tests"] for t in u.get("alert_rule_test", []) if t.get("exp_alerts")}
text = open(readme).read()
for a in alerts:
    miss = [w for w, ok in (("firing test", a in fires), ("README runbook row", re.search(r"^\| `" + a + r"` \|", text, re.M))) if not ok]
    print(("FAIL " if miss else "ok ") + a + " has a firing test and a runbook row" + (": missing its " + " and its ".join(miss) if miss else ""))
EOF
); then
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"FAIL "*) bad "${line#FAIL }" ;;
		*) bad "alert list: checker said" "$line" ;;
		esac
	done <<EOF
$out
EOF
else
	bad "alert list of $rules" "$out"
fi

checks_summary alerts
