# walcount build. `make` builds bin/walcount; `make test`, `make check`,
# `make run`, `make fuzz` and the benchmarks install what they are missing
# first (scripts/deps.sh MODE: only that command's packages), see README.md.

CC      ?= cc
PG_INC  := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS  ?= -O2 -g
# Kept apart from CFLAGS so `make CFLAGS=...` (check-sanitize) keeps them.
WARN    := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wformat=2 -Wcast-qual
WFLAGS   = -std=c11 $(WARN) -D_GNU_SOURCE -I$(PG_INC) -Isrc -I$(BUILD)
# Each object's header dependencies, written by the compiler (BUILD/*.d).
DEPFLAGS = -MMD -MP
LDLIBS  := -lpq -ljansson -lyaml -lmicrohttpd -lpthread -lm

BUILD   := build
WALCOUNT := bin/walcount
PURE    := lsn clock xalloc strbuf counters decode decodepool delta batch keyset stepsize sqlscript ledger pgarray config config_show cron ratelimit dsn metrics notify version procstats utf8
MODULES := $(PURE) log help session db prereq identity slot slotwait loadwatch apply fanout stream consumer checkpoint watch http status reconcile request
OBJS    := $(MODULES:%=$(BUILD)/%.o) $(BUILD)/sqlfiles.o
# Run by operators and docker with psql, never by walcount: not compiled in.
OPS_SQL := sql/schema.sql sql/roles.sql sql/drop_seed_triggers.sql
SQL     := $(sort $(filter-out $(OPS_SQL),$(wildcard sql/*.sql)))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all test check format format-check unit integration run check-sanitize clean deps bench-reconcile
.PHONY: fuzz fuzz-build fuzz-replay check-valgrind soak san-build deps-fuzz deps-run stop
all: $(WALCOUNT)

$(WALCOUNT): $(BUILD)/main.o $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WFLAGS) -o $@ $^ $(LDLIBS)

# Order-only: sqlfiles.h exists before the first compile; after that the
# .d files name it for the objects that include it.
$(BUILD)/%.o: src/%.c | $(BUILD)/sqlfiles.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WFLAGS) $(DEPFLAGS) -c -o $@ $<

# SQL files are compiled into the binary so it runs from any directory.
$(BUILD)/sqlfiles.c $(BUILD)/sqlfiles.h &: $(SQL) scripts/embed-sql.sh
	@mkdir -p $(BUILD)
	sh scripts/embed-sql.sh $(BUILD)/sqlfiles $(SQL)

# The tree's revision for --version and the build_info metric; "unknown"
# outside git (the image's build context). BUILD/revision is rewritten only
# when it changes, so version.o is rebuilt then and only then.
REVISION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/revision: FORCE
	@mkdir -p $(BUILD)
	@[ "$$(cat $@ 2>/dev/null)" = '$(REVISION)' ] || echo '$(REVISION)' >$@
$(BUILD)/version.o: $(BUILD)/revision
$(BUILD)/version.o: WFLAGS += -DWALCOUNT_REVISION='"$(REVISION)"'
.PHONY: FORCE
FORCE:

$(BUILD)/sqlfiles.o: $(BUILD)/sqlfiles.c
	$(CC) $(CFLAGS) $(WFLAGS) $(DEPFLAGS) -c -o $@ $<

# Unit tests link the pure modules only: they must not need a server. Only
# sources and objects go to the compiler: the headers the .d file adds as
# prerequisites would be compiled as precompiled headers, which gcc may
# write over the test binary.
$(BUILD)/tests/%: tests/unit/%.c $(PURE:%=$(BUILD)/%.o) $(BUILD)/log.o
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(WFLAGS) $(DEPFLAGS) -MF $@.d -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

$(BUILD)/tests/integration: tests/integration/*.c tests/integration/*.h src/lsn.h $(BUILD)/lsn.o
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(WFLAGS) -o $@ tests/integration/*.c $(BUILD)/lsn.o $(LDLIBS)

# test_metrics.c also serves the exposition over a real socket.
$(BUILD)/tests/test_metrics: $(BUILD)/http.o

unit: $(UNIT)
	@sh scripts/check-sql.sh $(SQL)
	@sh tests/run-unit.sh $(UNIT)

deps:
	@sh scripts/deps.sh test

deps-run:
	@sh scripts/deps.sh run

# make test (and .ci/run): the -O2 build's unit, deployment and integration
# tests, then the unit and integration tests built with ASan/UBSan, the
# fuzz crashers replayed under them, and the unit tests under Valgrind
# (tests/run.sh), closing with one "N passed, N failed" line.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT) $(BUILD)/tests/integration san-build
	@sh tests/run.sh

# make check: what to run while working (meant for under 5 min on 2 idle
# CPUs): the formatting check, the unit tests and the -O2 build's
# integration tests with a 20 s fault loop (tests/run.sh --check), closing
# with the same "N passed, N failed" line as make test.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT) $(BUILD)/tests/integration
	@sh tests/run.sh --check

# clang-format 14 with .clang-format: format rewrites the C sources in
# place, format-check lists the ones that differ.
format:
	@sh scripts/format.sh

format-check:
	@sh scripts/format.sh --check

integration: all $(BUILD)/tests/integration
	@sh tests/run.sh --integration-only

# make run: the local PostgreSQL (.pgdata, port 5499) and walcount in the
# foreground with config.yaml; Ctrl-C stops walcount only, make stop the
# server. Fails with walcount's status when walcount fails.
run: deps-run
	@$(MAKE) --no-print-directory all
	@sh scripts/run-local.sh

stop:
	@sh scripts/run-local.sh stop

# The same tests with walcount and the unit tests built with ASan/UBSan
# (gcc's runtimes), and the fuzz crashers replayed under them.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
san-build:
	@$(MAKE) --no-print-directory BUILD=build-san WALCOUNT=build-san/walcount CFLAGS="$(SAN_FLAGS)" \
		build-san/walcount build-san/tests/integration $(UNIT:$(BUILD)/%=build-san/%)
	@$(MAKE) --no-print-directory build-san/fuzz/replay_decode build-san/fuzz/replay_config

check-sanitize: deps san-build
	@sh tests/run.sh --sanitize

# make install: the binary, the man pages walcount(1) and walcount.yaml(5),
# the example configuration (config.yaml with the default DSN instead of
# make run's server; also as the configuration, unless one is there already) and the systemd unit, whose paths are this install's. PREFIX and
# DESTDIR as the GNU conventions; each directory can be set on its own.
# make uninstall removes them again, the configuration excepted.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
# /etc for a distribution's /usr, as its packages do; else under PREFIX.
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL        ?= install
CONFDIR         = $(DESTDIR)$(SYSCONFDIR)/walcount

.PHONY: install uninstall
$(BUILD)/walcount.service: dist/walcount.service.in FORCE
	@mkdir -p $(BUILD)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/walcount.service.in >$@

$(BUILD)/walcount.yaml.example: config.yaml dist/example-config.sed
	@mkdir -p $(BUILD)
	sed -f dist/example-config.sed config.yaml >$@

install: $(WALCOUNT) $(BUILD)/walcount.service $(BUILD)/walcount.yaml.example
	$(INSTALL) -D -m 0755 $(WALCOUNT) $(DESTDIR)$(BINDIR)/walcount
	$(INSTALL) -D -m 0644 man/walcount.1 $(DESTDIR)$(MANDIR)/man1/walcount.1
	$(INSTALL) -D -m 0644 man/walcount.yaml.5 $(DESTDIR)$(MANDIR)/man5/walcount.yaml.5
	$(INSTALL) -D -m 0644 $(BUILD)/walcount.service $(DESTDIR)$(SYSTEMDUNITDIR)/walcount.service
	$(INSTALL) -D -m 0644 $(BUILD)/walcount.yaml.example $(CONFDIR)/walcount.yaml.example
	@if [ -e $(CONFDIR)/walcount.yaml ]; then \
		echo "install: keeping $(CONFDIR)/walcount.yaml; the shipped one is walcount.yaml.example"; \
	else \
		echo "$(INSTALL) -m 0644 $(BUILD)/walcount.yaml.example $(CONFDIR)/walcount.yaml"; \
		$(INSTALL) -m 0644 $(BUILD)/walcount.yaml.example $(CONFDIR)/walcount.yaml; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/walcount $(DESTDIR)$(MANDIR)/man1/walcount.1 $(DESTDIR)$(MANDIR)/man5/walcount.yaml.5 \
		$(DESTDIR)$(SYSTEMDUNITDIR)/walcount.service $(CONFDIR)/walcount.yaml.example
	@[ ! -e $(CONFDIR)/walcount.yaml ] || echo "uninstall: kept $(CONFDIR)/walcount.yaml (remove it by hand)"

FORCE:

# Reconcile benchmark (bench/reconcile.sh): sweep vs bare recount over >= 1M
# source rows and streaming latency during sweeps, for a baseline revision
# (BENCH_BASELINE, built from git archive; none: skip) and the current tree
# side by side, ~15 min on 2 CPUs; writes bench/results.md.
bench-reconcile: all
	@sh bench/reconcile.sh

# Benchmark suite (bench/suite.sh): walcount against the raw decode limit
# (pg_recvlogical) and the seed's triggers: backlog throughput, hot-key
# writers, lag, memory, scaling, with a perf profile; its own PostgreSQL 15
# on a free port; writes its section of bench/results.md. bench-quick runs
# the same scenarios shorter (~8 min on 2 CPUs), bench adds the 10M backlog.
# The apply statement on its own (bench/apply.sh): ways of sending a batch
# side by side, backend and client CPU per 1M changes; prints, writes nothing.
.PHONY: bench-apply
bench-apply:
	@sh bench/apply.sh

.PHONY: bench bench-quick
bench: all
	@BENCH_MODE=full sh bench/suite.sh

bench-quick: all
	@BENCH_MODE=quick sh bench/suite.sh

# Fuzzing (tests/fuzz): libFuzzer targets for the wal2json decoder and the
# config parser, built with clang (clang-14, libclang-rt-14-dev). `make fuzz`
# runs each for FUZZ_SECONDS (default 600); tests/fuzz/run.sh says how.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 600
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_DECODE  := tests/fuzz/fuzz_decode.c src/counters.c src/decode.c src/delta.c src/lsn.c
FUZZ_CONFIG  := tests/fuzz/fuzz_config.c src/config.c src/xalloc.c src/log.c src/lsn.c src/utf8.c

build-fuzz/fuzz_decode: $(FUZZ_DECODE) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(WFLAGS) -o $@ $(FUZZ_DECODE) -ljansson

build-fuzz/fuzz_config: $(FUZZ_CONFIG) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(WFLAGS) -o $@ $(FUZZ_CONFIG) -lyaml

fuzz-build: deps-fuzz build-fuzz/fuzz_decode build-fuzz/fuzz_config

deps-fuzz:
	@sh scripts/deps.sh fuzz

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

# The kept crashers and the seeds as regression tests, without libFuzzer:
# the same targets under a plain driver, gcc with ASan/UBSan (check-sanitize
# runs it).
build-san/fuzz/replay_decode: tests/fuzz/replay.c $(FUZZ_DECODE) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WFLAGS) -o $@ tests/fuzz/replay.c $(FUZZ_DECODE) -ljansson

build-san/fuzz/replay_config: tests/fuzz/replay.c $(FUZZ_CONFIG) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WFLAGS) -o $@ tests/fuzz/replay.c $(FUZZ_CONFIG) -lyaml

fuzz-replay: build-san/fuzz/replay_decode build-san/fuzz/replay_config
	@sh tests/fuzz/replay.sh build-san/fuzz

# The unit tests under Valgrind (tests/run-valgrind.sh).
check-valgrind: $(UNIT)
	@sh tests/run.sh --valgrind

# The fault loop (tests/integration/fault_tests.c) for SOAK_SECONDS (default
# 1800) against its own cluster: SIGKILL, walsender and apply-connection
# terminations, fast and immediate restarts, stalls past wal_sender_timeout
# and a failing progress write, with an exact recount after each fault.
SOAK_SECONDS ?= 1800
soak: all $(BUILD)/tests/integration
	@IT_ONLY=fault_loop IT_FAULT_SECONDS=$(SOAK_SECONDS) sh tests/run.sh --integration-only

clean:
	rm -rf build build-san build-fuzz bin

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
