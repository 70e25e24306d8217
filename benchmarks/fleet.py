"""``python -m benchmarks.fleet``: a fleet scan, a sharded scan and a merge, measured.

The simulated fleet (``benchmarks.fleet_setup``): Resource Graph lists 5,000 servers,
200 of them on local PostgreSQL. Measured, with the commands the README gives:

- discovery: the Resource Graph query alone, in-process (5 pages of 1,000 rows);
- ``pgwarden scan`` of the 200 servers with 1, 4 and 16 servers in parallel: wall
  time and peak RSS of each run (a child process, ``wait4``);
- ``pgwarden scan --shard I/10`` ten times (two at a time: the machine has two cores)
  and ``pgwarden merge`` of the ten parts: its time, and whether the merged document
  equals the one-process run's (timestamps aside).

Figures print as a table and go to ``OUT/fleet-benchmark.json``. Timings depend on the
machine and its load; the output starts with the load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.fleet_setup import MAX_ADDRESSES, SimulatedFleet, simulated_fleet
from benchmarks.measure import ProcessRun, run_process
from benchmarks.options import seconds, whole
from pgwarden.collect.azure.cloud import CLOUDS, AzureClientOptions, AzureSession
from pgwarden.collect.azure.fleet import list_fleet
from pgwarden.model.config import parse_config
from tests.azure.fakes import StaticCredential

PARALLEL = (1, 4, 16)
SHARDS = 10


def pgwarden_env(fleet: SimulatedFleet) -> dict[str, str]:
    """What a pod would give pgwarden: a managed identity (the fake's), the CA, PGPASSWORD."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AZURE_"))}
    return {
        **env,
        "PGPASSWORD": fleet.auditor_password,
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "IDENTITY_ENDPOINT": f"{fleet.fake.arm_url}/msi/token",
        "IDENTITY_HEADER": "fake-identity-header",
        "REQUESTS_CA_BUNDLE": str(fleet.tls.ca_path),
    }


def pgwarden(args: list[str], env: dict[str, str], workdir: Path, timeout: float) -> ProcessRun:
    return run_process(
        [sys.executable, "-m", "pgwarden", *args], env, timeout, workdir, lambda: None
    )


def measure_discovery(fleet: SimulatedFleet) -> dict[str, Any]:
    """The Resource Graph query alone: every row of the tenant, paged."""
    config = parse_config(fleet.config.read_text(), str(fleet.config))
    assert config.fleet is not None
    session = AzureSession(
        cloud=CLOUDS["AzureCloud"],
        credential=StaticCredential(),
        arm_endpoint=fleet.fake.arm_url,
        options=AzureClientOptions(connection_verify=str(fleet.tls.ca_path)),
    )
    everything = config.fleet.model_copy(update={"tags": {}})
    started = time.perf_counter()
    servers, stats = list_fleet(everything, session)
    return {
        "listed": len(servers),
        "seconds": time.perf_counter() - started,
        "pages": stats.pages,
        "throttled": stats.throttled,
    }


def _without_times(document: dict[str, Any]) -> dict[str, Any]:
    scan = {
        key: value
        for key, value in document["scan"].items()
        if key not in ("started_at", "finished_at", "merged", "shard")
    }
    return {**document, "scan": scan}


def run_fleet(fleet: SimulatedFleet, out: Path, timeout: float) -> dict[str, Any]:
    env = pgwarden_env(fleet)
    figures: dict[str, Any] = {
        "discovery": measure_discovery(fleet),
        "audited": fleet.local,
        "scans": {},
    }
    config = str(fleet.config)
    for parallel in PARALLEL:
        result = out / f"scan-{parallel}.json"
        run = pgwarden(
            ["scan", "--config", config, "--servers-parallel", str(parallel), "--quiet",
             "--json", str(result)],
            env, out / f"run-scan-{parallel}", timeout,
        )  # fmt: skip
        document = json.loads(result.read_text()) if result.exists() else {}
        figures["scans"][parallel] = {
            "wall": run.wall,
            "cpu": run.cpu,
            "peak_rss_mb": run.peak_rss_mb,
            "exit_code": run.exit_code,
            "servers": len(document.get("servers", [])),
            "complete_servers": sum(1 for s in document.get("servers", []) if s.get("complete")),
            "findings": len(document.get("findings", [])),
            "stderr": run.stderr[-400:],
        }

    def shard(index: int) -> ProcessRun:
        return pgwarden(
            ["scan", "--config", config, "--shard", f"{index}/{SHARDS}", "--servers-parallel",
             "4", "--quiet", "--json", str(out / f"part-{index}.json")],
            env, out / f"run-shard-{index}", timeout,
        )  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        shards = list(pool.map(shard, range(SHARDS)))
    shards_wall = time.perf_counter() - started
    merged_path = out / "merged.json"
    merge = pgwarden(
        ["merge", *(str(out / f"part-{i}.json") for i in range(SHARDS)), "-o", str(merged_path),
         "--html", str(out / "merged.html")],
        env, out / "run-merge", timeout,
    )  # fmt: skip
    merged = json.loads(merged_path.read_text()) if merged_path.exists() else {}
    one = json.loads((out / "scan-4.json").read_text())
    figures["shards"] = {
        "wall_two_at_a_time": shards_wall,
        "walls": [s.wall for s in shards],
        "peak_rss_mb": max(s.peak_rss_mb for s in shards),
        "exit_codes": [s.exit_code for s in shards],
        "servers": [
            len(json.loads((out / f"part-{i}.json").read_text())["servers"])
            for i in range(SHARDS)
            if (out / f"part-{i}.json").exists()
        ],
    }
    figures["merge"] = {
        "wall": merge.wall,
        "peak_rss_mb": merge.peak_rss_mb,
        "exit_code": merge.exit_code,
        "stderr": merge.stderr.strip(),
        "servers": len(merged.get("servers", [])),
        "equals_one_process_run": bool(merged) and _without_times(merged) == _without_times(one),
    }
    return figures


def print_figures(figures: dict[str, Any], console: Console) -> None:
    discovery = figures["discovery"]
    console.print(
        f"discovery: {discovery['listed']} servers listed by Resource Graph in "
        f"{discovery['seconds']:.2f} s ({discovery['pages']} pages, "
        f"{discovery['throttled']} throttled)"
    )
    table = Table(title=f"pgwarden scan of the fleet ({figures['audited']} servers audited)")
    for column in ("servers in parallel", "wall s", "CPU s", "peak RSS MB", "servers", "exit"):
        table.add_column(column, justify="right")
    for parallel, scan in figures["scans"].items():
        table.add_row(
            str(parallel),
            f"{scan['wall']:.1f}",
            f"{scan['cpu']:.1f}",
            f"{scan['peak_rss_mb']:.0f}",
            f"{scan['complete_servers']}/{scan['servers']} complete",
            str(scan["exit_code"]),
        )
    console.print(table)
    shards, merge = figures["shards"], figures["merge"]
    console.print(
        f"{SHARDS} shards (--servers-parallel 4, two at a time): "
        f"{shards['wall_two_at_a_time']:.1f} s, servers per shard {shards['servers']}, "
        f"peak RSS {shards['peak_rss_mb']:.0f} MB"
    )
    console.print(
        f"merge of {SHARDS} parts: {merge['wall']:.2f} s, peak RSS {merge['peak_rss_mb']:.0f} MB, "
        f"{merge['servers']} servers, exit {merge['exit_code']}; equals the one-process run "
        f"(timestamps aside): {'yes' if merge['equals_one_process_run'] else 'NO'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet", description="pgwarden across a simulated fleet"
    )
    parser.add_argument(
        "--listed", type=whole(1, 1_000_000), default=5_000, help="servers Resource Graph lists"
    )
    parser.add_argument(
        "--servers", type=whole(1, 4_096), default=200, help="of them, on local PostgreSQL"
    )
    parser.add_argument(
        "--clusters",
        type=whole(1, 64),
        default=4,
        help="local clusters behind them (64 servers each at most)",
    )
    parser.add_argument(
        "--databases", type=whole(1, 1_000), default=6, help="app databases per cluster"
    )
    parser.add_argument(
        "--timeout", type=seconds(1, 86_400), default=900.0, help="seconds per command"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "pgwarden-fleet-benchmark",
        help="where results and figures go",
    )
    args = parser.parse_args(argv)
    if args.listed < args.servers:
        parser.error(f"--listed {args.listed:,} is fewer than --servers {args.servers:,}")
    if args.servers > MAX_ADDRESSES * args.clusters:
        parser.error(
            f"--servers {args.servers:,} need at least {-(-args.servers // MAX_ADDRESSES)} "
            f"--clusters (PostgreSQL listens on at most {MAX_ADDRESSES} addresses)"
        )
    console = Console(highlight=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake's request log
    console.print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    args.out.mkdir(parents=True, exist_ok=True)
    with simulated_fleet(
        args.out,
        clusters=args.clusters,
        servers=args.servers,
        databases=args.databases,
        listed=args.listed,
    ) as fleet:
        console.print(
            f"simulated fleet: {fleet.listed} servers listed, {fleet.local} on "
            f"{len(fleet.clusters)} local clusters with {args.databases} app databases each"
        )
        figures = run_fleet(fleet, args.out, args.timeout)
    (args.out / "fleet-benchmark.json").write_text(json.dumps(figures, indent=2) + "\n")
    print_figures(figures, console)
    return 0 if figures["merge"]["equals_one_process_run"] else 1


if __name__ == "__main__":
    sys.exit(main())
