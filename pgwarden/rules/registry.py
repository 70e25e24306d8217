"""Where rules come from: the ``pgwarden.rules`` entry-point group and ``--rules-dir``.

Built-in rules register through the same entry-point group as third-party packages,
so the plugin path runs on every scan. An entry point names an iterable of Rule
classes (conventionally a module's ``RULES`` list). A ``--rules-dir`` module exposes
the same ``RULES`` list.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution, entry_points
from pathlib import Path

from pgwarden.model.errors import UsageError
from pgwarden.rules.base import Rule, RuleDefinitionError

ENTRY_POINT_GROUP = "pgwarden.rules"
# The source of the rules pgwarden's own distribution registers.
BUILT_IN = "built-in"


@dataclass(frozen=True)
class RegisteredRule:
    """A rule class and where it came from (``built-in``, a distribution, or a file)."""

    rule: type[Rule]
    source: str


def _accept(found: object, source: str) -> list[type[Rule]]:
    if isinstance(found, type):
        found = [found]
    if not isinstance(found, Iterable):
        raise RuleDefinitionError(f"{source}: must provide a list of Rule classes (RULES)")
    rules: list[type[Rule]] = []
    for item in found:
        if not (isinstance(item, type) and issubclass(item, Rule)):
            raise RuleDefinitionError(f"{source}: {item!r} is not a Rule subclass")
        item.validate(source)
        rules.append(item)
    return rules


def _from_entry_points() -> list[RegisteredRule]:
    registered: list[RegisteredRule] = []
    names: dict[Distribution, str] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        if point.dist is not None and point.dist not in names:
            # Each ask parses the distribution's whole METADATA (its README too): once
            # per distribution, not once per entry point.
            names[point.dist] = point.dist.name
        dist = names[point.dist] if point.dist is not None else "unknown"
        source = BUILT_IN if dist == "pgwarden" else f"{dist} ({point.name})"
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must not look like a clean scan
            raise RuleDefinitionError(
                f"rule plugin {point.name} ({point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        registered.extend(RegisteredRule(rule, source) for rule in _accept(loaded, source))
    return registered


def _from_directory(directory: Path) -> list[RegisteredRule]:
    if not directory.is_dir():
        raise UsageError(f"--rules-dir {directory}: not a directory")
    registered: list[RegisteredRule] = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"pgwarden_local_rules.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise RuleDefinitionError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise RuleDefinitionError(
                f"{path}: failed to load: {type(exc).__name__}: {exc}"
            ) from None
        found = getattr(module, "RULES", None)
        if found is None:
            raise RuleDefinitionError(f"{path}: defines no RULES list")
        registered.extend(RegisteredRule(rule, str(path)) for rule in _accept(found, str(path)))
    return registered


def load_rules(rules_dirs: Sequence[Path] = ()) -> list[RegisteredRule]:
    """Every rule: built-in and plug-in (entry points), then ``--rules-dir`` modules."""
    registered = _from_entry_points()
    for directory in rules_dirs:
        registered.extend(_from_directory(directory))
    if not registered:
        raise RuleDefinitionError(
            "no rules are registered: is pgwarden installed (pip install pgwarden)?"
        )
    seen: dict[str, str] = {}
    for entry in registered:
        if entry.rule.id in seen:
            raise RuleDefinitionError(
                f"rule id {entry.rule.id} is defined twice "
                f"({seen[entry.rule.id]} and {entry.source})"
            )
        seen[entry.rule.id] = entry.source
    return sorted(registered, key=lambda entry: entry.rule.id)


def select_rules(
    registered: Sequence[RegisteredRule],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[RegisteredRule]:
    """Keep rules whose id matches an ``include`` glob (all when none) and no ``exclude``."""

    def matches(rule_id: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(rule_id, p.upper()) for p in patterns)

    for pattern in (*include, *exclude):
        if not any(fnmatch.fnmatchcase(e.rule.id, pattern.upper()) for e in registered):
            raise UsageError(f"rule pattern {pattern!r} matches no rule (see 'pgwarden rules')")
    return [
        e
        for e in registered
        if (not include or matches(e.rule.id, include)) and not matches(e.rule.id, exclude)
    ]


def find_rule(registered: Sequence[RegisteredRule], rule_id: str) -> RegisteredRule:
    for entry in registered:
        if entry.rule.id == rule_id.upper():
            return entry
    raise UsageError(f"no rule {rule_id!r} (see 'pgwarden rules')")
