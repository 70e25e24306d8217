"""Run GitHub Actions steps locally, as the runner would: the action and the example workflow.

``run:`` steps run with bash as GitHub runs them (``bash --noprofile --norc -eo
pipefail``), in order, with ``${{ … }}`` expressions substituted, ``GITHUB_OUTPUT``,
``GITHUB_PATH`` and ``GITHUB_STEP_SUMMARY`` pointed at files (a line added to
``GITHUB_PATH`` reaches the steps after it), and ``if:`` conditions evaluated. A
``uses:`` step of this repository's action (``…/pgwarden@…``) runs the action's own
steps with its ``with:`` as inputs; any other ``uses:`` step is checked for shape
(a pinned action, resolvable inputs) and recorded, not executed.

Only the expressions the files use are understood; anything else fails the test, so a
new expression in the action or the workflow cannot go unexercised.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+(\.\d+)*$")
COMPARISON = re.compile(r"^(.+?)\s*(==|!=)\s*'([^']*)'$")
HASH_FILES = re.compile(r"^hashFiles\((.+)\)$")


@dataclass
class StepRun:
    """One step as it ran (or was recorded): its name, exit code and outputs."""

    name: str
    exit_code: int | None  # None: a uses: step recorded, not run
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)


@dataclass
class Runner:
    """The state of one job: its files, PATH additions and what ran."""

    workspace: Path
    env: dict[str, str]
    temp: Path
    action_path: Path
    # RUNNER_TEMP, when jobs share one (files that outlive a job); else ``temp``.
    runner_temp: Path | None = None
    path_additions: list[str] = field(default_factory=list)
    steps: list[StepRun] = field(default_factory=list)
    failed: bool = False

    @property
    def summary(self) -> Path:
        return self.temp / "step-summary.md"

    def recorded(self, uses_prefix: str) -> list[StepRun]:
        """The ``uses:`` steps recorded whose action starts with ``uses_prefix``."""
        return [s for s in self.steps if s.uses and s.uses.startswith(uses_prefix)]

    def run_steps(
        self,
        steps: list[dict[str, Any]],
        lookup: Callable[[str], str],
        env: Mapping[str, str],
        prefix: str = "",
    ) -> dict[str, dict[str, str]]:
        """Run steps in order; returns the outputs of the steps that have an ``id``.

        ``prefix`` starts the names of the steps recorded (an action's own steps).
        """
        by_id: dict[str, dict[str, str]] = {}

        def resolve(expression: str) -> str:
            parts = expression.split(".")
            if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                return by_id.get(parts[1], {}).get(parts[3], "")
            return lookup(expression)

        for step in steps:
            if not self._condition(step.get("if"), resolve):
                continue
            name = prefix + (step.get("name") or step.get("uses") or step["run"].splitlines()[0])
            own_env = {k: substitute(str(v), resolve) for k, v in step.get("env", {}).items()}
            step_env = {**env, **own_env}
            if "uses" in step:
                ran = self._uses(step, name, resolve, step_env)
            else:
                ran = self._run(step, name, resolve, step_env)
            self.steps.append(ran)
            if "id" in step:
                by_id[step["id"]] = ran.outputs
            if ran.exit_code not in (None, 0):
                self.failed = True
        return by_id

    def _condition(self, condition: str | None, resolve: Callable[[str], str]) -> bool:
        if condition is None:
            return not self.failed
        terms = [term.strip() for term in condition.split("&&")]
        always = "always()" in terms
        if not always and self.failed:
            return False
        return all(self._term(term, resolve) for term in terms if term != "always()")

    def _term(self, term: str, resolve: Callable[[str], str]) -> bool:
        match = COMPARISON.match(term)
        assert match, f"unsupported condition {term!r}"
        left, operator, literal = match.groups()
        hashed = HASH_FILES.match(left)
        if hashed:
            argument = hashed.group(1)
            pattern = argument[1:-1] if argument.startswith("'") else resolve(argument)
            value = "hash" if pattern and any(self.workspace.glob(pattern)) else ""
        else:
            value = resolve(left)
        return (value == literal) == (operator == "==")

    def _uses(
        self,
        step: dict[str, Any],
        name: str,
        resolve: Callable[[str], str],
        env: Mapping[str, str],
    ) -> StepRun:
        uses = str(step["uses"])
        inputs = {k: substitute(str(v), resolve) for k, v in step.get("with", {}).items()}
        if re.match(r"^[\w.-]+/pgwarden@", uses):
            outputs = self.run_action(inputs, env)
            code = 1 if self.failed else 0
            return StepRun(name, code, outputs, uses=uses, with_=inputs)
        assert PINNED_ACTION.match(uses), f"{name}: {uses!r} is not a pinned action"
        return StepRun(name, None, uses=uses, with_=inputs)

    def _run(
        self,
        step: dict[str, Any],
        name: str,
        resolve: Callable[[str], str],
        env: Mapping[str, str],
    ) -> StepRun:
        script = substitute(str(step["run"]), resolve)
        output_file = self.temp / f"output-{len(self.steps)}"
        output_file.write_text("")
        path_file = self.temp / "path"
        path_file.touch()
        full_env = {
            **env,
            "PATH": ":".join([*reversed(self.path_additions), env.get("PATH", "")]),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_PATH": str(path_file),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.runner_temp or self.temp),
        }
        run = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workspace,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.path_additions = [p for p in path_file.read_text().splitlines() if p]
        outputs = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
        return StepRun(name, run.returncode, outputs, stdout=run.stdout, stderr=run.stderr)

    def run_action(self, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        """This repository's action with these inputs; returns the action's outputs."""
        action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
        declared: dict[str, dict[str, Any]] = action["inputs"]
        assert set(inputs) <= set(declared), f"unknown inputs {set(inputs) - set(declared)}"
        values = {name: str(spec.get("default", "")) for name, spec in declared.items()}
        values.update(inputs)

        def lookup(expression: str) -> str:
            if expression.startswith("inputs."):
                return values[expression.removeprefix("inputs.")]
            if expression == "github.action_path":
                return str(self.action_path)
            raise AssertionError(f"unsupported expression in action.yml: {expression}")

        assert action["runs"]["using"] == "composite"
        by_id = self.run_steps(action["runs"]["steps"], lookup, env, prefix="pgwarden: ")

        def output(expression: str) -> str:
            parts = expression.split(".")
            assert parts[0] == "steps" and parts[2] == "outputs", expression
            return by_id.get(parts[1], {}).get(parts[3], "")

        return {
            name: substitute(str(spec["value"]), output) for name, spec in action["outputs"].items()
        }


def substitute(text: str, resolve: Callable[[str], str]) -> str:
    """``text`` with every ``${{ expression }}`` replaced by its value."""
    return EXPRESSION.sub(lambda match: resolve(match.group(1)), text)
