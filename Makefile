# zkrecipes - plain GNU make. Every output goes under $(BUILD).
#
#   make [all]          static + shared library and zkrecipes.pc
#   make examples       example programs
#   make check          install missing packages, start throwaway ZooKeeper servers,
#                       run every test (Check suites, install smoke test, symbols)
#   make demo           install missing packages, start a throwaway server, run the demo
#   make bench          zkrecipes against the raw C client floors
#   make bench-peers    also Apache Curator and kazoo, with tables and a chart
#   make bench-compare  this tree against BEFORE_REV (a git revision), alternating
#   make faultcheck     the fault suite (3-node ensemble, crashes, partitions, pauses,
#                       partitions inside the ensemble, slow and stalled log disks)
#   make soak           every recipe for DURATION (default 30m) under a random fault
#                       mix, clients restarting; RSS, fds, threads, watches and znodes
#                       sampled, their growth per hour reported, a chart drawn
#   make install        honours DESTDIR, PREFIX, LIBDIR, INCLUDEDIR, BINDIR, MANDIR,
#                       BASHCOMPDIR (man pages zkr(1), zkrecipes(3); bash completion)
#   make dist           $(BUILD)/zkrecipes-VERSION.tar.gz: HEAD's tracked files, less debian/
#   make distcheck      make dist, then build (all, examples, tests) in the unpacked
#                       tarball and run its server-free symbol check
#   make deb-check      the Debian packaging's acceptance check, from a fresh clone of
#                       HEAD (as root): builds the .debs, lintian, installs them, builds
#                       and runs an example against them, man zkr, the README's cron
#                       line, distcheck; then purges them. About a minute here, so
#                       .ci/run runs it (after make check WERROR=1).
#   make uninstall | clean | format
# Knobs: WERROR=1 (warnings are errors), SANITIZE=1 (ASan + UBSan, in build/san),
#        TSAN=1 (ThreadSanitizer, in build/tsan), VALGRIND=1 (run the Check suites
#        under valgrind), CC, CPPFLAGS, CFLAGS, LDFLAGS (as distributions pass them).

SHELL := /bin/bash
.DEFAULT_GOAL := all

version_part = $(shell sed -n 's/^\#define ZKR_VERSION_$(1) \([0-9][0-9]*\)$$/\1/p' include/zkrecipes/common.h)
MAJOR := $(call version_part,MAJOR)
MINOR := $(call version_part,MINOR)
PATCH := $(call version_part,PATCH)
VERSION := $(MAJOR).$(MINOR).$(PATCH)
# The ABI number: the N of the SONAME libzkrecipes.so.N and of the Debian package
# libzkrecipesN. It is not the release version: it moves only when a release
# breaks binary compatibility, before 1.0 too (docs/abi-policy.md).
# tests/check-symbols.sh reads it from this line.
ABI := 0

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

ifeq ($(SANITIZE),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(TSAN),1)
BUILD ?= build/tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
CFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DTHREADED -pthread -fPIC -fvisibility=hidden \
             -Iinclude -Ilib -Irecipes $(JANSSON_CFLAGS) $(CPPFLAGS) $(WARNFLAGS) $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS)
# JSON (service discovery's instances, zkr --json) through jansson (libjansson-dev).
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
ZK_LIBS := -lzookeeper_mt $(JANSSON_LIBS)

