#!/bin/sh
# A scheduled pgwarden audit: one run, its reports kept in a dated folder, the run
# recorded in a SQLite history on a persistent volume. Run it from cron or as the
# entry point of a container job (see Dockerfile and kubernetes-cronjob.yaml).
#
# Environment:
#   PGWARDEN_DSN        the auditor's connection string (pgwarden.toml: dsn = "env:PGWARDEN_DSN")
#   PGWARDEN_CONFIG     the tenancy map          (default /etc/pgwarden/pgwarden.toml)
#   PGWARDEN_WAIVERS    the waivers              (default /etc/pgwarden/waivers.toml)
#   PGWARDEN_HISTORY    the run history: a file on the persistent volume, or a
#                       postgresql:// DSN        (default /var/lib/pgwarden/history.sqlite)
#   PGWARDEN_REPORTS    where reports are kept   (default /var/lib/pgwarden/reports)
#   PGWARDEN_KEEP_DAYS  report folders older than this are removed (default 400)
#
# Exit code: pgwarden's own (0 clean, 1 violations, 2 nothing scanned, 3 incomplete),
# so cron mail or the job's status tells the owners.
set -eu

: "${PGWARDEN_CONFIG:=/etc/pgwarden/pgwarden.toml}"
: "${PGWARDEN_WAIVERS:=/etc/pgwarden/waivers.toml}"
: "${PGWARDEN_HISTORY:=/var/lib/pgwarden/history.sqlite}"
: "${PGWARDEN_REPORTS:=/var/lib/pgwarden/reports}"
: "${PGWARDEN_KEEP_DAYS:=400}"

run_dir="$PGWARDEN_REPORTS/$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$run_dir"

set +e
pgwarden scan --config "$PGWARDEN_CONFIG" --waivers "$PGWARDEN_WAIVERS" \
  --history "$PGWARDEN_HISTORY" --quiet \
  --json "$run_dir/results.json" --html "$run_dir/report.html" \
  --sarif "$run_dir/results.sarif" --markdown "$run_dir/summary.md"
code=$?
set -e

if [ "$code" -ne 2 ]; then
  pgwarden history --history "$PGWARDEN_HISTORY" --limit 2 > "$run_dir/recent-runs.txt"
  ln -sfn "$run_dir" "$PGWARDEN_REPORTS/latest"
fi
# Only this script's own dated folders are ever removed.
find "$PGWARDEN_REPORTS" -mindepth 1 -maxdepth 1 -type d -name '[0-9][0-9][0-9][0-9]-*Z' \
  -mtime "+$PGWARDEN_KEEP_DAYS" -exec rm -rf {} +
echo "pgwarden audit finished with exit code $code; reports in $run_dir" >&2
exit "$code"
