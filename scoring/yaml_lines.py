"""Read a YAML document and remember the line of every key, for line-precise errors."""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlDocumentError(ValueError):
    """The text is not YAML, or is YAML that a model file cannot be (duplicate keys)."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


def load_with_lines(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse `text`; return the data and a map from each key path to its 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise YamlDocumentError(source, line, str(exc.problem or exc)) from None
    except yaml.YAMLError as exc:
        raise YamlDocumentError(source, None, str(exc)) from None
    if node is None:
        return None, {}
    lines: dict[Path, int] = {}
    _collect_lines(node, (), lines, source)
    data = yaml.safe_load(text)
    return data, lines


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
