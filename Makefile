# walcount build. `make` builds bin/walcount; `make test` and `make run`
# install what is missing first (scripts/deps.sh), see README.md.

CC      ?= cc
PG_INC  := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS  ?= -O2 -g
# Kept apart from CFLAGS so `make CFLAGS=...` (check-sanitize) keeps them.
WFLAGS   = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I$(PG_INC) -Isrc -I$(BUILD)
LDLIBS  := -lpq -ljansson -lyaml -lmicrohttpd -lpthread -lm

BUILD   := build
WALCOUNT := bin/walcount
PURE    := lsn decode delta batch config cron
MODULES := $(PURE) log db prereq slot apply stream consumer metrics status pgarray reconcile
OBJS    := $(MODULES:%=$(BUILD)/%.o) $(BUILD)/sqlfiles.o
SQL     := $(sort $(wildcard sql/*.sql))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all test unit integration run check-sanitize clean deps bench-reconcile
all: $(WALCOUNT)

$(WALCOUNT): $(BUILD)/main.o $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) $(BUILD)/sqlfiles.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WFLAGS) -c -o $@ $<

# SQL files are compiled into the binary so it runs from any directory.
$(BUILD)/sqlfiles.c $(BUILD)/sqlfiles.h &: $(SQL) scripts/embed-sql.sh
	@mkdir -p $(BUILD)
	sh scripts/embed-sql.sh $(BUILD)/sqlfiles $(SQL)

$(BUILD)/sqlfiles.o: $(BUILD)/sqlfiles.c
	$(CC) $(CFLAGS) $(WFLAGS) -c -o $@ $<

# Unit tests link the pure modules only: they must not need a server.
$(BUILD)/tests/%: tests/unit/%.c $(PURE:%=$(BUILD)/%.o) $(BUILD)/log.o
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(WFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/integration: tests/integration/*.c tests/integration/*.h $(BUILD)/lsn.o
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(WFLAGS) -o $@ tests/integration/*.c $(BUILD)/lsn.o $(LDLIBS)

# metrics.c renders without a server but lives beside its HTTP listener.
$(BUILD)/tests/test_metrics: $(BUILD)/metrics.o

unit: $(UNIT)
	@sh tests/run-unit.sh $(UNIT)

deps:
	@sh scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all $(UNIT) $(BUILD)/tests/integration
	@sh tests/run.sh

integration: all $(BUILD)/tests/integration
	@sh tests/run.sh --integration-only

run: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/run-local.sh

# The same tests with walcount and the unit tests built with ASan/UBSan. A
# small quarantine keeps the 1M-row test's memory bound meaningful.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-sanitize: deps
	@$(MAKE) --no-print-directory BUILD=build-san WALCOUNT=build-san/walcount CFLAGS="$(SAN_FLAGS)" \
		build-san/walcount build-san/tests/integration $(UNIT:$(BUILD)/%=build-san/%)
	@ASAN_OPTIONS=quarantine_size_mb=16 WALCOUNT_BIN=$(CURDIR)/build-san/walcount IT_BIN=build-san/tests/integration UNIT_DIR=build-san/tests \
		sh tests/run.sh

# Reconcile benchmark (bench/reconcile.sh): sweep vs bare recount over >= 1M
# source rows and streaming latency during sweeps; writes bench/results.md.
bench-reconcile: all
	@sh bench/reconcile.sh

clean:
	rm -rf build build-san bin
