"""Read a YAML document safely and remember the line of every key, for line-precise errors.

Models and mappings are edited by hand, so the reader refuses, with the line to fix,
whatever would hang or crash a plain `yaml.safe_load`: files too large to be
configuration, bytes that are not UTF-8, alias bombs and recursive aliases, nesting deep
enough to exhaust the stack, tags that name Python objects, values no constructor takes.
One reader serves both the scoring model and the CRM mappings.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

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
