#!/bin/sh
# compose-check.sh: checks of the Docker deployment that need no Docker
# engine (none is available here, so no image is built or run):
#   - docker-compose.yml: `docker-compose config -q` (Debian's docker-compose
#     1.29, with and without the monitoring profile) and what the resolved
#     file must say: healthchecks, depends_on, secrets, no password in it
#   - docker/prometheus/prometheus.yml: promtool check config (with the
#     alert rules it loads; tests/alerts-check.sh tests them)
#   - docker/grafana: the provisioning files and the dashboard parse, and
#     the dashboard's data source is the provisioned one
#   - the Dockerfiles: a small lint (hadolint is not in Debian): minor-pinned
#     FROM tags, never latest; a non-root USER in the runtime stage; apt-get
#     with -y, --no-install-recommends and its lists removed; no secrets in
#     ENV/ARG; nothing the classic builder (docker-compose 1.29) cannot
#     build; exec-form ENTRYPOINT/CMD
#   - the walcount image's build context, as docker-compose sends it
#     (.dockerignore applied by docker-py): holds what the Dockerfile copies
#     and nothing private, and `make bin/walcount` succeeds in it
#   - docker/postgres/initdb/10-walcount.sh against a local PostgreSQL 15,
#     started the way the official image's docker-entrypoint.sh does on a
#     first start (initdb, its pg_hba.conf line, a socket-only temporary
#     server, then the init scripts); then the walcount role's logins
#   - shellcheck of the shell scripts (scripts/, tests/, bench/, docker/, .ci/)
# Installs nothing: scripts/deps.sh provides docker-compose, shellcheck,
# prometheus (promtool) and postgresql-15. Ends with
# "compose: N passed, M failed".
#   COMPOSE_CHECK_PORT  port of the throwaway server (default: a free one,
#                       scripts/free-port.sh)
# awk programs and sh -c scripts are single-quoted on purpose.
# shellcheck disable=SC2016
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
port=${COMPOSE_CHECK_PORT:-$(sh scripts/free-port.sh)} || exit 1
pgbin=/usr/lib/postgresql/15/bin
# docker-compose's own interpreter: it has docker-py and PyYAML.
py=/usr/bin/python3

. tests/checks.sh
# need CMD PACKAGE: whether CMD exists; a missing one fails a check.
need() {
	if command -v "$1" >/dev/null 2>&1; then return 0; fi
	bad "$1 is installed" "missing: apt-get install $2 (scripts/deps.sh installs it)"
	return 1
}

tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/pg/data/postmaster.pid" ] && as_owner "$pgbin/pg_ctl" -D "$tmp/pg/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# --- docker-compose.yml ------------------------------------------------------

if need docker-compose docker-compose; then
	check "docker-compose config -q" docker-compose -f docker-compose.yml config -q
	check "docker-compose --profile monitoring config -q" \
		docker-compose -f docker-compose.yml --profile monitoring config -q
	if docker-compose -f docker-compose.yml config >"$tmp/compose.yml" 2>"$tmp/compose.err"; then
		# One "ok NAME" or "FAIL NAME: detail" line per assertion.
		"$py" -I - "$tmp/compose.yml" >"$tmp/compose.out" 2>&1 <<'EOF'
