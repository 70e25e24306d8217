"""``cached_property`` without the lock Python 3.11's takes on every first read.

``functools.cached_property`` on Python 3.11 takes one lock per property, shared by
every instance of the class, each time an instance computes its value. The analysis
makes an ``Access`` (and reads its cached parts once) for every way into every object
of every finding: on a server of 16,000 findings that lock was 4 % of evaluation.
Python 3.12 dropped the lock (its documentation: it serialised unrelated instances and
did not make the computation thread-safe either); this is 3.12's behaviour. The
analysis runs on one thread, and a value computed twice by two threads would be the
same value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_property(Generic[T]):
    """Compute the value on the first read and keep it in the instance's ``__dict__``.

    A non-data descriptor: once the value is stored, the instance attribute shadows it
    and later reads never call back here.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.attrname = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached_property[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.attrname] = value
        return value
