"""Run the real ``pgwarden`` command line with a stopwatch on each stage.

``python -m benchmarks.probe --stats FILE -- scan …`` behaves exactly like
``pgwarden scan …`` (same entry point, same arguments, same exit code) and also writes
FILE: seconds spent importing, collecting, evaluating (and in each rule's check),
rendering (each report format separately) and printing the findings on the terminal,
and each server's collection metrics from the snapshot (statements, connections,
seconds per collection phase).
The stopwatches wrap the functions the CLI calls; nothing else changes.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402 - imports are part of what is measured
import functools  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from pgwarden.cli import main as cli  # noqa: E402
from pgwarden.gcpause import without_cycle_collection  # noqa: E402

# As ``pgwarden`` itself does: its entry point turns the cyclic collector off, then
# imports the command it runs.
without_cycle_collection()

from pgwarden.cli.commands import scan as scan_command  # noqa: E402
from pgwarden.cli.listing import print_findings as cli_print_findings  # noqa: E402
from pgwarden.cli.outputs import render_outputs as cli_render_outputs  # noqa: E402
from pgwarden.collect.run import collect_plan as scan_collect_plan  # noqa: E402
from pgwarden.engine import evaluate as engine_evaluate  # noqa: E402
from pgwarden.reports.registry import RENDERERS  # noqa: E402
from pgwarden.rules.registry import RegisteredRule  # noqa: E402
from pgwarden.rules.registry import select_rules as registry_select_rules  # noqa: E402

IMPORTED = time.perf_counter()


class Stopwatch:
    """Seconds per stage of one CLI run, and what the collectors counted."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seconds: dict[str, float] = {"import": IMPORTED - _STARTED}
        self.render_seconds: dict[str, float] = {}
        # Seconds in each rule's check (all servers), by rule id: where evaluation goes.
        self.rule_seconds: dict[str, float] = {}
        self.servers: list[dict[str, Any]] = []
        self.findings: int | None = None
        self.main_started: float | None = None
        self.peak_rss_mb: dict[str, float] = {}
        self.first_stage: float | None = None

    def wrap(self, stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            if self.first_stage is None:
                self.first_stage = start
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
                # Peak RSS so far (Linux: KiB): where the memory goes, stage by stage.
                self.peak_rss_mb[stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                # Written after every stage: a scan stopped for taking too long still
                # tells how far it got.
                self.write(None)

        return timed

    def install(self) -> None:
        """Put the stopwatches on the scan command's collect, evaluate, render and print
        steps, and on each selected rule's check."""
        hooks = ("select_rules", "collect_plan", "evaluate", "render_outputs", "print_findings")
        missing = [name for name in hooks if not hasattr(scan_command, name)]
        if missing:
            raise SystemExit(
                f"benchmarks.probe: pgwarden.cli.commands.scan has no {', '.join(missing)} "
                "any more; update benchmarks/probe.py to the CLI's new shape"
            )
        # The scan command's own names for them, taken from where they are defined (the
        # CLI does not export what it imports).
        # The scan plans its servers (plan_scan), then collects the plan: the latter is
        # the collection.
        collect = self.wrap("collect", scan_collect_plan)
        evaluate = self.wrap("evaluate", engine_evaluate)

        def collect_and_record(*args: Any, **kwargs: Any) -> Any:
            snapshot = collect(*args, **kwargs)
            for server in snapshot.servers:
                pg = server.postgres
                stats = getattr(pg, "stats", None) if pg is not None else None
                self.servers.append(
                    {
                        "name": server.name,
                        "databases": len(pg.databases) if pg else 0,
                        "roles": len(pg.roles) if pg else 0,
                        "memberships": len(pg.memberships) if pg else 0,
                        "database_details": len(pg.database_details) if pg else 0,
                        "stats": stats.model_dump() if stats is not None else None,
                    }
                )
            self.write(None)
            return snapshot

        def evaluate_and_count(*args: Any, **kwargs: Any) -> Any:
            results = evaluate(*args, **kwargs)
            self.findings = len(results.findings)
            return results

        def select_and_time(*args: Any, **kwargs: Any) -> list[RegisteredRule]:
            rules: list[RegisteredRule] = registry_select_rules(*args, **kwargs)
            for entry in rules:
                self._time_checks(entry)
            return rules

        hooked = (
            ("select_rules", select_and_time),
            ("collect_plan", collect_and_record),
            ("evaluate", evaluate_and_count),
            ("render_outputs", self.wrap("render", cli_render_outputs)),
            ("print_findings", self.wrap("terminal", cli_print_findings)),
        )
        for name, hook in hooked:
            setattr(scan_command, name, hook)
        for name, (renderer, default) in list(RENDERERS.items()):
            RENDERERS[name] = (self._wrap_renderer(name, renderer), default)

    def _time_checks(self, entry: RegisteredRule) -> None:
        """A stopwatch on one rule's check. The engine reads a check's verdicts into a
        list as soon as it is called: timed here the same way, all of them, so the
        seconds are the rule's own (the engine's turning them into findings is not)."""
        rule = entry.rule
        # A check inherited from a rule already timed: time the original, once.
        check = getattr(rule.check, "__wrapped__", rule.check)
        rule_id = rule.id

        @functools.wraps(check)
        def timed(checker: Any, *args: Any, **kwargs: Any) -> list[Any]:
            start = time.perf_counter()
            try:
                return list(check(checker, *args, **kwargs))
            finally:
                spent = time.perf_counter() - start
                self.rule_seconds[rule_id] = self.rule_seconds.get(rule_id, 0.0) + spent

        rule.check = timed  # type: ignore[method-assign,assignment]

    def _wrap_renderer(self, name: str, renderer: Callable[..., Any]) -> Any:
        @functools.wraps(renderer)
        def timed(results: Any) -> Any:
            start = time.perf_counter()
            try:
                return renderer(results)
            finally:
                self.render_seconds[name] = time.perf_counter() - start

        return timed

    def write(self, exit_code: int | None) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump(self.report(exit_code), handle, indent=2)

    def report(self, exit_code: int | None) -> dict[str, Any]:
        seconds = dict(self.seconds)
        if self.main_started is not None and self.first_stage is not None:
            # Options, config, rules, waivers: what the CLI does before collecting.
            seconds["setup"] = self.first_stage - self.main_started
        return {
            "exit_code": exit_code,
            "seconds": seconds,
            "render_seconds": self.render_seconds,
            "rule_seconds": self.rule_seconds,
            "peak_rss_mb_after": self.peak_rss_mb,
            "servers": self.servers,
            "findings": self.findings,
            "in_process_seconds": time.perf_counter() - _STARTED,
        }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("--stats", required=True, help="where to write the stage timings (JSON)")
    parser.add_argument("pgwarden_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.pgwarden_args
    if argv[:1] == ["--"]:
        argv = argv[1:]
    watch = Stopwatch(args.stats)
    watch.install()
    sys.argv = ["pgwarden", *argv]
    watch.main_started = time.perf_counter()
    code = cli.run()
    watch.write(code)
    return code


if __name__ == "__main__":
    # Ends the way ``pgwarden`` itself does, so its exit is measured too.
    cli.leave(main())
