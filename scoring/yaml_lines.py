"""Read a YAML document safely and remember the line of every key, for line-precise errors.

Models and mappings are edited by hand, so the reader refuses, with the line to fix,
whatever would hang or crash a plain `yaml.safe_load`: files too large to be
configuration, bytes that are not UTF-8, alias bombs and recursive aliases, nesting deep
enough to exhaust the stack, tags that name Python objects, values no constructor takes.
One reader serves both the scoring model and the CRM mappings, and so does one formatter
of their schema errors: `validation_problems` turns a pydantic `ValidationError` into
`file:line: key.path[0]: message` problems.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

Path = tuple[str | int, ...]

MAX_BYTES = 1 << 20
"""A model or mapping is a few kilobytes; anything past 1 MiB is the wrong file."""
MAX_DEPTH = 64
"""Shipped files nest 6 levels; the composer recurses, so depth must stay far from the stack."""
MAX_ALIASES = 64
"""The HubSpot mapping reuses one anchor a few times; a bomb needs dozens."""
MAX_VALUES = 100_000
"""Values in the document once every alias is expanded (a bomb expands to billions)."""

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT = "tag:yaml.org,2002:float"


class YamlDocumentError(ValueError):
    """The text is not YAML, or is YAML that a configuration file cannot be."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.problem = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit dates, and with every constructor failure marked."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            # e.g. `!!timestamp 2024-13-45` or `!!float abc`: the constructor's own error
            # carries no line.
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid {_tag_name(node.tag)}: {exc}",
                node.start_mark,
            ) from None  # fmt: skip

    def _refuse_tag(self, node: yaml.Node) -> Any:
        # Python tags and local tags alike: configuration holds no objects.
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"the tag {_tag_name(node.tag)} is not allowed: remove it "
            "(a configuration file holds plain text, numbers, lists and mappings)",
            node.start_mark,
        )