import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
svc = c.get("services", {})
def say(ok, name, detail=""):
    print(("ok " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
def get(s, *path):
    v = svc.get(s, {})
    for p in path:
        v = v.get(p, {}) if isinstance(v, dict) else {}
    return v
say(set(svc) == {"postgres", "walcount", "prometheus", "grafana"}, "services are postgres, walcount, prometheus, grafana", str(sorted(svc)))
for s in ("prometheus", "grafana"):
    say(get(s, "profiles") == ["monitoring"], s + " only in profile monitoring", str(get(s, "profiles")))
    image = svc.get(s, {}).get("image", "")
    say(re.search(r":v?[0-9]+\.[0-9]+\.[0-9]+$", image) is not None, s + " image pinned to a patch release", image)
def mounts(s, target):
    return any(str(v).endswith(":" + target + ":ro") for v in get(s, "volumes") or [])
say(mounts("prometheus", "/etc/prometheus/alerts.yml"), "prometheus mounts alerts.yml beside prometheus.yml")
say(mounts("grafana", "/etc/grafana/provisioning") and mounts("grafana", "/etc/grafana/dashboards"),
    "grafana mounts docker/grafana provisioning and dashboards read-only")
say(not get("postgres", "profiles") and not get("walcount", "profiles"), "postgres and walcount in no profile")
cmd = " ".join(get("postgres", "command") or [])
for want in ("wal_level=logical", "max_replication_slots=", "max_wal_senders="):
    say(want in cmd, "postgres command sets " + want.rstrip("="), cmd)
m = re.search(r"output_plugin_libraries=([^-]*)", cmd)
say(bool(m) and "wal2json" in m.group(1), "postgres command allows wal2json in output_plugin_libraries", cmd)
say(get("postgres", "build", "context").endswith("docker/postgres"), "postgres built from docker/postgres")
say(any(str(v).endswith(":/sql:ro") for v in get("postgres", "volumes") or []), "postgres mounts ./sql read-only at /sql")
hc = " ".join(get("postgres", "healthcheck", "test") or [])
say("pg_isready" in hc and "127.0.0.1" in hc, "postgres healthcheck is pg_isready over TCP", hc)
hc = " ".join(get("walcount", "healthcheck", "test") or [])
say("walcount-healthcheck" in hc, "walcount healthcheck gets /healthz", hc)
say(get("walcount", "depends_on", "postgres", "condition") == "service_healthy", "walcount waits for a healthy postgres")
for s in svc:
    say(svc[s].get("restart") == "unless-stopped", s + " restart: unless-stopped", str(svc[s].get("restart")))
env = get("walcount", "environment")
say(env.get("WALCOUNT_DATABASE_DSN", "").split() == ["host=postgres", "port=5432", "dbname=audius", "user=walcount"],
    "walcount DSN names postgres/audius/walcount", env.get("WALCOUNT_DATABASE_DSN", ""))
say(env.get("WALCOUNT_DATABASE_PASSWORD_FILE") == "/run/secrets/walcount_password", "walcount password from its secret")
say(env.get("WALCOUNT_METRICS_LISTEN") == "0.0.0.0:9187", "walcount metrics on 0.0.0.0:9187")
say(any(str(v).endswith(":/etc/walcount/config.yaml:ro") for v in get("walcount", "volumes") or []),
    "config.yaml mounted read-only at /etc/walcount/config.yaml")
say(get("postgres", "environment").get("POSTGRES_PASSWORD_FILE") == "/run/secrets/postgres_password",
    "postgres superuser password from its secret")
def names(l):
    return sorted((x if isinstance(x, str) else x.get("source")) for x in l or [])
say(names(get("postgres", "secrets")) == ["postgres_password", "walcount_password"], "postgres gets both secrets", str(names(get("postgres", "secrets"))))
say(names(get("walcount", "secrets")) == ["walcount_password"], "walcount gets only its own secret", str(names(get("walcount", "secrets"))))
files = {k: v.get("file", "") for k, v in (c.get("secrets") or {}).items()}
say(names(get("grafana", "secrets")) == ["grafana_admin_password"], "grafana gets only its admin password", str(names(get("grafana", "secrets"))))
say(get("grafana", "environment").get("GF_SECURITY_ADMIN_PASSWORD__FILE") == "/run/secrets/grafana_admin_password",
    "grafana admin password from its secret")
say(sorted(files) == ["grafana_admin_password", "postgres_password", "walcount_password"] and all(re.search(r"/secrets/" + k + "$", f) for k, f in files.items()),
    "secrets are files in ./secrets", str(files))
leaks = []
for s, d in svc.items():
    e = d.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) if "=" in x else (x, "") for x in e)
    for k, v in e.items():
        if re.search(r"PASSW|SECRET|TOKEN", k) and not k.endswith("_FILE"):
            leaks.append(s + ": " + k)
        if re.search(r"password\s*=|://[^/@:]*:[^/@]*@", str(v), re.I):
            leaks.append(s + ": " + k + " carries a password")
say(not leaks, "no password in the compose file's environment", "; ".join(leaks))
say(all(not d.get("privileged") for d in svc.values()), "no privileged service")
EOF
		while IFS= read -r line; do
			case $line in
			"ok "*) ok "compose: ${line#ok }" ;;
			"FAIL "*) bad "compose: ${line#FAIL }" ;;
			*) bad "compose: checker said" "$line" ;;
			esac
		done <"$tmp/compose.out"
	else
		bad "docker-compose config" "$(cat "$tmp/compose.err")"
	fi
fi
if command -v git >/dev/null 2>&1 && [ -d .git ]; then
	check "./secrets is gitignored" git check-ignore -q secrets/postgres_password
