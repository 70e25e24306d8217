"""A model's indented JSON written a piece at a time, byte for byte what pydantic writes.

A snapshot of a big server is tens of megabytes of JSON; made in one call it is held
whole, and the serializer's growing buffer briefly twice over. ``spliced`` writes the
model with one long list left empty, then each item of that list on its own, indented
to where it sits: only one item's JSON is in memory at a time. JSON strings hold no raw
newline, so indenting a piece is putting spaces after each newline in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

Pieces = Callable[[Any], Iterator[bytes]]


def whole(model: BaseModel, indent: int) -> Iterator[bytes]:
    """The model's JSON in one piece."""
    yield model.__pydantic_serializer__.to_json(model, indent=indent)


def spliced(model: BaseModel, path: str, indent: int, item: Pieces) -> Iterator[bytes]:
    """``model``'s JSON with the list at ``path`` (dotted field names) written an item
    at a time, each by ``item`` (as if at the top level; it is indented here)."""
    names = path.split(".")
    owner: Any = model
    for name in names[:-1]:
        owner = getattr(owner, name)
        if owner is None:
            yield from whole(model, indent)
            return
    items = getattr(owner, names[-1])
    if not items:
        yield from whole(model, indent)
        return
    text = whole(_emptied(model, names), indent)
    depth = b" " * (indent * len(names))
    marker = b"\n" + depth + json.dumps(names[-1]).encode("utf-8") + b": []"
    head, found, tail = next(text).partition(marker)
    if not found or marker in tail:
        raise ValueError(f"cannot find the one list {path!r} in the JSON of {type(model).__name__}")
    pad = depth + b" " * indent
    newline = b"\n" + pad
    yield head + marker[:-1]
    for index, value in enumerate(items):
        yield b",\n" + pad if index else newline
        for piece in item(value):
            yield piece.replace(b"\n", newline)
    yield b"\n" + depth + b"]" + tail


def _emptied(model: BaseModel, names: list[str]) -> BaseModel:
    if len(names) == 1:
        return model.model_copy(update={names[0]: ()})
    inner = getattr(model, names[0])
    return model.model_copy(update={names[0]: _emptied(inner, names[1:])})
