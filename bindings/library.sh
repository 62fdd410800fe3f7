# Sourced by bindings/dotnet/test.sh: the library the tests run against.
# apmnet_library NAME: keeps APMNET_LIBRARY if set, else picks the newer of target/release and
# target/debug libapmnet.so of this checkout, and exports it; NAME (the caller) begins the error message.
apmnet_library() {
  local root candidate
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -z "${APMNET_LIBRARY:-}" ]; then
    for candidate in "$root/target/release/libapmnet.so" "$root/target/debug/libapmnet.so"; do
      if [ -f "$candidate" ] && { [ -z "${APMNET_LIBRARY:-}" ] || [ "$candidate" -nt "$APMNET_LIBRARY" ]; }; then
        APMNET_LIBRARY=$candidate
      fi
    done
  fi
  if [ -z "${APMNET_LIBRARY:-}" ]; then
    echo "$1: no libapmnet.so; run 'cargo build --release' first or set APMNET_LIBRARY" >&2
    exit 1
  fi
  export APMNET_LIBRARY
  echo "$1: testing $APMNET_LIBRARY" >&2
}
