"""The base of the value classes on the check path, in place of `@dataclass`.

A pre-commit hook runs `dropout-audit check one.yaml` on every commit, and `@dataclass`
was a fifth of that run: importing `dataclasses` brings inspect, ast, dis and tokenize
(about 10 ms), and each decorated class then generates and compiles its `__init__`,
`__repr__` and `__eq__` at import (about 0.5 ms a class, twice the class with slots=True;
docs/performance.md). The classes now write `__slots__` and `__init__` themselves, which
cost nothing at import, and inherit from here what the decorator gave them: equality by
field values (the fields are `__slots__`, in order), a repr, pickling and, for frozen ones,
immutability and a hash.
"""

from __future__ import annotations


def _rebuild(cls, values):
    obj = cls.__new__(cls)
    for name, value in zip(cls.__slots__, values):
        object.__setattr__(obj, name, value)
    return obj


class Record:
    """Equality and repr over `__slots__`, as a dataclass compares its fields."""

    __slots__ = ()
    __hash__ = None  # mutable, like a non-frozen dataclass

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({inner})"

    def replace(self, **changes):
        """A copy with some fields changed, as `dataclasses.replace`."""
        return type(self)(**{**dict(zip(self.__slots__, self._values())), **changes})

    def __reduce__(self):
        return _rebuild, (self.__class__, self._values())


class FrozenRecord(Record):
    """A Record whose fields cannot change after `__init__` (which sets them with
    `object.__setattr__`), hashable by its values, as `@dataclass(frozen=True)`."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __hash__(self) -> int:
        return hash(self._values())
