# apmnet: build, test, demo, benchmark and install the C library.
#
#   make demo           build the library and the C examples, run them on loopback
#   make test           install what the tests need, then run every test suite
#   make bench          run the benchmarks (benches/)
#   make check-memory   the C harness under valgrind and AddressSanitizer
#   make fuzz           coverage-guided fuzzing, FUZZ_SECONDS (default 60) per target (nightly)
#   make soak           SOAK_CONNS (10000) connections for SOAK_SECONDS (60): exactly-once, data, RSS, fds
#   make install        PREFIX=/usr/local, DESTDIR honoured
#
# On a fresh Debian 12 machine `make demo` and `make test` do all the set-up themselves
# (`make deps`: apt-get, as root or through sudo).

CARGO      ?= cargo
PYTHON     ?= python3
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR    ?=

# rustup puts cargo here; a non-login shell (CI, sudo) may not have it on PATH.
ifneq ($(wildcard $(HOME)/.cargo/bin/cargo),)
export PATH := $(HOME)/.cargo/bin:$(PATH)
endif

# The version comes from Cargo.toml, the one place it is written.
VERSION       := $(shell sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION)))
RELEASE_DIR   := $(or $(CARGO_TARGET_DIR),target)/release
# apmnet.pc names its directories relative to ${prefix} where it can, so that
# `pkg-config --define-variable=prefix=...` relocates them.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# Debian packages the build, the tests and the benchmarks need (the MIT KDC and GSSAPI: the
# NegotiateStream tests run Kerberos on a loopback realm, ffi-tests/peers/krb5-loopback.sh; MIT's
# headers and krb5-config, and Python's: pyspnego's Kerberos, python-gssapi and krb5, are built
# from source against them on Linux; libcurl for the benchmarks' HTTP rows).
DEB_PACKAGES := build-essential pkg-config libssl-dev openssl valgrind python3 python3-venv python3-dev libuv1-dev \
                libcurl4-openssl-dev libgssapi-krb5-2 krb5-kdc krb5-admin-server krb5-user libkrb5-dev

.PHONY: all deps build test test-rust test-examples test-python python-venv test-dotnet test-readme demo bench check-memory fuzz fuzz-cargo fuzz-misuse soak install uninstall clean help

all: build

help:
	@sed -n 's/^#   //p' Makefile

# Installs only what is missing; with everything present it runs dpkg-query and nothing else.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: not a Debian system; install these yourself: $(DEB_PACKAGES)"; \
	else \
	  missing=""; \
	  for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    echo "deps: installing$$missing"; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  fi; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "deps: cargo not found: install Rust (1.80 or newer) with rustup, then run make again"; exit 1; }

build:
	$(CARGO) build --release

test: test-rust test-examples test-python test-dotnet test-readme check-memory

# Where the interop peers are cached (a real .NET 8, NnsPeer.exe, pyspnego), outside the repository.
APMNET_PEERS_CACHE ?= $(HOME)/.cache/apmnet-peers

# The interop peers of ffi-tests/peers/setup.sh (NegotiateStream against .NET 8 and pyspnego) in the
# environment of the command that follows it.
PEERS_ENV = eval "$$(bash ffi-tests/peers/setup.sh "$(APMNET_PEERS_CACHE)")"

# Rust unit tests, the header freshness test and the C harness (tests/c_harness.rs runs ffi-tests/),
# with the interop peers.
test-rust: deps
	$(PEERS_ENV) && $(CARGO) test

# The C examples built with -Werror and run against each other on loopback.
test-examples: deps build
	examples-c/demo.sh

# A fresh venv in target/python with the package installed from its wheel (pip builds the wheel,
# setuptools-rust runs cargo), pytest and mypy: once per make run, for test-python and test-readme.
PY_BUILD  := $(CURDIR)/target/python
PY_VENV   := $(PY_BUILD)/venv/bin/python
python-venv: deps
	APMNET_PYTHON_BUILD=$(PY_BUILD) PYTHON=$(PYTHON) bash bindings/python/venv.sh >/dev/null

# The ctypes package's pytest suite in that venv, against the installed package and its library.
test-python: python-venv
	APMNET_PYTHON_VENV=$(PY_VENV) bash bindings/python/test.sh

# The C# wrapper's tests on a real .NET 8 runtime (bindings/dotnet/dotnet.sh installs it and mcs,
# caching it outside the repository in APMNET_PEERS_CACHE, default ~/.cache/apmnet-peers).
test-dotnet: deps build
	APMNET_LIBRARY=$(CURDIR)/$(RELEASE_DIR)/libapmnet.so bash bindings/dotnet/test.sh

# Every fenced example of README.md and bindings/*/README.md, run as written (tests/readme_examples.py):
# C compiled against the release library, Python in the test venv (and mypy --strict), C# with mcs
# on .NET 8.
test-readme: build python-venv
	APMNET_PYTHON_VENV=$(PY_VENV) $(PY_VENV) tests/readme_examples.py

demo: deps build
	examples-c/demo.sh

bench: deps build
	@if [ -f benches/Makefile ]; then \
	  $(MAKE) -C benches; \
	elif [ -f benches/run.py ]; then \
	  $(PYTHON) benches/run.py; \
	else \
	  echo "bench: the benchmarks are not built yet (benches/ has no Makefile or run.py)"; \
	fi

