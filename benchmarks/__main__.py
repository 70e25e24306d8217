"""``python -m benchmarks``: pgwarden at scale, on several shapes of server, with one command.

Builds each shape of shared server (``benchmarks.shapes``: 1,000 databases and 10,000
roles, arranged four ways) on a throwaway local PostgreSQL, measures the floor (one
bare connection and ``SELECT 1`` per database, paying the same login cost) and
``pgwarden scan --json`` on each, with SCRAM and with trust authentication; scans one
wide app database (``benchmarks.wide``: 100,000 tables, 300 foreign members); renders
50,000 synthetic findings in JSON, SARIF and HTML; opens the HTML report in Chromium;
and prints the figures and the targets they meet or miss (exit 1 when one is
missed). ``--quick`` runs small sizes as a smoke test; ``--reports-only`` builds no
server and measures only the rendering and the report in Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from benchmarks.measure import FAILURES, failed
from benchmarks.network import MAX_RTT_MS
from benchmarks.options import JOBS, REPEAT, SCAN_TIMEOUT, whole, within
from benchmarks.run import AUTHS, RunReport, run_benchmark, run_reports_only, shape_name
from benchmarks.scenario import Plan
from benchmarks.shapes import SHAPES
from benchmarks.tables import print_report, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="pgwarden performance at scale"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--jobs",
        type=JOBS,
        default=4,
        help="per-database connections (1 to 64, as pgwarden's; default 4, as pgwarden)",
    )
    parser.add_argument(
        "--repeat",
        type=REPEAT,
        help="floor-and-scan pairs per shape and authentication, and scans of the wide "
        "database, the best of each kept (1 to 20; default 3, --quick: 1)",
    )
    parser.add_argument(
        "--shape",
        action="append",
        dest="shapes",
        type=shape_name,
        choices=[shape.name for shape in SHAPES],
        metavar="{" + ",".join(shape.name.replace(" ", "-") for shape in SHAPES) + "}",
        help="measure only this shape (repeatable; default all); "
        "'single-db-apps' and 'single-db apps' are the same shape",
    )
    parser.add_argument(
        "--auth",
        action="append",
        dest="auths",
        choices=AUTHS,
        help="measure only this authentication (repeatable; default both)",
    )
    parser.add_argument(
        "--scan-timeout",
        type=SCAN_TIMEOUT,
        default=240.0,
        help="stop a scan after this many seconds (1 to 3,600, default 240)",
    )
    parser.add_argument(
        "--findings",
        type=_findings,
        default=50_000,
        help="synthetic findings to render (1 to 1,000,000, default 50000)",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium check")
    parser.add_argument(
        "--no-wide",
        action="store_true",
        help="skip the wide database (one app database of 100,000 tables; about two "
        "minutes; measured only when every shape is)",
    )
    parser.add_argument(
        "--reports-only",
        action="store_true",
        help="build no server: only render the synthetic findings and open the HTML "
        "report in Chromium (about a minute)",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of the synthetic servers and findings (default 7)"
    )
    parser.add_argument(
        "--scale",
        type=_scale,
        default=1.0,
        metavar="K",
        help="build every shape at K times its size (databases, roles and apps; 0.1 to "
        "10, default 1), to see how the figures follow the size: peak RSS and the "
        "results' size are judged only at 1",
    )
    parser.add_argument(
        "--tables",
        type=_tables,
        metavar="N",
        help=f"build every shape's app databases with N tables each (1 to 2,000, default "
        f"{Plan().tables}), to see what grows with the objects (their grants): peak RSS and "
        "the results' size are judged only at the default",
    )
    parser.add_argument(
        "--long-names",
        action="store_true",
        help="name every shape's apps, databases and roles near PostgreSQL's 63 bytes, "
        "quoted (spaces, capitals, a letter outside ASCII; logins of no app by an Entra "
        "user principal name), to see what grows with the names",
    )
    parser.add_argument(
        "--network",
        type=_rtt,
        metavar="RTT_MS",
        help="reach every shape's server as across a network: over TLS (verify-full, a "
        "throwaway CA) and through a local forwarder adding RTT_MS milliseconds to each "
        f"round trip (0 to {MAX_RTT_MS:g}; 0: TLS only); the floors pay the same. Default: "
        "the loopback without TLS, where the catalog reads weigh most",
    )
    default_out = Path(tempfile.gettempdir()) / "pgwarden-benchmark"
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help=f"where configs, reports and benchmark.json go (default {default_out})",
    )
    args = parser.parse_args(argv)
    if args.quick and args.scale != 1:
        parser.error("--scale sizes the full run's shapes: leave out --quick")
    # Wide enough for the tables when the output goes to a file or a CI log.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, highlight=False)
    started = time.monotonic()

    def progress(message: str) -> None:
        err.print(f"[dim]benchmark {time.monotonic() - started:6.0f} s:[/] {message}", markup=True)

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--out {args.out}: {exc.strerror or exc}")
    try:
        report = _run(args, progress)
    except FAILURES as exc:
        return failed(parser.prog, exc)
    print_report(report, console)
    console.print(f"\nDetails: {args.out / 'benchmark.json'}")
    return 1 if any(v.met is False for v in verdicts(report)) else 0


def _run(args: argparse.Namespace, progress: Callable[[str], None]) -> RunReport:
    if args.reports_only:
        return run_reports_only(
            out=args.out,
            findings=args.findings,
            browser=not args.no_browser,
            seed=args.seed,
            progress=progress,
        )
    return run_benchmark(
        quick=args.quick,
        jobs=args.jobs,
        out=args.out,
        repeat=args.repeat if args.repeat is not None else (1 if args.quick else 3),
        scan_timeout=args.scan_timeout,
        findings=args.findings,
        browser=not args.no_browser,
        seed=args.seed,
        shapes=args.shapes,
        auths=tuple(args.auths or AUTHS),
        wide=not args.no_wide and not args.shapes,
        scale=args.scale,
        long_names=args.long_names,
        tables=args.tables,
        network=args.network,
        progress=progress,
    )


_findings = whole(1, 1_000_000)  # --findings
_scale = within(float, "a number", 0.1, 10.0)  # --scale
_tables = whole(1, 2000)  # --tables
_rtt = within(float, "a number", 0.0, MAX_RTT_MS)  # --network


if __name__ == "__main__":
    sys.exit(main())