fi
make_secrets_works() {
	sh scripts/make-secrets.sh "$tmp/s" >/dev/null &&
		a=$(cat "$tmp/s/postgres_password") && b=$(cat "$tmp/s/walcount_password") &&
		[ ${#a} -eq 48 ] && [ ${#b} -eq 48 ] && [ "$a" != "$b" ] &&
		sh scripts/make-secrets.sh "$tmp/s" >/dev/null && [ "$(cat "$tmp/s/postgres_password")" = "$a" ]
}
check "scripts/make-secrets.sh writes two random, distinct passwords and keeps them" make_secrets_works

if need promtool prometheus; then
	check "promtool check config docker/prometheus/prometheus.yml" promtool check config docker/prometheus/prometheus.yml
fi
check "prometheus scrapes walcount:9187" grep -q "walcount:9187" docker/prometheus/prometheus.yml

# The provisioning YAML and the dashboard JSON parse; every panel and
# target queries the provisioned data source by its uid.
grafana_files_ok() {
	"$py" -I - <<'EOF'
import glob, json, sys, yaml
ds = yaml.safe_load(open("docker/grafana/provisioning/datasources/prometheus.yml"))["datasources"]
uids = {d["uid"] for d in ds}
prov = yaml.safe_load(open("docker/grafana/provisioning/dashboards/walcount.yml"))["providers"]
assert [p["options"]["path"] for p in prov] == ["/etc/grafana/dashboards"], prov
bad = []
for f in glob.glob("docker/grafana/dashboards/*.json"):
    d = json.load(open(f))
    for p in d["panels"]:
        for x in [p] + p.get("targets", []):
            if x.get("datasource", {}).get("uid") not in uids:
                bad.append("%s: panel %r" % (f, p.get("title")))
sys.exit("data source not provisioned: " + "; ".join(bad) if bad else 0)
EOF
}
check "docker/grafana: provisioning and dashboard parse, data source provisioned" grafana_files_ok

# --- Dockerfile lint ---------------------------------------------------------

# Prints a Dockerfile's instructions one a line, "LINE<TAB>INSTRUCTION ARGS",
# continuation lines joined, blanks squeezed to one space, comment lines
# dropped.
instructions() {
	awk '
	/^[ \t]*#/ { next }
	{
		line = $0
		if (buf == "") start = NR
		cont = sub(/\\[ \t]*$/, "", line)
		buf = buf line " "
		if (!cont) {
			gsub(/[ \t]+/, " ", buf); sub(/^ /, "", buf); sub(/ $/, "", buf)
			if (buf != "") print start "\t" buf
			buf = ""
		}
	}' "$1"
}

# lint FILE [final-stage-user]: the basic rules; prints what breaks them.
lint() {
	f=$1
	instructions "$f" >"$tmp/instr"
	awk -F'\t' -v file="$f" -v rootok="$(grep -c '^# lint: root-ok' "$f")" '
	function problem(msg) { print file ":" $1 ": " msg; bad = 1 }
	{ split($2, w, /[ \t]+/); ins = toupper(w[1]); args = substr($2, length(w[1]) + 2) }
	ins == "ARG" && stage == 0 {
		split(args, kv, "="); if (kv[2] != "") argdef[kv[1]] = kv[2]
	}
	ins == "FROM" {
		stage++; user = ""; image = w[2]
		for (a in argdef) { gsub("\\$\\{" a "\\}", argdef[a], image); gsub("\\$" a, argdef[a], image) }
		if (w[3] ~ /^[Aa][Ss]$/) stages[w[4]] = 1
		if (image in stages) next
		if (image ~ /@sha256:/) next
		tag = image; if (sub(/^.*:/, "", tag) == 0 || tag ~ /\//) problem("FROM " image ": no tag")
		else if (tag == "latest") problem("FROM " image ": latest")
		else if (tag !~ /[0-9]+\.[0-9]+/) problem("FROM " image ": tag pins no minor version")
	}
	ins == "USER" { user = w[2] }
	ins == "RUN" && args ~ /apt-get (-[^ ]+ )*install/ {
		if (args !~ /apt-get (-[^ ]+ )*update/) problem("apt-get install without apt-get update in the same RUN")
		if (args !~ /--no-install-recommends/) problem("apt-get install without --no-install-recommends")
		if (args !~ /install[^&;|]* -y|-y[^&;|]* install|--yes|--assume-yes/) problem("apt-get install without -y")
		if (args !~ /rm -rf \/var\/lib\/apt\/lists/) problem("apt lists not removed in the RUN that fetched them")
	}
	ins == "RUN" && args ~ /apt-get (-[^ ]+ )*update/ && args !~ /install/ { problem("apt-get update alone in a RUN") }
	ins == "RUN" && args ~ /apt-get (-[^ ]+ )*(dist-)?upgrade/ { problem("apt-get upgrade: pin a newer base instead") }
	ins == "ENV" || ins == "ARG" {
		# the names: NAME=VALUE pairs, or the legacy "ENV NAME VALUE"
		n = split(args, kv, / /)
		if (kv[1] !~ /=/) n = 1
		for (i = 1; i <= n; i++) {
			name = kv[i]; sub(/=.*/, "", name)
			if (toupper(name) ~ /PASSW|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY/ && name !~ /_FILE$/) problem(ins " " name ": secrets do not belong in the image")
		}
	}
	ins == "ADD" { problem("ADD: use COPY") }
	(ins == "RUN" || ins == "COPY") && args ~ /--(mount|chmod|link|checksum|parents|exclude)[= ]|<</ {
		problem(ins ": BuildKit-only syntax; docker-compose 1.29 uses the classic builder")
	}
	(ins == "CMD" || ins == "ENTRYPOINT") && args !~ /^\[/ { problem(ins " in shell form: PID 1 would be sh, not the program") }
	END {
		if (stage == 0) problem("no FROM")
		if (!rootok && (user == "" || user ~ /^(root|0)(:|$)/)) problem("runtime stage runs as root (no USER, or USER root)")
		exit bad
	}' "$tmp/instr"
}

for df in Dockerfile docker/postgres/Dockerfile; do
	check "lint $df" lint "$df"
done
check "Dockerfile has a HEALTHCHECK" grep -q '^HEALTHCHECK ' Dockerfile
one_debian() { [ "$(grep -c '^FROM debian:${DEBIAN_TAG}' Dockerfile)" -eq 2 ]; }
check "both Dockerfile stages use one Debian release" one_debian
pg_minor_ok() {
	v=$(sed -n 's/^FROM postgres:15\.\([0-9][0-9]*\)-.*/\1/p' docker/postgres/Dockerfile)
	[ -n "$v" ] && [ "$v" -ge 19 ]
}
check "postgres image is 15.19 or later (output_plugin_libraries)" pg_minor_ok

# --- the walcount image's build context --------------------------------------

# The files docker-compose would send: docker-py applies .dockerignore the
# way docker-compose 1.29 does when it builds.
if [ -x "$py" ] && "$py" -I -c 'import docker.utils.build' 2>/dev/null; then
	"$py" -I - >"$tmp/context" 2>&1 <<'EOF'
import docker.utils.build as b
pats = [l.strip() for l in open(".dockerignore").read().splitlines()]
pats = [p for p in pats if p and not p.startswith("#")]
for p in sorted(b.exclude_paths(".", pats, dockerfile="Dockerfile")):
    print(p)
EOF
	missing=""
	for f in Makefile scripts/embed-sql.sh config.yaml docker/walcount/healthcheck.sh src/*.c src/*.h sql/*.sql; do
		grep -qx "$f" "$tmp/context" || missing="$missing $f"
	done
	# and every source a COPY in Dockerfile names (other than --from)
	for f in $(instructions Dockerfile | awk -F'\t' '$2 ~ /^COPY / && $2 !~ /--from/ {
			n = split($2, w, /[ \t]+/); for (i = 2; i < n; i++) if (w[i] != "") print w[i] }'); do
		[ "$f" = . ] && continue
		grep -q "^${f%/}\(/\|\$\)" "$tmp/context" || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		ok "build context holds what the image needs"
	else
		bad "build context holds what the image needs" "missing:$missing"
	fi
	nothing_private() { ! grep -E '^(secrets|\.pgdata|\.git|bin|build|build-san|tests|bench)(/|$)' "$tmp/context"; }
	check "build context holds nothing private or built" nothing_private
	builds_from_context() {
		mkdir "$tmp/ctx" && tar -cf - -T "$tmp/context" | tar -xf - -C "$tmp/ctx" &&
			(cd "$tmp/ctx" && make -s bin/walcount >/dev/null && ./bin/walcount --version)
	}
	check "make bin/walcount builds from the build context alone" builds_from_context
else
	bad "docker-py present" "missing: apt-get install docker-compose (it brings python3-docker)"
fi

# --- docker/postgres/initdb/10-walcount.sh -----------------------------------

# The official image's first start, step by step (docker-entrypoint.sh _main
# on an empty PGDATA: initdb, "host all all all scram-sha-256" appended, a
# socket-only temporary server, the database, the init scripts, a stop), with
# the compose command line's settings; then the real server, on TCP.
initdb_emulation() {
	d=$tmp/pg
	mkdir -p "$d/secrets"
	sh scripts/make-secrets.sh "$d/secrets" >/dev/null
	# the server runs as postgres, which must reach its files here
	chmod 711 "$tmp"
	chmod 755 "$d/secrets"
	[ "$(id -u)" -eq 0 ] && chown -R postgres "$d"
	as_owner env PATH="$pgbin:$PATH" PGDATA="$d/data" PGHOST="$d" PGPORT="$port" \
		POSTGRES_USER=postgres POSTGRES_DB=audius \
		WALCOUNT_SQL_DIR="$top/sql" WALCOUNT_PASSWORD_FILE="$d/secrets/walcount_password" \
		INIT_SCRIPT="$top/docker/postgres/initdb/10-walcount.sh" D="$d" sh -ec '
		settings="-c wal_level=logical -c output_plugin_libraries='\''pgoutput,test_decoding,wal2json'\''"
		settings="$settings -c max_replication_slots=10 -c max_wal_senders=10 -c unix_socket_directories=$D -p $PGPORT"
		initdb --username=postgres --pwfile="$D/secrets/postgres_password" >"$D/initdb.log" 2>&1
		printf "\nhost all all all %s\n" "$(postgres -C password_encryption)" >>"$PGDATA/pg_hba.conf"
		pg_ctl -D "$PGDATA" -o "$settings -c listen_addresses=" -w -l "$D/server.log" start >/dev/null
		psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE audius"
		"$INIT_SCRIPT"
		pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
		pg_ctl -D "$PGDATA" -o "$settings -c listen_addresses=127.0.0.1" -w -l "$D/server.log" start >/dev/null'
}
# as_walcount [PASSWORD] CONNINFO-TAIL SQL: one query as the walcount role over TCP.
as_walcount() {
	PGPASSWORD=$1 psql -X -At "host=127.0.0.1 port=$port user=walcount $2" -c "$3"
}
walcount_logs_in() { as_walcount "$pw" dbname=audius "SELECT 1"; }
walcount_replicates() { as_walcount "$pw" "dbname=audius replication=database" "IDENTIFY_SYSTEM"; }
walcount_refused_elsewhere() { ! as_walcount "$pw" dbname=postgres "SELECT 1"; }
walcount_refused_wrong_pw() { ! as_walcount wrong dbname=audius "SELECT 1"; }
walcount_role_attrs() {
	r=$(as_walcount "$pw" dbname=audius \
		"SELECT rolcanlogin AND rolreplication AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole FROM pg_roles WHERE rolname = current_user") &&
		[ "$r" = t ]
}
schema_loaded() {
	r=$(as_walcount "$pw" dbname=audius \
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('reposts', 'saves', 'follows', 'aggregate_user', 'aggregate_track', 'aggregate_playlist')") &&
		[ "$r" = 6 ]
}

if [ -x "$pgbin/postgres" ] && [ -f "$pgbin/../lib/wal2json.so" ]; then
	if out=$(initdb_emulation 2>&1); then
		ok "initdb/10-walcount.sh on an emulated first start"
		pw=$(cat "$tmp/pg/secrets/walcount_password")
		check "walcount logs in to audius with its secret" walcount_logs_in
		check "walcount opens a logical replication connection to audius" walcount_replicates
		check "walcount is refused other databases" walcount_refused_elsewhere
		check "walcount is refused without its password" walcount_refused_wrong_pw
		check "walcount role: LOGIN REPLICATION, no superuser, createdb, createrole" walcount_role_attrs
		check "schema.sql loaded into audius" schema_loaded
	else
		bad "initdb/10-walcount.sh on an emulated first start" "$out
$(tail -n 20 "$tmp/pg/server.log" 2>/dev/null)"
	fi
else
	bad "postgresql-15 and postgresql-15-wal2json are installed" "missing: scripts/deps.sh installs them"
fi

# --- shell scripts -----------------------------------------------------------

if need shellcheck shellcheck; then
	check "shellcheck" shellcheck -x docker/postgres/initdb/10-walcount.sh docker/walcount/healthcheck.sh \
		scripts/*.sh tests/*.sh tests/fuzz/*.sh bench/*.sh .ci/run
fi

checks_summary compose
