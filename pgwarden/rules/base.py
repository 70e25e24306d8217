"""The rule seam: a small documented class with one ``check`` method.

A rule is a pure function of (server snapshot, server context) to verdicts. It never
opens a connection. Its docstring is its documentation: the first line is the title,
then the rationale; a paragraph starting ``Violation:`` says what fails, one
starting ``Fix:`` says how to mend it. The same text feeds ``pgwarden explain``, the
HTML report and SARIF help. Third-party rules subclass ``Rule`` the same way and
register through the ``pgwarden.rules`` entry-point group (a list of Rule classes).

A rule names the framework controls it checks as ``controls``, a tuple of
``Control(framework, id)`` references (``pgwarden frameworks`` lists the shipped
ones); the older ``frameworks`` tuple of free text is still accepted and shown as it
was. With ``--include-passed`` (``context.include_passed``) a rule also yields a
``Verdict`` with ``status="pass"`` for each resource it checked and found compliant,
with the evidence of that state. A rule whose policy switch is off says so in
``not_applicable``: it is then skipped, with that reason, not counted as a pass.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pgwarden.model.config import SEVERITIES, Policy, Severity
from pgwarden.model.context import ServerContext
from pgwarden.model.errors import PgwardenError
from pgwarden.model.frameworks.catalogue import Control, control_label, control_problem
from pgwarden.model.identifiers import quote_ident, quote_literal
from pgwarden.model.sections import SECTIONS, Section
from pgwarden.model.snapshot import ServerSnapshot

__all__ = [
    "Control",
    "Rule",
    "RuleDefinitionError",
    "Section",
    "ServerContext",
    "Verdict",
    "quote_ident",
    "quote_literal",
]

RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*-[A-Z0-9]+-\d{3}$")


class RuleDefinitionError(PgwardenError):
    """A rule's metadata is invalid; raised once, at registration."""


@dataclass(frozen=True)
class Verdict:
    """What a rule reports about one resource; the engine turns it into a Finding.

    ``fail``: a violation; ``error``: the rule could not see what it needs; ``pass``
    (only when ``context.include_passed``): the resource was checked and is
    compliant, ``evidence`` showing the state that was judged.
    """

    resource: str
    message: str
    principal: str | None = None
    app: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str | None = None
    status: Literal["fail", "error", "pass"] = "fail"


@dataclass(frozen=True)
class RuleDoc:
    """A rule's docstring split into title, rationale, violation and fix."""

    title: str
    rationale: str
    violation: str
    fix: str

    @property
    def description(self) -> str:
        parts = [self.rationale]
        if self.violation:
            parts.append(f"Violation: {self.violation}")
        return "\n\n".join(p for p in parts if p)


def parse_rule_doc(doc: str | None) -> RuleDoc:
    """Split a rule docstring into its parts."""
    text = inspect.cleandoc(doc or "")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not paragraphs:
        return RuleDoc("", "", "", "")
    title = " ".join(paragraphs[0].split())
    rationale: list[str] = []
    violation = fix = ""
    for paragraph in paragraphs[1:]:
        flat = (
            " ".join(paragraph.split()) if not paragraph.lstrip().startswith("```") else paragraph
        )
        if flat.startswith("Violation:"):
            violation = flat.removeprefix("Violation:").strip()
        elif flat.startswith("Fix:"):
            fix = flat.removeprefix("Fix:").strip()
        elif fix:
            fix = f"{fix}\n\n{flat}"
        else:
            rationale.append(flat)
    return RuleDoc(title, "\n\n".join(rationale), violation, fix)


class Rule:
    """Base of every rule. Subclasses set the metadata and implement ``check``."""

    id: ClassVar[str]
    severity: ClassVar[Severity]
    frameworks: ClassVar[tuple[str, ...]] = ()
    controls: ClassVar[tuple[Control, ...]] = ()
    requires: ClassVar[tuple[Section | str, ...]] = (Section.POSTGRES,)
    help_uri: ClassVar[str | None] = None
    # A boolean ``[policy]`` key that turns the rule on: while it is false the rule is
    # skipped with that reason (``not_applicable``), never counted as a pass.
    policy_switch: ClassVar[str | None] = None

    @classmethod
    def doc(cls) -> RuleDoc:
        return parse_rule_doc(cls.__doc__)

    @classmethod
    def title(cls) -> str:
        return cls.doc().title

    @classmethod
    def framework_labels(cls) -> tuple[str, ...]:
        """The free-text ``frameworks`` and each control, as lines of text."""
        labels = (*cls.frameworks, *(control_label(c) for c in cls.controls))
        return tuple(dict.fromkeys(labels))

    @classmethod
    def family(cls) -> str:
        parts = cls.id.split("-")
        return parts[1] if len(parts) == 3 else parts[0]

    @classmethod
    def validate(cls, source: str) -> None:
        """Check the metadata once, at registration; a clear error names the rule."""
        name = f"{source}: rule class {cls.__module__}.{cls.__qualname__}"
        rule_id = getattr(cls, "id", None)
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            raise RuleDefinitionError(f"{name}: id {rule_id!r} is not like PGW-ISO-001")
        if getattr(cls, "severity", None) not in SEVERITIES:
            raise RuleDefinitionError(
                f"{name} ({rule_id}): severity must be one of {', '.join(SEVERITIES)}"
            )
        doc = cls.doc()
        if not doc.title:
            raise RuleDefinitionError(f"{name} ({rule_id}): needs a docstring (its title first)")
        if not doc.fix:
            raise RuleDefinitionError(f"{name} ({rule_id}): its docstring needs a 'Fix:' paragraph")
        unknown = [s for s in cls.requires if s not in SECTIONS]
        if unknown:
            raise RuleDefinitionError(
                f"{name} ({rule_id}): unknown required section(s) {', '.join(unknown)}"
            )
        if not isinstance(cls.frameworks, tuple):
            raise RuleDefinitionError(f"{name} ({rule_id}): frameworks must be a tuple")
        if not isinstance(cls.controls, tuple):
            raise RuleDefinitionError(f"{name} ({rule_id}): controls must be a tuple")
        for control in cls.controls:
            if (problem := control_problem(control)) is not None:
                raise RuleDefinitionError(f"{name} ({rule_id}): controls: {problem}")
        switch = cls.policy_switch
        if switch is not None and switch not in Policy.model_fields:
            raise RuleDefinitionError(
                f"{name} ({rule_id}): policy_switch {switch!r} is not a [policy] key"
            )
        check = getattr(cls, "check", None)
        if check is None or check is Rule.check:
            raise RuleDefinitionError(f"{name} ({rule_id}): does not implement check()")

    def not_applicable(self, context: ServerContext) -> str | None:
        """Why the rule does not apply to this server under its policy, or None.

        A rule that only runs when the policy asks for something (private access,
        geo-redundant backup, ...) returns the reason when it does not: the engine then
        records it as skipped, so no compliance control counts it as a pass. By default:
        the ``policy_switch`` key, when the rule names one and it is false.
        """
        switch = self.policy_switch
        if switch is None or getattr(context.policy, switch):
            return None
        return f"the policy does not ask for it ({switch} = false)"

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        """Judge one server; yield a Verdict per violation (or per blind spot).

        With ``context.include_passed``, also one ``status="pass"`` Verdict per
        resource checked and found compliant.
        """
        raise NotImplementedError
