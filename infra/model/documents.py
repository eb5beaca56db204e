"""YAML (1.2, as Pulumi reads it) and JSON files -> data, with line-numbered one-line errors."""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.model import rules
from infra.model.problems import DeclarationError, Problem

# PyYAML is imported when a YAML file is read: `diff --old/--new` reads JSON only.
if TYPE_CHECKING:
    import yaml


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """PyYAML keeps the last of two equal keys silently; a duplicated table entry must be an error."""
    import yaml

    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; keep one entry", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


def _refuse_set(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    """A set has no order: taken for a list, clustering columns would come out in any order."""
    import yaml

    raise yaml.constructor.ConstructorError(
        None, None, "a set (!!set) is not allowed; write a list [a, b]", node.start_mark
    )


def _construct_yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)


@functools.cache
def _yaml12_loader() -> type[yaml.SafeLoader]:
    """A loader of YAML 1.2's core schema, which Pulumi reads stack files with: `yes`, `no`, `on`, `off`
    are strings, `010` is ten, and a date stays a string. PyYAML alone implements YAML 1.1."""
    import yaml

    # libyaml's parser when PyYAML was built with it: ten times faster than the pure-Python one.
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
        pass

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    yaml_11_tags = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "null", "timestamp")}
    UniqueKeyLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in yaml_11_tags]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    for tag, pattern, first in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        (
            "float",
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            "-+0123456789.",
        ),
    ):
        UniqueKeyLoader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
    UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_yaml12_int)
    UniqueKeyLoader.add_constructor("tag:yaml.org,2002:set", _refuse_set)
    return UniqueKeyLoader


# Pulumi reads Pulumi.yaml and Pulumi.<stack>.yaml with go-yaml v3 (pulumi/pulumi sdk/go/common/encoding/marshal.go
# yamlMarshaler.Unmarshal), which stops a document whose aliases do most of the decoding (go-yaml/yaml v3
# decode.go decoder.unmarshal, allowedAliasRatio): "document contains excessive aliasing". The same limit here,
# counted on the parser's events: a kilobyte of aliases could otherwise stand for a billion values.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(decodes: int) -> float:
    if decodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if decodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _refuse_excessive_aliasing(text: str, display: str) -> None:
    """Count the values decoding would produce, as go-yaml v3 does, without expanding any alias."""
    import yaml

    sizes: dict[str, int] = {}  # anchor: the values one use of it stands for
    open_collections: list[list[Any]] = []  # [anchor, values so far]
    decodes = aliased = 0
    for event in yaml.parse(text, Loader=_yaml12_loader()):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise DeclarationError(
                    [Problem(display, where, f"invalid YAML: the alias *{event.anchor} is inside its own anchor")]
                )
            if event.anchor not in sizes:
                continue  # the composer names the unknown anchor
            values = 1 + sizes[event.anchor]
            decodes, aliased = decodes + values, aliased + values - 1
            if aliased > 100 and decodes > 1000 and aliased / decodes > _allowed_alias_ratio(decodes):
                raise DeclarationError(
                    [
                        Problem(
                            display,
                            where,
                            f"invalid YAML: the alias *{event.anchor} makes the document expand to more than "
                            f"{decodes:,} values, nearly all of them copies, which Pulumi's YAML reader refuses "
                            "(excessive aliasing); write the values out",
                        )
                    ]
                )
        elif isinstance(event, yaml.ScalarEvent):
            values, decodes = 1, decodes + 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.DocumentStartEvent):
            decodes += 1  # go-yaml decodes the document node too
            continue
        elif isinstance(event, yaml.CollectionStartEvent):
            decodes += 1
            open_collections.append([event.anchor, 1])
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, values = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = values
        else:
            continue
        if open_collections:
            open_collections[-1][1] += values


def cause(exc: OSError) -> str:
    """Why a file or folder could not be used, and what to do about it where that is clear."""
    if exc.errno == errno.ELOOP:
        return "symbolic links that loop (too many levels of symbolic links); fix or remove the link"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; let the user running this read it"
    return exc.strerror or str(exc)


def real_path(path: Path) -> Path:
    """`path` with every link followed (Path.resolve raises RuntimeError on a loop of links)."""
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return Path(os.path.realpath(path))  # missing: said where it is read
    except OSError as exc:
        raise DeclarationError([Problem(display_path(path), "", f"cannot follow the path: {cause(exc)}")]) from None


