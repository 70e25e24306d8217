"""The base of every boundary model: immutable, strict about unknown fields, lean."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

# One shared set per combination of explicitly set fields (see Frozen.model_post_init).
_FIELDS_SET: dict[frozenset[str], set[str]] = {}


class Frozen(BaseModel):
    """Base of every boundary model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        # Pydantic gives every instance its own set of the fields that were set (about
        # 700 bytes, more than the rest of a small record): a big snapshot holds tens of
        # thousands of instances, and a results document one per finding. A frozen
        # instance never changes that set (model_copy copies it), so instances with the
        # same fields set share one. (The records a snapshot holds by the hundred
        # thousand, grants, roles and memberships, are slotted dataclasses instead.)
        fields_set = self.__pydantic_fields_set__
        shared = _FIELDS_SET.setdefault(frozenset(fields_set), fields_set)
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        # Pydantic's copy gets a set of its own, with the updated fields added: shared
        # again here, or a results document whose findings a baseline, the waivers or
        # the history marked would hold one set per finding (11 MB at 16,000 findings).
        copied = super().model_copy(update=update, deep=deep)
        copied.model_post_init(None)
        return copied