LIB_SRCS := $(wildcard lib/*.c) $(wildcard recipes/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
STATIC := $(BUILD)/libzkrecipes.a
SHARED_REAL := $(BUILD)/libzkrecipes.so.$(VERSION)
SHARED_SONAME := libzkrecipes.so.$(ABI)
SHARED := $(BUILD)/libzkrecipes.so
PCFILE := $(BUILD)/zkrecipes.pc

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(BUILD)/tests/check_zkrecipes
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

BENCH_BIN := $(BUILD)/bench/zkr_bench
ZKR_BIN := $(BUILD)/zkr
FAULT_BIN := $(BUILD)/faults/fault_client

.PHONY: all examples tests check check-run demo demo-run bench bench-run bench-peers \
        bench-peers-run bench-compare bench-compare-run faultcheck faultcheck-run soak soak-run \
        install \
        uninstall clean format deps dist distcheck distcheck-run deb-check

all: $(STATIC) $(SHARED) $(PCFILE) $(ZKR_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED_REAL): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SHARED_SONAME) -Wl,--no-undefined -o $@ $^ $(ALL_LDFLAGS) $(ZK_LIBS)

$(SHARED): $(SHARED_REAL)
	ln -sf $(notdir $(SHARED_REAL)) $(BUILD)/$(SHARED_SONAME)
	ln -sf $(notdir $(SHARED_REAL)) $@

# libdir/includedir stay relative to ${prefix} when they live under it, so the
# file also works with pkg-config --define-prefix from a staged tree.
# The file is written again at install time, so PREFIX given to `make install`
# is what lands in the installed copy.
pc_path = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
gen_pc = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_path,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call pc_path,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	    zkrecipes.pc.in > $(1)
$(PCFILE): zkrecipes.pc.in include/zkrecipes/common.h
	@mkdir -p $(@D)
	$(call gen_pc,$@)

# Examples are built the way a user would build them, and always with -Werror.
examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Werror -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(ZK_LIBS)

ZKRAW_BIN := $(BUILD)/tests/zkraw
tests: $(TEST_BIN) $(ZKRAW_BIN)
$(ZKRAW_BIN): tests/tools/zkraw.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(ZK_LIBS)

$(TEST_BIN): $(TEST_OBJS) $(STATIC)
	@mkdir -p $(@D)
	$(CC) -o $@ $(TEST_OBJS) $(STATIC) $(ALL_LDFLAGS) $(ZK_LIBS) $(CHECK_LIBS)

# The command-line tool; linked with the static library so that it runs from the
# build tree and once installed alike (it still needs libzookeeper_mt).
$(ZKR_BIN): tools/zkr.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(ZK_LIBS)

$(FAULT_BIN): faults/fault_client.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(ZK_LIBS)

$(BENCH_BIN): bench/zkr_bench.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(ZK_LIBS) -lm

deps:
	bash tests/deps.sh

# The two README commands install what is missing first, then build in a
# sub-make (so pkg-config answers for packages that were just installed).
check: deps
	$(MAKE) --no-print-directory check-run

check-run: all examples tests $(ZKR_BIN)
	BUILD=$(BUILD) VALGRIND=$(VALGRIND) TSAN=$(TSAN) CC="$(CC)" tests/zk/with-zk.sh -- tests/run.sh

demo: deps
	$(MAKE) --no-print-directory demo-run

demo-run: all examples
	tests/zk/with-zk.sh --standalone -- bash -c '"$$0" "$$ZKR_TEST_STANDALONE"' \
	    $(BUILD)/examples/lock_contention

# Benchmarks print figures and ratios measured side by side in one run, on a
# throwaway standalone server (forceSync as ZooKeeper's default), or on a
# throwaway 3-node ensemble with BENCH_ENSEMBLE=1. BENCH_ARGS passes options
# through, e.g. make bench BENCH_ARGS="-r 5 -w w1,w2".
# bench-peers also installs and runs Apache Curator and kazoo, round after round
# (BENCH_ROUNDS, default 5), and draws a chart into $(BUILD)/bench.
PEER_PKGS := libcurator-recipes-java python3-kazoo gnuplot-nox default-jdk-headless
ifeq ($(BENCH_ENSEMBLE),1)
BENCH_ZK := --ensemble
BENCH_HOSTS := ZKR_TEST_ENSEMBLE
BENCH_LABEL := 3-node ensemble
else
BENCH_ZK := --standalone
BENCH_HOSTS := ZKR_TEST_STANDALONE
BENCH_LABEL := standalone server
endif
BENCH_ROUNDS ?= 5

bench: deps
	$(MAKE) --no-print-directory bench-run

bench-run: $(BENCH_BIN)
	tests/zk/with-zk.sh $(BENCH_ZK) -- bash -c '"$$0" $$1 "$$$(BENCH_HOSTS)"' \
	    $(BENCH_BIN) "$(BENCH_ARGS)"

bench-peers: deps
	bash tests/deps.sh $(PEER_PKGS)
	$(MAKE) --no-print-directory bench-peers-run

# This tree's zkr_bench against the one of BEFORE_REV (a git revision), in
# alternating rounds (BENCH_ROUNDS) on one throwaway server: per-round ratios.
BEFORE_REV ?= HEAD~1
bench-compare: deps
	$(MAKE) --no-print-directory bench-compare-run

bench-compare-run: $(BENCH_BIN)
	rm -rf $(BUILD)/before && mkdir -p $(BUILD)/before
	git archive $(BEFORE_REV) | tar -x -C $(BUILD)/before
	$(MAKE) --no-print-directory -C $(BUILD)/before BUILD=build build/bench/zkr_bench
	tests/zk/with-zk.sh $(BENCH_ZK) -- bash -c '/usr/bin/python3 bench/compare_builds.py \
	    --before $(BUILD)/before/build/bench/zkr_bench --after $(BENCH_BIN) \
	    --hosts "$$$(BENCH_HOSTS)" --rounds $(BENCH_ROUNDS)'

# The fault suite: a throwaway 3-node ensemble, faults injected, histories checked.
# SEED=N replays a run; SCENARIOS=a,b runs only those.
# The members' logs are on FUSE mounts (faults/slowfs.py, python3-fusepy).
FAULT_PKGS := python3 python3-kazoo python3-fusepy
faultcheck: deps
	bash tests/deps.sh $(FAULT_PKGS)
	$(MAKE) --no-print-directory faultcheck-run

faultcheck-run: $(FAULT_BIN)
	tests/zk/with-zk.sh --standalone -- /usr/bin/python3 faults/test_zkproxy.py
	/usr/bin/python3 faults/test_linkproxy.py
	/usr/bin/python3 faults/test_slowfs.py
	/usr/bin/python3 faults/test_zkdata.py
	/usr/bin/python3 faults/faultcheck.py --client $(FAULT_BIN) \
	    $(if $(SEED),--seed $(SEED)) $(if $(SCENARIOS),--only $(SCENARIOS))

# The soak: DURATION (30m; CI runs 3m), samples, table and chart in $(BUILD)/soak.
DURATION ?= 30m
soak: deps
	bash tests/deps.sh $(FAULT_PKGS) gnuplot-nox
	$(MAKE) --no-print-directory soak-run

soak-run: $(FAULT_BIN)
	/usr/bin/python3 faults/soak.py --client $(FAULT_BIN) --duration $(DURATION) \
	    --out $(BUILD)/soak $(if $(SEED),--seed $(SEED))

bench-peers-run: $(BENCH_BIN)
	tests/zk/with-zk.sh $(BENCH_ZK) -- bash -c '/usr/bin/python3 bench/peers/run_peers.py \
	    --hosts "$$$(BENCH_HOSTS)" --rounds $(BENCH_ROUNDS) --bench $(BENCH_BIN) \
	    --out $(BUILD)/bench --label "$(BENCH_LABEL)"'

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/zkrecipes $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(ZKR_BIN) $(DESTDIR)$(BINDIR)/
	install -m 644 docs/man/zkr.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 docs/man/zkrecipes.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 tools/zkr.bash-completion $(DESTDIR)$(BASHCOMPDIR)/zkr
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED_REAL)) $(DESTDIR)$(LIBDIR)/$(SHARED_SONAME)
	ln -sf $(notdir $(SHARED_REAL)) $(DESTDIR)$(LIBDIR)/libzkrecipes.so
	install -m 644 include/zkrecipes.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/zkrecipes/*.h $(DESTDIR)$(INCLUDEDIR)/zkrecipes/
	$(call gen_pc,$(DESTDIR)$(PKGCONFIGDIR)/zkrecipes.pc)
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/zkrecipes.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libzkrecipes.a $(DESTDIR)$(LIBDIR)/libzkrecipes.so \
	      $(DESTDIR)$(LIBDIR)/$(SHARED_SONAME) $(DESTDIR)$(LIBDIR)/$(notdir $(SHARED_REAL)) \
	      $(DESTDIR)$(INCLUDEDIR)/zkrecipes.h $(DESTDIR)$(PKGCONFIGDIR)/zkrecipes.pc \
	      $(DESTDIR)$(BINDIR)/zkr $(DESTDIR)$(MANDIR)/man1/zkr.1 \
	      $(DESTDIR)$(MANDIR)/man3/zkrecipes.3 $(DESTDIR)$(BASHCOMPDIR)/zkr
	rm -rf $(DESTDIR)$(INCLUDEDIR)/zkrecipes

# The release tarball: the tracked files of HEAD (uncommitted changes are not in
# it) under zkrecipes-VERSION/. debian/ is left out: it is the packaging of one
# distribution, built from a git checkout (make deb-check), and a distribution
# packaging the tarball brings its own; everything needed to build and test is in.
DIST := $(BUILD)/zkrecipes-$(VERSION).tar.gz
dist:
	@mkdir -p $(BUILD)
	@git diff --quiet HEAD -- || echo "dist: note: uncommitted changes are not in the tarball" >&2
	git archive --format=tar.gz --prefix=zkrecipes-$(VERSION)/ -o $(DIST) HEAD -- . ':(exclude)debian'
	@echo "dist: $(DIST) ($$(tar -tzf $(DIST) | grep -vc '/$$') files)"

distcheck: deps
	$(MAKE) --no-print-directory distcheck-run

DISTDIR := $(BUILD)/distcheck/zkrecipes-$(VERSION)
distcheck-run: dist
	rm -rf $(BUILD)/distcheck && mkdir -p $(BUILD)/distcheck
	tar -xzf $(DIST) -C $(BUILD)/distcheck
	@! tar -tzf $(DIST) | grep -E '/(debian|__pycache__|build)/' || \
	    { echo "distcheck: the tarball has files it should not (above)" >&2; exit 1; }
	$(MAKE) --no-print-directory -C $(DISTDIR) BUILD=build WERROR=1 all examples tests
	cd $(DISTDIR) && tests/check-symbols.sh build
	rm -rf $(BUILD)/distcheck
	@echo "distcheck: $(DIST) builds (library, zkr, examples, tests) and its symbols check passes"

deb-check:
	bash tests/deb-check.sh

clean:
	rm -rf build

format:
	clang-format -i include/*.h include/zkrecipes/*.h lib/*.[ch] $(wildcard recipes/*.c) \
	    examples/*.c tests/*.[ch] tests/tools/*.c bench/*.c tools/*.c

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(EXAMPLES:=.d) $(BENCH_BIN).d $(ZKR_BIN).d
