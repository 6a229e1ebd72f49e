"""Reading YAML a user wrote (``meta.yaml``, ``--set`` values) without trusting it.

``yaml.safe_load`` already refuses tags that build Python objects. What it lets through is
structure: aliases that share one list a billion times over (harmless until something walks or
prints it), and nesting deep enough to exhaust the recursion limit while parsing. :func:`load_yaml`
refuses both, and turns every failure into one :class:`YamlInputError` whose message is one line.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 100_000
"""The most values a document may expand to, aliases counted at every use."""


class YamlInputError(ValueError):
    """A YAML text that cannot be used; the message is one line, without the text's location."""


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, refusing syntax errors, Python tags, deep nesting and alias bombs."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise YamlInputError(describe_yaml_error(error)) from error
    except RecursionError:
        raise YamlInputError("it is nested too deeply to read (lists or mappings inside one another)") from None
    if expanded_size(value, MAX_NODES) > MAX_NODES:
        raise YamlInputError(f"it expands to more than {MAX_NODES:,} values (aliases repeating aliases?)")
    return value


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """``"expected ',' or ']' ... at line 2, column 1"`` (1-based), or the error's first line."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem is None:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(error, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def expanded_size(value: Any, limit: int) -> int:
    """How many values ``value`` holds when every shared (aliased) part is counted at each use;
    counting stops a little past ``limit``, so a bomb costs at most ``limit`` steps."""
    count, stack = 0, [value]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set):
            stack.extend(node)
    return count