# No field is a date, and PyYAML turns `2024-13-45` into a raw ValueError: dates stay text.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor(None, _Loader._refuse_tag)
# YAML 1.1 reads `1e3` as text; people (and Python's repr) write it as a number.
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def decode(data: bytes, source: str) -> str:
    """The text of a configuration file's bytes: at most 1 MiB of UTF-8 (a BOM is allowed)."""
    if len(data) > MAX_BYTES:
        raise YamlDocumentError(
            source,
            None,
            f"the file is larger than {MAX_BYTES // (1 << 20)} MiB; "
            "a model or mapping is a few kilobytes: is this the right file?",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlDocumentError(
            source,
            line,
            f"byte 0x{data[exc.start]:02x} is not UTF-8: save the file as UTF-8",
        ) from None
    # Editors on Windows start UTF-8 files with a byte-order mark.
    return text.removeprefix("\ufeff")


def load_with_lines(text: str | bytes, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse `text`; return the data and a map from each key path to its 1-based line.

    Raises `YamlDocumentError` with the line for every problem, never anything else.
    """
    if isinstance(text, bytes):
        text = decode(text, source)
    elif len(text) > MAX_BYTES:
        raise YamlDocumentError(source, None, f"the text is longer than {MAX_BYTES} characters")
    try:
        _check_events(text, source)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            lines: dict[Path, int] = {}
            _collect_lines(node, (), lines, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position or 0) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise YamlDocumentError(
            source,
            at,
            f"the character {character!r} (U+{ord(character):04X}) is not allowed in YAML: "
            "delete it",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "flow" in str(exc.context):
            # The parser notices an unclosed bracket lines later; the bracket is the fix.
            mark = exc.context_mark
        raise YamlDocumentError(
            source, mark.line + 1 if mark is not None else None, _explain(exc)
        ) from None
    except yaml.YAMLError as exc:
        raise YamlDocumentError(source, None, str(exc)) from None
    except RecursionError:
        # The event check bounds depth; this is a last guard, never a traceback.
        raise YamlDocumentError(source, None, "the document is nested too deeply") from None
    return data, lines


def _explain(exc: yaml.MarkedYAMLError) -> str:
    problem = str(exc.problem or exc.context or exc)
    if exc.context_mark is not None and "flow" in str(exc.context):
        return f"the [ or {{ on this line is not closed ({problem}): close it"
    if "'\\t'" in problem:
        return f"{problem}: YAML indents with spaces, never tabs; replace the tab with spaces"
    if exc.context and exc.problem and "expected a single document" in exc.context:
        return "more than one document (a second `---`?): a file holds one document"
    return problem


def _check_events(text: str, source: str) -> None:
    """Refuse alias bombs, recursive aliases and deep nesting before anything recurses."""
    aliases = 0
    values = 0
    sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []
    for event in yaml.parse(text, Loader=_Loader):
        line: int | None = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlDocumentError(
                    source,
                    line,
                    f"more than {MAX_ALIASES} aliases (*name): write the values out instead",
                )
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise YamlDocumentError(
                    source,
                    line,
                    f"the alias *{event.anchor} refers to the value that contains it: "
                    "a configuration value cannot contain itself",
                )
            # An undefined alias counts 1 here; the composer reports it with its line.
            values += sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_collections.append((event.anchor, values))
            values += 1
            if len(open_collections) > MAX_DEPTH:
                raise YamlDocumentError(
                    source,
                    line,
                    f"nested more than {MAX_DEPTH} levels deep: a configuration file is flatter",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = values - before
        if values > MAX_VALUES:
            raise YamlDocumentError(
                source,
                line,
                f"the document expands to more than {MAX_VALUES} values "
                "(aliases repeating aliases?): write a smaller file",
            )


def _collect_lines(node: yaml.Node, path: Path, lines: dict[Path, int], source: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                # PyYAML keeps the last value silently; an edited file must not.
                raise YamlDocumentError(
                    source, line, f"duplicate key '{key}' (first at line {seen[key]})"
                )
            seen[key] = line
            _collect_lines(value_node, (*path, key), lines, source)
            # The key's own line is more useful than its value's (block values start below).
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*path, index), lines, source)


def line_for(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


# --- schema errors as file:line problems ---------------------------------------------

DOCUMENT = "(document)"
"""The key path of a problem with the file as a whole."""
SUGGEST_CUTOFF = 0.6


class Problem(NamedTuple):
    """One thing to fix: the line (None: the file as a whole), the dotted key, the message."""

    line: int | None
    key: str
    message: str

    def render(self, source: str) -> str:
        """`file:line: key: message`; without a line, `file: message`."""
        if self.line is None:
            return f"{source}: {self.message}"
        return f"{source}:{self.line}: {self.key}: {self.message}"


class Located(ValueError):
    """A validator's error about one key below the model it validates.

    `raise Located("object is only for kind crm_object", "object")` from a model
    validator points the problem at that model's `object` key, not the model itself.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc: Path = loc


def did_you_mean(name: str, known: Collection[str], cutoff: float = SUGGEST_CUTOFF) -> str:
    """`; did you mean `x`?` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=cutoff)
    return f"; did you mean `{close[0]}`?" if close else ""


def dotted(path: Path) -> str:
    """`fit.rules[0].points`: keys joined by dots, list indexes in brackets."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or DOCUMENT


# Steps pydantic adds to an error's location that the file does not have: the member of a
# union it tried (`str`, `list[str]`, `FitCriterion`, `str-enum[ActivityType]`); besides
# `[key]`, for an error in a mapping's key rather than its value.
_TYPE_STEPS = frozenset(
    {"str", "int", "float", "bool", "bytes", "enum", "none", "list", "dict", "set", "tuple"}
)
# A single value of the wrong type; alternatives of a union are said as one problem.
_SCALAR_WORDS = {
    "string_type": "text",
    "int_type": "a number",
    "int_parsing": "a number",
    "int_from_float": "a number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true/false",
    "bool_parsing": "true/false",
}
# Errors our validators raise: their messages name keys; pydantic's own name none.
_VALIDATOR_KINDS = frozenset({"value_error", "assertion_error"})
_SHORT = 40
"""A value quoted back in a message is at most this long: a longer one is on the line."""


class _Found(NamedTuple):
    path: Path
    kind: str
    message: str
    given: Any
    via_union: bool
    located: bool


def validation_problems(
    exc: ValidationError,
    lines: dict[Path, int],
    keys_at: Callable[[Path], Collection[str]] | None = None,
) -> list[Problem]:
    """The problems of a schema error on data read by `load_with_lines`, in error order.

    Each has the line to edit and the key path as the file spells it: a missing key
    is reported at its parent's line, a bad value at its key's line, and an error about
    a whole section (a model validator) at the line of the first of its keys the message
    names, else the section's own; `Located` errors go to the key they name. An unknown
    key gets `; did you mean ...` from `keys_at(parent)`, the keys allowed there.
    The members of a union fail together and are said once: a value that fits none is
    one problem, and a key that a member misses, or that is missing because it is
    misspelt (an unknown key close to it), is left to the unknown key's problem.
    """
    found: list[_Found] = []
    for error in exc.errors():
        path, via_union = _file_path(tuple(error["loc"]), lines)
        located = (error.get("ctx") or {}).get("error")
        if isinstance(located, Located):
            path += located.loc
        kind = str(error["type"])
        message = str(error["msg"]).removeprefix("Value error, ")
        given = error.get("input")
        if kind == "extra_forbidden" and path:
            known = keys_at(path[:-1]) if keys_at is not None else ()
            message = "unknown key" + did_you_mean(str(path[-1]), known)
        elif kind != "missing":
            message += _got(given, message)
        found.append(_Found(path, kind, message, given, via_union, isinstance(located, Located)))

    unknown: dict[Path, list[str]] = {}
    at: dict[Path, list[_Found]] = {}
    for item in found:
        if item.kind == "extra_forbidden":
            unknown.setdefault(item.path[:-1], []).append(str(item.path[-1]))
        at.setdefault(item.path, []).append(item)
    problems: list[Problem] = []
    seen: set[tuple[Path, str]] = set()
    for item in found:
        path, kind, message = item.path, item.kind, item.message
        if kind == "missing" and path[:-1] in unknown:
            misspelt = difflib.get_close_matches(
                str(path[-1]), unknown[path[:-1]], n=1, cutoff=SUGGEST_CUTOFF
            )
            if item.via_union or misspelt:
                continue
        members = [other for other in at[path] if other.via_union] if item.via_union else []
        if kind == "list_type" and any(other.kind != kind for other in members):
            # `str | list[str]` given a number: the single value is what was meant.
            continue
        scalar = [other for other in members if other.kind in _SCALAR_WORDS]
        if kind in _SCALAR_WORDS and len({other.kind for other in scalar}) > 1:
            message = _one_of(scalar, item.given)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        # A validator's error about a whole section is about the first of its keys it
        # names, unless the validator said where (`Located`).
        named = kind in _VALIDATOR_KINDS and not item.located
        problems.append(Problem(_line(lines, path, message, named), dotted(path), message))
    return problems


def _file_path(loc: tuple[Any, ...], lines: dict[Path, int]) -> tuple[Path, bool]:
    """The location as a path in the file, and whether it went through a union member."""
    path: Path = ()
    via_union = False
    for part in loc:
        if isinstance(part, str) and (*path, part) not in lines:
            if part == "[key]":
                continue
            if "[" in part or part in _TYPE_STEPS or part[:1].isupper():
                # A model in a union goes by its class name; keys are never CamelCase
                # unless the file has them (a Salesforce `Task:`), and then they are kept.
                via_union = True
                continue
        path = (*path, part)
    return path, via_union


def _got(given: Any, message: str) -> str:
    short = isinstance(given, str | int | float) and len(repr(given)) <= _SHORT
    return f" (got {given!r})" if short and repr(given) not in message else ""


def _one_of(scalar: list[_Found], given: Any) -> str:
    """One message for a value that no scalar member of a union takes."""
    if isinstance(given, list | dict):
        words = list(dict.fromkeys(_SCALAR_WORDS[item.kind] for item in scalar))
        return "Input should be a single value: " + _or(words)
    # "Input should be a valid boolean, unable to interpret input" -> "a valid boolean"
    wanted = [
        item.message.removeprefix("Input should be ").split(" (got ")[0].split(", ")[0]
        for item in scalar
    ]
    return "Input should be " + _or(list(dict.fromkeys(wanted))) + _got(given, "")


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _line(lines: dict[Path, int], path: Path, message: str, named: bool) -> int | None:
    """The line of `path` or its nearest ancestor; if `named`, of the first key below it
    that `message` names, if any."""
    for end in range(len(path), -1, -1):
        base = path[:end]
        if base in lines:
            break
    else:
        return None
    if named:
        # "max_points has no meaning on an at_least rule": the max_points line is the one
        # to edit.
        keys: list[tuple[int, int]] = []
        for key_path, line in lines.items():
            key = key_path[-1] if len(key_path) == len(base) + 1 else None
            if (
                isinstance(key, str)
                and key_path[:-1] == base
                and (found := re.search(rf"\b{re.escape(key)}\b", message))
            ):
                keys.append((found.start(), line))
        if keys:
            return min(keys)[1]
    return lines[base]
