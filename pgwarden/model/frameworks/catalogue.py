"""The frameworks pgwarden ships, and the control references rules make to them.

Each framework is a TOML file beside this module: its identity (id, name, version)
and the controls pgwarden maps, ids and short titles only. A control may say why it
cannot apply to a managed server (``not_applicable``), or what a person must check
because pgwarden cannot decide it, or decides only part of it (``manual``).

A rule lists the controls it checks as ``Control`` references. A reference to a
shipped framework must name one of its controls (checked when rules register); a
plug-in may also refer to a framework of its own, giving the control's title.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pgwarden.model.sections import SECTIONS

# The shipped frameworks' ids, for rules to refer to.
CIS_AZURE = "cis-azure-3.0.0"
CIS_POSTGRESQL_16 = "cis-postgresql-16-1.0.0"
CIS_POSTGRESQL_17 = "cis-postgresql-17-1.0.0"
AZURE_POLICY = "azure-policy-postgresql"
NIST_800_53 = "nist-800-53-r5"
# The order reports list them in.
SHIPPED = (CIS_AZURE, CIS_POSTGRESQL_16, CIS_POSTGRESQL_17, AZURE_POLICY, NIST_800_53)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class FrameworkControl(_Data):
    """One control of a framework, as the framework's file lists it."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    not_applicable: str | None = Field(
        default=None, description="why it cannot apply to a managed server"
    )
    manual: str | None = Field(
        default=None, description="what a person must check: pgwarden cannot decide it all"
    )
    note: str | None = None


class Framework(_Data):
    """A framework: who publishes it, which version, and the controls pgwarden maps."""

    id: str = Field(min_length=1)
    name: str
    version: str
    short_name: str | None = Field(default=None, description="how reports name it in a line")
    citation: str = Field(
        default="{short} {id}",
        description="how a rule cites one of its controls ({short}, {id} and {title})",
    )
    publisher: str | None = None
    url: str | None = None
    scope: str | None = None
    controls: tuple[FrameworkControl, ...] = Field(default=(), alias="control")

    @property
    def label(self) -> str:
        """The framework in a line: ``CIS PostgreSQL 16 v1.0.0``."""
        return self.short_name or f"{self.name} {self.version}".strip()

    def cite(self, control: FrameworkControl) -> str:
        """One of its controls in a line: ``CIS PostgreSQL 16 v1.0.0 4.2``."""
        return self.citation.format(short=self.label, id=control.id, title=control.title)

    def control(self, control_id: str) -> FrameworkControl | None:
        """The control with this id, or None."""
        return next((c for c in self.controls if c.id == control_id), None)


@dataclass(frozen=True)
class Control:
    """A rule's reference to a control it checks (part of the plugin API).

    ``Control("cis-azure-3.0.0", "5.2.1")`` refers to a shipped framework, whose file
    gives the title. A plug-in's own framework is any other id; ``title`` then says
    what the control is. ``resources`` (globs like ``setting/log_checkpoints``) narrow
    the control to the findings of the rule on those resources, for a rule that checks
    several things of which the control concerns one; errors of the rule count
    whatever their resource (what it could not see may be what the control needs).
    ``sections`` (snapshot sections, like ``azure.configurations``) say what the rule
    must have read on a server for its run there to count for the control: a rule
    that falls back to other data (``pg_settings`` for a server outside Azure) does not
    judge an Azure control there.
    """

    framework: str
    id: str
    title: str | None = None
    resources: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()


class FrameworkDataError(Exception):
    """A shipped framework file is malformed: a packaging bug, not a user error."""


@cache
def shipped_frameworks() -> dict[str, Framework]:
    """The frameworks that ship with pgwarden, by id, in ``SHIPPED`` order."""
    folder = resources.files("pgwarden.model.frameworks")
    frameworks: dict[str, Framework] = {}
    for framework_id in SHIPPED:
        name = f"{framework_id}.toml"
        try:
            data = tomllib.loads(folder.joinpath(name).read_text("utf-8"))
            framework = Framework.model_validate(data)
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
            raise FrameworkDataError(f"framework file {name}: {exc}") from exc
        if framework.id != framework_id:
            raise FrameworkDataError(f"framework file {name} has id {framework.id!r}")
        frameworks[framework_id] = framework
    return frameworks


def frameworks_for(references: Iterable[tuple[str, str, str | None]]) -> list[Framework]:
    """The shipped frameworks, then one per framework only plug-in rules refer to.

    ``references`` are (framework id, control id, title) of the rules' controls; a
    plug-in's framework lists the controls its rules name, by id.
    """
    shipped = shipped_frameworks()
    own: dict[str, dict[str, str]] = {}
    for framework_id, control_id, title in references:
        if framework_id not in shipped:
            own.setdefault(framework_id, {}).setdefault(control_id, title or control_id)
    return [
        *shipped.values(),
        *(
            Framework(
                id=framework_id,
                name=framework_id,
                version="",
                controls=tuple(FrameworkControl(id=i, title=t) for i, t in sorted(c.items())),
            )
            for framework_id, c in sorted(own.items())
        ),
    ]


def control_problem(control: object) -> str | None:
    """Why a rule's control reference is unusable, or None when it is fine."""
    if not isinstance(control, Control):
        return f"{control!r} is not a Control(framework, id)"
    if not isinstance(control.resources, tuple) or not all(
        isinstance(r, str) and r for r in control.resources
    ):
        return f"control {control.id!r}: resources must be a tuple of TYPE/NAME globs"
    if not isinstance(control.sections, tuple) or not all(s in SECTIONS for s in control.sections):
        return f"control {control.id!r}: sections must be a tuple of snapshot sections"
    framework = shipped_frameworks().get(control.framework)
    if framework is None:
        if not control.title:
            return (
                f"control {control.id!r} of framework {control.framework!r} (not one pgwarden "
                "ships) needs a title"
            )
        return None
    if framework.control(control.id) is None:
        return f"{framework.label} has no control {control.id!r} (see 'pgwarden frameworks')"
    return None


def control_title(control: Control) -> str:
    """The control's short title: the shipped framework's, else the reference's own."""
    framework = shipped_frameworks().get(control.framework)
    listed = framework.control(control.id) if framework is not None else None
    return listed.title if listed is not None else control.title or control.id


def framework_label(framework_id: str) -> str:
    """A framework in a line: a shipped one's short name, else its id."""
    framework = shipped_frameworks().get(framework_id)
    return framework.label if framework is not None else framework_id


def control_label(control: Control) -> str:
    """A control as one line of text: ``CIS PostgreSQL 16 v1.0.0 4.2``."""
    framework = shipped_frameworks().get(control.framework)
    listed = framework.control(control.id) if framework is not None else None
    if framework is None or listed is None:
        return f"{control.framework} {control.id}"
    return framework.cite(listed)