# The C harness under valgrind (memcheck: errors and definite/indirect leaks fail a test), then
# built with AddressSanitizer, UBSan and LeakSanitizer; with the interop peers, so that the
# NegotiateStream tests against .NET 8 and pyspnego run there too (only our process is checked).
check-memory: deps
	$(PEERS_ENV) && APMNET_VALGRIND=1 $(CARGO) test --test c_harness && APMNET_ASAN=1 $(CARGO) test --test c_harness

# Coverage-guided fuzzing (nightly toolchain; cargo-fuzz is installed when missing): each cargo-fuzz
# target for FUZZ_SECONDS from its seeds (fuzz/corpus/, which `make test` also runs on stable);
# the figures per target are printed and kept in fuzz/runs/summary.txt.
FUZZ_SECONDS ?= 60
# FUZZ_TARGETS: a subset (default: every target of fuzz/Cargo.toml).
FUZZ_TARGETS ?=

fuzz: fuzz-cargo fuzz-misuse

fuzz-cargo: deps
	CARGO=$(CARGO) bash fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The soak (soak/soak.c, the C API only): SOAK_CONNS echo connections (raising RLIMIT_NOFILE to
# its hard limit; fewer, said so, when that is too low) and TLS sessions against the servers of
# benches/c/servers.c for SOAK_SECONDS of steady state; checks exactly-once, every byte, flat RSS
# and the descriptors at the end. `make test` runs a short one (tests/c_harness.rs, soak_short).
SOAK_CONNS   ?= 10000
SOAK_SECONDS ?= 60
SOAK_DIR     := $(or $(CARGO_TARGET_DIR),target)/soak

soak: deps build
	@mkdir -p $(SOAK_DIR)
	$(CC) -O2 -pthread benches/c/servers.c -o $(SOAK_DIR)/servers -lssl -lcrypto
	$(CC) -O2 -std=c11 -Wall -Wextra -Werror -pedantic -pthread -Iinclude -Ibenches/c soak/soak.c -o $(SOAK_DIR)/soak \
	    $(RELEASE_DIR)/libapmnet.a -lssl -lcrypto -lpthread -ldl -lm
	SOAK_CONNS=$(SOAK_CONNS) SOAK_SECONDS=$(SOAK_SECONDS) $(SOAK_DIR)/soak $(SOAK_DIR)/servers

# The misuse fuzzer (ffi-tests/misuse.c) at length: MISUSE_RUNS runs of MISUSE_CALLS calls, each
# with a seed of its own (MISUSE_SEED=n repeats one). Its short run is part of `make test`.
MISUSE_RUNS  ?= 4
MISUSE_CALLS ?= 500000
fuzz-misuse: deps
	@log=$${CARGO_TARGET_DIR:-target}/ffi-tests/logs/misuse.misuse_fuzz.log; \
	for i in $$(seq $(MISUSE_RUNS)); do \
	  seed=$${MISUSE_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	  echo "fuzz-misuse: run $$i of $(MISUSE_RUNS), seed $$seed, $(MISUSE_CALLS) calls"; \
	  APMNET_MISUSE_SEED=$$seed APMNET_MISUSE_CALLS=$(MISUSE_CALLS) APMNET_TEST_TIMEOUT=3600 APMNET_FFI_FILTER=misuse \
	    $(CARGO) test --test c_harness ffi_other_areas -- --quiet || exit 1; \
	  grep '^misuse: seed .* calls (' "$$log" | tail -n 1; \
	done

# lib/libapmnet.so.X.Y.Z with the soname link (read from the built library) and the
# development link libapmnet.so, the static archive, the header and the pkg-config file.
install: build
	@set -e; \
	so=libapmnet.so.$(VERSION); \
	soname=$$(readelf -d $(RELEASE_DIR)/libapmnet.so 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p'); \
	[ -n "$$soname" ] || soname=libapmnet.so.$(VERSION_MAJOR); \
	set -x; \
	install -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)"; \
	install -m 0755 $(RELEASE_DIR)/libapmnet.so "$(DESTDIR)$(LIBDIR)/$$so"; \
	if [ "$$soname" != "$$so" ]; then ln -sfn "$$so" "$(DESTDIR)$(LIBDIR)/$$soname"; fi; \
	ln -sfn "$$soname" "$(DESTDIR)$(LIBDIR)/libapmnet.so"; \
	install -m 0644 $(RELEASE_DIR)/libapmnet.a "$(DESTDIR)$(LIBDIR)/libapmnet.a"; \
	install -m 0644 include/apmnet.h "$(DESTDIR)$(INCLUDEDIR)/apmnet.h"; \
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    apmnet.pc.in > "$(DESTDIR)$(PKGCONFIGDIR)/apmnet.pc"; \
	chmod 0644 "$(DESTDIR)$(PKGCONFIGDIR)/apmnet.pc"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

uninstall:
	rm -f "$(DESTDIR)$(LIBDIR)"/libapmnet.so "$(DESTDIR)$(LIBDIR)"/libapmnet.so.$(VERSION_MAJOR) \
	      "$(DESTDIR)$(LIBDIR)"/libapmnet.so.$(VERSION) "$(DESTDIR)$(LIBDIR)"/libapmnet.a \
	      "$(DESTDIR)$(INCLUDEDIR)"/apmnet.h "$(DESTDIR)$(PKGCONFIGDIR)"/apmnet.pc

clean:
	$(CARGO) clean
	-@if [ -f benches/Makefile ]; then $(MAKE) -C benches clean; fi
