"""Attribute docstrings in JSON Schemas: the same descriptions pydantic's own option gives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pgwarden.model.attribute_docs import attribute_docstrings, describe_properties


class Inner(BaseModel):
    """What the inner model is."""

    value: int = 0


# The same fields twice, on purpose: read by the hook when a schema is made, and by
# pydantic's own option as the class is created; the two schemas must agree.
class ReadOnDemand(BaseModel):
    model_config = ConfigDict(json_schema_extra=describe_properties)

    plain: int = 1
    """A plain field."""
    explicit: str = Field(default="x", description="its own description")
    """Loses to the explicit one."""
    same_as_target: Inner = Field(default_factory=Inner)
    """What the inner model is."""
    other_than_target: Inner = Field(default_factory=Inner)
    """Another inner model."""
    optional: Inner | None = None
    """What the inner model is."""
    undocumented: bool = False
    required: float
    """A required field,
    on two lines."""


class ReadAtImport(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    plain: int = 1
    """A plain field."""
    explicit: str = Field(default="x", description="its own description")
    """Loses to the explicit one."""
    same_as_target: Inner = Field(default_factory=Inner)
    """What the inner model is."""
    other_than_target: Inner = Field(default_factory=Inner)
    """Another inner model."""
    optional: Inner | None = None
    """What the inner model is."""
    undocumented: bool = False
    required: float
    """A required field,
    on two lines."""


class Extended(ReadOnDemand):
    added: int = 0
    """Declared by the subclass."""


def _without_title(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


def test_the_schema_has_the_descriptions_pydantic_reads_at_import() -> None:
    assert _without_title(ReadOnDemand.model_json_schema()) == _without_title(
        ReadAtImport.model_json_schema()
    )
    assert ReadOnDemand.model_fields["plain"].description is None  # nothing read at import


def test_inherited_fields_keep_the_docstrings_of_the_class_that_declares_them() -> None:
    properties = Extended.model_json_schema()["properties"]
    assert properties["plain"]["description"] == "A plain field."
    assert properties["added"]["description"] == "Declared by the subclass."


def test_only_annotated_attributes_followed_by_a_string_count() -> None:
    assert attribute_docstrings(ReadOnDemand) == {
        "plain": "A plain field.",
        "explicit": "Loses to the explicit one.",
        "same_as_target": "What the inner model is.",
        "other_than_target": "Another inner model.",
        "optional": "What the inner model is.",
        "required": "A required field,\non two lines.",
    }
