"""Attribute docstrings of models, read from their source when a JSON Schema is made."""

from __future__ import annotations

import ast
import inspect
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def describe_properties(schema: dict[str, Any], model: type[Any]) -> None:
    """A ``json_schema_extra`` hook: each property gets its attribute's docstring.

    The description pydantic's ``use_attribute_docstrings`` would give the field, for
    the fields that have no ``description`` of their own. That option reads the source
    of every class as it is created, a good part of the time ``pgwarden`` takes to
    start; only the JSON Schema shows the docstrings, so they are read when one is made.
    """
    if not issubclass(model, BaseModel):
        return
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        prop = properties.get(field.alias or name)
        if prop is None or "description" in prop:
            continue
        owner = next(c for c in model.__mro__ if name in inspect.get_annotations(c))
        doc = attribute_docstrings(owner).get(name)
        # As pydantic does, a "$ref" keeps no sibling key that its target already says.
        if doc is not None and not ("$ref" in prop and doc == _class_description(field.annotation)):
            prop["description"] = doc


def _class_description(annotation: object) -> str | None:
    doc = getattr(annotation, "__doc__", None) if isinstance(annotation, type) else None
    return inspect.cleandoc(doc) if doc else None


@cache
def attribute_docstrings(cls: type[Any]) -> dict[str, str]:
    """The docstrings under the annotated attributes of a class's own body, by name.

    As pydantic reads them: a string statement right after ``name: type [= value]``.
    """
    node = _class_node(cls)
    if node is None:
        return {}
    found: dict[str, str] = {}
    for statement, following in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def _class_node(cls: type[Any]) -> ast.ClassDef | None:
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if path is None:
        return None
    body: list[ast.stmt] = _module_tree(path).body
    node: ast.ClassDef | None = None
    for part in cls.__qualname__.split("."):
        node = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


@cache
def _module_tree(path: str) -> ast.Module:
    return ast.parse(Path(path).read_text(encoding="utf-8"))
