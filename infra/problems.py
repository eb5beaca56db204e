"""Problems in the declarations and stack config: one line each, `<file>:<field path>: <how to fix it>`.

Every loader collects all of them and raises DeclarationError once, so a user sees every problem at once
and never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


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


_PYDANTIC_MESSAGES = {
    "missing": "is required; add it",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "string_type": "must be a string (quote it in YAML)",
    "list_type": "must be a list, e.g. [a, b]",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Walk the model along loc (minus the unknown key) to list what is allowed there."""
    from pydantic import BaseModel  # only here: `diff --old/--new` reports problems without pydantic

    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                info = next((f for f in current.model_fields.values() if f.alias == part), None)
            current = info.annotation if info else None
        elif isinstance(part, str) and current is not None and getattr(current, "__origin__", None) is dict:
            current = current.__args__[1]
        else:
            args = [a for a in getattr(current, "__args__", ()) if a is not type(None)]
            current = args[-1] if args else None
            if isinstance(current, type) and issubclass(current, BaseModel):
                info = current.model_fields.get(str(part))
                current = info.annotation if info else current
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    args = [a for a in getattr(current, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
    return [f.alias or name for name, f in args[0].model_fields.items()] if args else []


def pydantic_problems(error: ValidationError, model: type[BaseModel], file: str, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = prefix + ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, loc))
            message = f"unknown key; check the spelling (allowed here: {allowed})"
        else:
            message = _PYDANTIC_MESSAGES.get(item["type"], item["msg"])
            if item["type"] != "missing" and isinstance(item.get("input"), str | int | float | bool):
                message += f"; got {item['input']!r}"
        problems.append(Problem(file, path, message))
    return problems
