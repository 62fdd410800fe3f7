# apmnet: build, test, demo, benchmark and install the C library.
#
#   make demo           build the library and the C examples, run them on loopback
#   make test           install what the tests need, then run every test suite
#   make bench          run the benchmarks (benches/)
#   make check-memory   the C harness under valgrind and AddressSanitizer
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
RELEASE_DIR   := target/release
# apmnet.pc names its directories relative to ${prefix} where it can, so that
# `pkg-config --define-variable=prefix=...` relocates them.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# Debian packages the build, the tests and the benchmarks need (the MIT KDC and GSSAPI: the
# NegotiateStream tests run Kerberos on a loopback realm, ffi-tests/peers/krb5-loopback.sh).
DEB_PACKAGES := build-essential pkg-config libssl-dev openssl valgrind python3 libuv1-dev \
                libgssapi-krb5-2 krb5-kdc krb5-admin-server krb5-user

.PHONY: all deps build test test-rust test-examples test-python test-dotnet demo bench check-memory install uninstall clean help

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

test: test-rust test-examples test-python test-dotnet check-memory

# Where the interop peers are cached (a real .NET 8, NnsPeer.exe, pyspnego), outside the repository.
APMNET_PEERS_CACHE ?= $(HOME)/.cache/apmnet-peers

# Rust unit tests, the header freshness test and the C harness (tests/c_harness.rs runs ffi-tests/),
# with the interop peers of ffi-tests/peers/setup.sh (NegotiateStream against .NET 8 and pyspnego).
test-rust: deps
	eval "$$(bash ffi-tests/peers/setup.sh "$(APMNET_PEERS_CACHE)")" && $(CARGO) test

# The C examples built with -Werror and run against each other on loopback.
test-examples: deps build
	examples-c/demo.sh

# The ctypes package's pytest suite against the release library (pip installs pytest and the package).
test-python: deps build
	APMNET_LIBRARY=$(CURDIR)/$(RELEASE_DIR)/libapmnet.so PYTHON=$(PYTHON) bash bindings/python/test.sh

# The C# wrapper's tests on a real .NET 8 runtime (bindings/dotnet/dotnet.sh installs it and mcs,
# caching it outside the repository in APMNET_PEERS_CACHE, default ~/.cache/apmnet-peers).
test-dotnet: deps build
	APMNET_LIBRARY=$(CURDIR)/$(RELEASE_DIR)/libapmnet.so bash bindings/dotnet/test.sh

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
# built with AddressSanitizer, UBSan and LeakSanitizer.
check-memory: deps
	APMNET_VALGRIND=1 $(CARGO) test --test c_harness
	APMNET_ASAN=1 $(CARGO) test --test c_harness

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
