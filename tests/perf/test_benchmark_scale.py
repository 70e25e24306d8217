"""``python -m benchmarks --scale K`` and ``--tables N``: the shapes at another size,
judged fairly.

A shape at another scale keeps what makes it that shape (each app's databases and
roles, the shares of strays and open databases), only their number changes; with
``--tables`` only its databases' tables do. The targets set for the issue's size (peak
RSS, the results' size) are printed there, not judged, while those that do not depend
on the size (against the floor, evaluation's share, statements per database) still are.
A bad value of these options, or of ``--network``, ``--jobs``, ``--repeat``,
``--scan-timeout`` and ``--findings``, is one line before anything is built.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from benchmarks.__main__ import main
from benchmarks.measure import Floor, ProcessRun, Scan
from benchmarks.run import FULL_SIZE, RunReport, ShapeRun
from benchmarks.scenario import Plan
from benchmarks.shapes import SHAPES, Shape, scaled, with_tables
from benchmarks.tables import verdicts


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_a_scaled_shape_keeps_each_apps_databases_and_roles(shape: Shape) -> None:
    size, double = FULL_SIZE, FULL_SIZE.scaled(2)
    assert (double.databases, double.roles) == (2 * size.databases, 2 * size.roles)
    plan, bigger = shape.plan, scaled(shape, 2).plan
    assert bigger.apps == 2 * plan.apps

    def per_app(p: Plan, databases: int) -> Counter[int]:
        return Counter(Counter(db.app for db in p.databases(databases)).values())

    # The same number of apps with each number of databases, twice over.
    once = per_app(plan, size.databases)
    assert per_app(bigger, double.databases) == Counter({n: 2 * k for n, k in once.items()})
    # As many roles per app, and as large a share of logins (strays among them).
    roles, more = plan.roles(size.roles), bigger.roles(double.roles)
    assert sum(r.app is not None for r in more) / bigger.apps == pytest.approx(
        sum(r.app is not None for r in roles) / plan.apps, rel=0.01
    )
    assert sum(r.login for r in more) / len(more) == pytest.approx(
        sum(r.login for r in roles) / len(roles), rel=0.02
    )


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_more_tables_change_nothing_else_of_a_shape(shape: Shape) -> None:
    wider = with_tables(shape, 200).plan
    assert wider.tables == 200
    assert replace(wider, tables=shape.plan.tables) == shape.plan


def _report(scale: float, peak_mb: float, json_mb: float, tables: int | None = None) -> RunReport:
    run = ProcessRun(["pgwarden"], 10.0, 5.0, peak_mb, 1, False, "", "")
    scan = Scan(run, {"seconds": {"evaluate": 0.5, "render": 0.1}}, int(json_mb * 1e6))
    floor = Floor(wall=5.0, loop=4.8, cpu=1.0, connections=2_001)
    size = FULL_SIZE.scaled(scale)
    shape = ShapeRun("apps", "", "scram", size, 1.0, floor, scan, [2.0])
    machine = {"scale": scale, "size": size.label, "tables": tables}
    return RunReport(machine=machine, runs=[shape])


def _by_target(report: RunReport) -> dict[str, bool | None]:
    return {v.target.split(": ", 1)[1]: v.met for v in verdicts(report) if "apps" in v.target}


def test_size_targets_are_judged_only_at_the_issues_size() -> None:
    at_one = _by_target(_report(1, peak_mb=350, json_mb=40))
    assert at_one["peak RSS ≤ 200 MB"] is False
    assert at_one["results JSON ≤ 20 MB"] is False
    doubled = _by_target(_report(2, peak_mb=350, json_mb=40))
    assert doubled["peak RSS ≤ 200 MB"] is None
    assert doubled["results JSON ≤ 20 MB"] is None
    # Against the floor and evaluation's share: judged at any size.
    assert doubled["scan ≤ 1.3x the floor"] is False
    assert doubled["evaluation + rendering ≤ 15% of the scan"] is True
    wider = _by_target(_report(1, peak_mb=350, json_mb=40, tables=200))
    assert wider["peak RSS ≤ 200 MB"] is None
    assert wider["results JSON ≤ 20 MB"] is None
    assert wider["scan ≤ 1.3x the floor"] is False
    as_issued = _by_target(_report(1, peak_mb=350, json_mb=40, tables=Plan().tables))
    assert as_issued["peak RSS ≤ 200 MB"] is False


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--quick", "--scale", "2"], "leave out --quick"),
        (["--scale", "20"], "outside 0.1 to 10"),
        (["--scale", "two"], "not a number"),
        (["--tables", "0"], "outside 1 to 2,000"),
        (["--tables", "many"], "not a whole number"),
        (["--network", "-1"], "outside 0 to 200"),
        (["--network", "far"], "not a number"),
        (["--jobs", "0"], "outside 1 to 64"),
        (["--jobs", "four"], "not a whole number"),
        (["--repeat", "0"], "outside 1 to 20"),
        (["--scan-timeout", "0"], "outside 1 to 3,600"),
        (["--findings", "-5"], "-5 is outside 1 to 1,000,000"),
    ],
)
def test_a_bad_option_is_one_line_and_builds_nothing(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    assert said in capsys.readouterr().err
