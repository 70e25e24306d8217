"""The analysis's ``cached_property``: computed once per instance, then a plain attribute."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.access.cached import cached_property


@dataclass(frozen=True)
class _Counted:
    name: str
    calls: list[str]

    @cached_property
    def shout(self) -> str:
        """The name, loud."""
        self.calls.append(self.name)
        return self.name.upper()


def test_computed_once_per_instance_even_when_frozen() -> None:
    calls: list[str] = []
    first, second = _Counted("a", calls), _Counted("b", calls)
    assert (first.shout, first.shout, second.shout, first.shout) == ("A", "A", "B", "A")
    assert calls == ["a", "b"]
    # Stored on the instance, under the property's name: later reads skip the descriptor.
    assert vars(first)["shout"] == "A"


def test_read_on_the_class_is_the_descriptor() -> None:
    descriptor = _Counted.__dict__["shout"]
    assert _Counted.shout is descriptor
    assert descriptor.__doc__ == "The name, loud."
    assert descriptor.attrname == "shout"
