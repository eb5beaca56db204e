"""Problems in the declarations and stack config: one line each, `<file>:<field path>: <how to fix it>`.

Every loader collects all of them and raises DeclarationError once, so a user sees every problem at once
and never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import UnionType
from typing import TYPE_CHECKING, Any, get_args, get_origin

if TYPE_CHECKING:
    import msgspec


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class DeclarationError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingStackError(DeclarationError):
    """No Pulumi.<stack>.yaml: a usage error (exit 2) wherever a command names a stack."""


_EXPECTED = {
    int: "must be a whole number",
    float: "must be a number",
    bool: "must be true or false",
    str: "must be a string (quote it in YAML)",
    list: "must be a list, e.g. [a, b]",
    dict: "must be a mapping of keys to values",
}


def struct_problems(value: Any, struct: type[msgspec.Struct], file: str, prefix: str = "") -> list[Problem]:
    """Every problem of `value` as `struct`: msgspec stops at the first, and a user should see them all.

    Only called once msgspec.convert has refused the value; the YAML loader refuses what msgspec would
    quietly convert (a set into a list).
    """
    problems = [Problem(file, prefix + path, message) for path, message in _walk(value, struct, "")]
    return problems or [Problem(file, prefix.rstrip(".:"), "invalid; check it against the README")]


def _walk(value: Any, expected: Any, path: str) -> Iterator[tuple[str, str]]:
    import msgspec  # only once a document was refused: `diff --old/--new` reports problems without it

    origin, args = get_origin(expected), get_args(expected)
    if isinstance(expected, UnionType):  # X | None, or X | UnsetType (a key that may be left out, never null)
        if value is not None or type(None) not in args:
            yield from _walk(value, next(a for a in args if a not in (type(None), msgspec.UnsetType)), path)
        return
    if isinstance(expected, type) and issubclass(expected, msgspec.Struct):
        if not isinstance(value, dict):
            yield path, _wrong(dict, value)
            return
        fields = msgspec.structs.fields(expected)
        for field in fields:
            if field.encode_name in value:
                yield from _walk(value[field.encode_name], field.type, _join(path, field.encode_name))
            elif field.required:
                yield _join(path, field.encode_name), "is required; add it"
        allowed = ", ".join(f.encode_name for f in fields)
        for key in value:
            if key not in {f.encode_name for f in fields}:
                yield _join(path, str(key)), f"unknown key; check the spelling (allowed here: {allowed})"
    elif origin is dict:
        if not isinstance(value, dict):
            yield path, _wrong(dict, value)
            return
        for key, item in value.items():
            if not isinstance(key, str):
                yield _join(path, str(key)), f"a key must be a string (quote it in YAML); got {key!r}"
            yield from _walk(item, args[1], _join(path, str(key)))
    elif origin is list:
        if not isinstance(value, list):
            yield path, _wrong(list, value)
            return
        for index, item in enumerate(value):
            yield from _walk(item, args[0], _join(path, str(index)))
    elif type(value) is not expected and (expected, type(value)) != (float, int):
        # bool is no int, and a whole float is no int either (strict); an int is a float
        yield path, _wrong(expected, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _wrong(expected: type, value: Any) -> str:
    got = f"; got {value!r}" if isinstance(value, str | int | float | bool) else ""
    return _EXPECTED[expected] + got