def list_folder(path: Path, missing_ok: bool = False) -> list[str]:
    """The names in a folder, sorted; DeclarationError naming the cause when it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        if missing_ok and exc.errno == errno.ENOENT:
            return []
        raise DeclarationError([Problem(display_path(path), "", f"cannot list the folder: {cause(exc)}")]) from None


NOT_REGULAR = "not a regular file (a named pipe, socket or device)"


class NotRegularFileError(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EINVAL, NOT_REGULAR)


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor of the regular file at `path`, else NotRegularFileError (or the OSError of the open).
    Non-blocking, so that a named pipe is refused rather than waited on for ever (fifo(7))."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISFIFO(os.stat(path).st_mode):  # opened to write, no reader
            raise NotRegularFileError() from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        # open(2) reads a directory without EISDIR: say what it is, as a write would.
        raise (
            IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)) if stat.S_ISDIR(mode) else NotRegularFileError()
        )
    return fd


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file; OSError (NotRegularFileError for a pipe) otherwise."""
    with os.fdopen(_open_regular(path, os.O_RDONLY), "rb") as file:
        return file.read()


def write_bytes(path: Path, data: bytes) -> None:
    """Replace the content of the regular file at `path` (created if missing); OSError otherwise."""
    with os.fdopen(_open_regular(path, os.O_WRONLY | os.O_CREAT), "wb") as file:
        file.truncate()  # only now: the file is known to be regular
        file.write(data)


def _read_text(path: Path, display: str) -> str:
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except (NotRegularFileError, IsADirectoryError):
        raise DeclarationError([Problem(display, "", f"{NOT_REGULAR}; put the file here")]) from None
    except OSError as exc:
        raise DeclarationError([Problem(display, "", f"cannot read the file: {cause(exc)}")]) from None
    with os.fdopen(fd, encoding="utf-8") as file:  # text as Path.read_text reads it: universal newlines
        try:
            return file.read()
        except OSError as exc:
            raise DeclarationError([Problem(display, "", f"cannot read the file: {cause(exc)}")]) from None
        except UnicodeDecodeError:
            raise DeclarationError([Problem(display, "", "not UTF-8 text; save the file as UTF-8")]) from None


def load_text(path: Path, display: str) -> str:
    """A regular UTF-8 file's text, universal newlines; DeclarationError naming the cause otherwise."""
    return _read_text(path, display)


def load_yaml(path: Path, display: str, raw_scalars_under: str | None = None) -> Any:
    """The document, YAML 1.2. With raw_scalars_under, the plain values of that top-level mapping stay
    the text as written: Pulumi hands a program each stack setting as that text."""
    import yaml

    text = _read_text(path, display)
    try:
        if "*" in text:  # an alias; only then is the document parsed twice
            _refuse_excessive_aliasing(text, display)
        loader = _yaml12_loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if raw_scalars_under is not None:
                _keep_raw_scalars(node, raw_scalars_under)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        # libyaml counts the position in UTF-8 bytes, the pure-Python reader in characters.
        c_loader = issubclass(_yaml12_loader(), getattr(yaml, "CSafeLoader", ()))
        before = text.encode()[: exc.position].decode(errors="ignore") if c_loader else text[: exc.position]
        row, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        raise DeclarationError(
            [
                Problem(
                    display,
                    f"line {row} column {column}",
                    f"invalid YAML: the control character U+{exc.character:04X} is not allowed; remove it",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else ""
        raise DeclarationError([Problem(display, line, f"invalid YAML: {exc.problem}; fix the syntax")]) from None
    except yaml.YAMLError as exc:
        raise DeclarationError([Problem(display, "", f"invalid YAML: {exc}")]) from None


def _keep_raw_scalars(document: yaml.Node, key: str) -> None:
    import yaml

    if not isinstance(document, yaml.MappingNode):
        return
    for key_node, value_node in document.value:
        if key_node.value == key and isinstance(value_node, yaml.MappingNode):
            for _, setting in value_node.value:
                if isinstance(setting, yaml.ScalarNode):
                    setting.tag = "tag:yaml.org,2002:str"


def load_json(path: Path, display: str) -> Any:
    text = _read_text(path, display)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg}; fix the syntax"
        # RFC 8259 7: U+0000 to U+001F must be escaped in a string; json's message does not say which is there.
        if exc.msg.startswith("Invalid control character") and exc.pos < len(exc.doc):
            problem = f"a control character (U+{ord(exc.doc[exc.pos]):04X}) inside a string; remove it"
        raise DeclarationError(
            [Problem(display, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {problem}")]
        ) from None
    except RecursionError:
        raise DeclarationError(
            [
                Problem(
                    display,
                    "",
                    f"nested too deeply to read; BigQuery allows at most {rules.MAX_NESTING_LEVELS} levels of RECORD",
                )
            ]
        ) from None


def display_path(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()
