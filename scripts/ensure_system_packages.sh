#!/usr/bin/env bash
# The system packages `make test` and `make report` need besides .venv, checked on every run
# and silent when everything is there (idempotent):
#   chromium    headless Chromium (Debian's package): the nightly HTML test opens the report in
#               it, and kaleido draws the charts' PNGs with it
#   postgresql  PostgreSQL server binaries (initdb, pg_ctl, postgres) for the lab's ephemeral
#               cluster; not needed when PERFLAB_PG_DSN names an existing server
#   prometheus  the Prometheus server (Debian's package, 2.42): the tests start one on 127.0.0.1
#               and check perflab's rates and histogram quantiles against its answers
#               ($PERFLAB_PROMETHEUS may name the binary instead)
# Found where perflab.lab looks for them. When one is missing: as root, apt-get installs it;
# otherwise this stops with one line saying the exact command to run.
set -euo pipefail

have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

# Same search as perflab.lab.postgres.find_bindir: $PERFLAB_PG_BINDIR, initdb on PATH,
# pg_config --bindir, /usr/lib/postgresql/*/bin.
have_pg_server() {
  if [ -n "${PERFLAB_PG_DSN:-}" ]; then
    return 0
  fi
  local dirs=() d
  if [ -n "${PERFLAB_PG_BINDIR:-}" ]; then dirs+=("$PERFLAB_PG_BINDIR"); fi
  if command -v initdb >/dev/null 2>&1; then dirs+=("$(dirname "$(command -v initdb)")"); fi
  if command -v pg_config >/dev/null 2>&1; then dirs+=("$(pg_config --bindir 2>/dev/null || true)"); fi
  dirs+=(/usr/lib/postgresql/*/bin)
  for d in "${dirs[@]}"; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      return 0
    fi
  done
  return 1
}

have_prometheus() {
  if [ -n "${PERFLAB_PROMETHEUS:-}" ] && [ -x "$PERFLAB_PROMETHEUS" ]; then
    return 0
  fi
  command -v prometheus >/dev/null 2>&1
}

missing=()
have_chromium || missing+=(chromium)
have_pg_server || missing+=(postgresql)
have_prometheus || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "perflab: ${missing[*]} missing (Chromium; PostgreSQL server binaries; Prometheus): install them with your system's package manager, or PERFLAB_PG_DSN for an existing server" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "perflab: ${missing[*]} missing; run: sudo sh -c '$install'" >&2
  exit 1
fi
echo "perflab: installing ${missing[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
