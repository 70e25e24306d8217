"""The shapes of shared server the benchmark measures, each at the same size.

A scanner tuned on one shape can be quadratic on the next: the figures are only worth
something across shapes nobody tuned for. Each shape is a ``Plan`` of the synthetic
server (``benchmarks.scenario``); all are built at the same number of databases and
roles, and each is measured with SCRAM and with ``trust`` authentication.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmarks.scenario import Plan


@dataclass(frozen=True)
class Shape:
    """One shape of server: a name for the tables, what it is, and its plan."""

    name: str
    description: str
    plan: Plan


SHAPES = (
    Shape(
        "apps",
        "100 apps of 10 databases; roles in teams two deep; few strays",
        Plan(seed=7, apps=100, tables=25),
    ),
    Shape(
        "single-db apps",
        "1,000 apps of one database each",
        Plan(seed=7, apps=1_000, tables=25),
    ),
    Shape(
        "unmapped logins",
        "1,000 apps of one database; every role beyond the apps' own four is a login of "
        "no app (six in ten roles; half of them still in an app's team); half the "
        "databases let PUBLIC connect",
        Plan(seed=7, apps=1_000, tables=25, unmapped_share=1.0, public_connect_share=0.5),
    ),
    Shape(
        "deep chains",
        "100 apps of 10 databases; teams nested twelve deep (user → 12 teams → group)",
        Plan(seed=7, apps=100, tables=25, team_every=4, chain_depth=12),
    ),
)

# The quick run's shapes: the same designs with fewer apps, so each still has several
# roles and databases per app at its small size.
QUICK_APPS = {"apps": 10, "single-db apps": 50, "unmapped logins": 50, "deep chains": 10}


def quick(shape: Shape) -> Shape:
    """``shape`` sized for ``--quick``."""
    return replace(shape, plan=replace(shape.plan, apps=QUICK_APPS.get(shape.name, 10)))


def scaled(shape: Shape, scale: float) -> Shape:
    """``shape`` at ``scale`` times its size (``--scale``): as many times the apps as the
    databases and roles, so that each app keeps its databases and roles and only their
    number changes."""
    return replace(shape, plan=replace(shape.plan, apps=max(1, round(shape.plan.apps * scale))))


def long_named(shape: Shape) -> Shape:
    """``shape`` with its apps, databases and roles, and its logins of no app, named near
    PostgreSQL's 63 bytes and quoted (``--long-names``; ``Plan.long_names``): the same
    server otherwise, so that what grows with the names shows."""
    return replace(shape, plan=replace(shape.plan, long_names=True))


def with_tables(shape: Shape, tables: int) -> Shape:
    """``shape`` with ``tables`` tables in each app database (``--tables``): the same
    server otherwise, so that what grows with the objects and their grants shows."""
    return replace(shape, plan=replace(shape.plan, tables=tables))
