#!/bin/sh
# metric-names.sh: every metric name that the alert rules
# (docker/prometheus/alerts.yml) and the Grafana dashboards
# (docker/grafana/dashboards/*.json) query exists in what walcount exports.
# The exported names come from a real scrape: bin/walcount run, pointed at
# a port where no server listens, serves /metrics while it retries the
# connection. Families exported only while connected (the slot gauges) are
# declared there by their TYPE lines; a histogram's _bucket, _sum and
# _count count as its name. `up` is Prometheus' own. The dashboards'
# expressions must also parse: promtool check rules, on recording rules
# made of them with Grafana's variables filled in (the alert rules are
# checked by tests/alerts-check.sh). Ends with
# "metric-names: N passed, M failed".
#   WALCOUNT_BIN  the binary (default bin/walcount)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin=${WALCOUNT_BIN:-bin/walcount}
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$bin" ]; then
	echo "FAIL $bin is built (make all)"
	echo "metric-names: 0 passed, 1 failed"
	exit 1
fi
# Two free ports: the first has no server (walcount retries it), the second
# is the metrics listener.
port=$(sh scripts/free-port.sh 2) || exit 1
cat >"$tmp/config.yaml" <<EOF
database:
  dsn: "host=127.0.0.1 port=$port dbname=walcount user=walcount connect_timeout=2"
metrics:
  listen: 127.0.0.1:$((port + 1))
EOF
env -i PATH="$PATH" "$bin" run --config "$tmp/config.yaml" >"$tmp/walcount.log" 2>&1 &
pid=$!

/usr/bin/python3 -I - "$((port + 1))" "$tmp" docker/prometheus/alerts.yml docker/grafana/dashboards/*.json <<'EOF'
import json, re, subprocess, sys, time, urllib.request, yaml
port, tmp, rules, dashboards = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
log = tmp + "/walcount.log"
passed = failed = 0
def say(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + detail if detail else ""))

# --- what walcount exports ---
text = None
for _ in range(100):
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=2).read().decode()
        break
    except OSError:
        time.sleep(0.1)
if text is None:
    say(False, "scrape of a running walcount", "no /metrics on port %s within 10 s; its log:\n%s" % (port, open(log).read()))
    print("metric-names: %d passed, %d failed" % (passed, failed))
    sys.exit(1)
exported = {"up"}
for line in text.splitlines():
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        exported.add(m.group(1))
        if m.group(2) in ("histogram", "summary"):
            exported.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    elif line and not line.startswith("#"):
        exported.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
say(len(exported) > 20, "scrape of a running walcount: %d names" % len(exported))

# --- the names the expressions use ---
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "offset", "inf", "nan", "atan2"}
def names(expr):
    e = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)                               # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                              # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)                             # Grafana variables
    found = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if m.group(2) or m.group(1).lower() in KEYWORDS:
            continue
        found.add(m.group(1))
    return found

uses = {}  # name -> where
for g in yaml.safe_load(open(rules))["groups"]:
    for r in g["rules"]:
        for n in names(r["expr"]):
            uses.setdefault(n, set()).add("%s: %s" % (rules, r.get("alert") or r.get("record")))
def walk(x, where):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "expr" and isinstance(v, str):
                yield v, where
            elif k == "query" and isinstance(v, str):
                # label_values(METRIC..., label): only its first argument
                m = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", v)
                yield (m.group(1) if m else v), where
            else:
                yield from walk(v, x.get("title", where) if isinstance(x.get("title"), str) else where)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v, where)
# Grafana's variables, as a query would have them filled in.
FILL = [("$__rate_interval", "1m"), ("$__range", "1h"), ("$job", "walcount"), ("$instance", ".*")]
record = []
for f in dashboards:
    for expr, where in walk(json.load(open(f)), "?"):
        for n in names(expr):
            uses.setdefault(n, set()).add("%s: %s" % (f, where))
        for k, v in FILL:
            expr = expr.replace(k, v)
        if "$" not in expr and not expr.lstrip().startswith("label_values("):
            record.append({"record": "dashboard:%d" % len(record), "expr": expr})
with open(tmp + "/dashboard-rules.yml", "w") as out:
    yaml.safe_dump({"groups": [{"name": "dashboards", "rules": record}]}, out)
try:
    r = subprocess.run(["promtool", "check", "rules", tmp + "/dashboard-rules.yml"], capture_output=True, text=True)
    say(r.returncode == 0, "the dashboards' %d expressions parse (promtool check rules)" % len(record), r.stdout + r.stderr)
except OSError as e:
    say(False, "promtool is installed", str(e))
say(len(uses) > 10, "names found in the expressions: %d" % len(uses))
for n in sorted(uses):
    say(n in exported, n + " is exported", "not in walcount's /metrics; used by " + "; ".join(sorted(uses[n])))
print("metric-names: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
