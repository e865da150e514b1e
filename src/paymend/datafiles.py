"""Loading YAML data files (config, policies) with errors that name the file and line.

Policies are data that ops edit without a release; a mistake must refuse to load and say
exactly where it is. `load_model` validates with pydantic and maps each error's location
back to the YAML node it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DataFileError(Exception):
    """A data file that cannot be loaded. `str()` is `file:line: what is wrong`."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.message = message


class At(ValueError):
    """Raised by a model validator to blame one field below the model: `loc` is the path
    from the model to it, so the error names that field's line."""

    def __init__(self, loc: Sequence[int | str], message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


# libyaml's parser where PyYAML was built with it (its wheels are), the pure-Python one
# otherwise: the same documents, nodes and marks, the shipped catalogues read several
# times faster at every start
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (first at line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml(path: str | Path, text: str | None = None) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; return the data and its node tree (for line look-ups)."""
    name = str(path)
    try:
        source = Path(path).read_text(encoding="utf-8") if text is None else text
    except OSError as exc:
        raise DataFileError(name, None, f"cannot read: {exc.strerror}") from exc
    loader = _UniqueKeyLoader(source)
    try:  # parsed once: the data is constructed from the node tree it returns
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DataFileError(name, mark.line + 1 if mark else None, str(exc.problem or exc)) from exc
    except yaml.YAMLError as exc:
        raise DataFileError(name, None, str(exc)) from exc
    finally:
        loader.dispose()
    return data, node


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the node at `loc` (or of its nearest existing parent). A part
    the file does not have (a tagged union's tag, a dict key's `[key]`) is passed over."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    child = k if v is None else v
                    line = k.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is not None:
            node = child
    return line


def load_model(model: type[M], path: str | Path, text: str | None = None) -> M:
    """Read `path` and validate it as `model`; raise DataFileError naming the line."""
    data, node = read_yaml(path, text)
    return validate_model(model, data, node, str(path))


def validate_model(model: type[M], data: Any, node: yaml.Node | None, path: str) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = first["msg"]
        blamed = (first.get("ctx") or {}).get("error")
        if isinstance(blamed, At):
            loc = [*loc, *blamed.loc]
            message = blamed.message
        loc = _in_file(data, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # a tagged union (a channel's `type`): blame the tag's own line
            tag = str((first.get("ctx") or {}).get("discriminator", "")).strip("'")
            loc = [*loc, tag]
            field = ".".join(str(p) for p in loc)
            expected = (first.get("ctx") or {}).get("expected_tags", "")
            message = f"must be one of {expected}" if expected else message
        raise DataFileError(path, line_of(node, loc), f"{field}: {message}") from exc


def _in_file(data: Any, loc: Sequence[int | str]) -> list[int | str]:
    """`loc` without the parts the file does not have on the way to the field (a tagged
    union's tag: pydantic names the variant it tried); the field itself is kept, even
    missing. The field as the file's author would name it."""
    kept: list[int | str] = []
    for i, part in enumerate(loc):
        if isinstance(data, dict):
            if part not in data and i < len(loc) - 1:  # the last part may be missing
                continue
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            data = None
        kept.append(part)
    return kept


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `250ms`, `10s`, `5m`, `2h`, `3d`, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 10s, 5m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        unit = next((u for u in ("ms", "s", "m", "h", "d") if text.endswith(u)), None)
        number = text[: -len(unit)] if unit else text
        try:
            seconds = float(number) * (_UNITS[unit] if unit else 1.0)
        except ValueError:
            raise ValueError(f"'{value}' is not a duration such as 10s, 5m or 2h") from None
    else:
        raise ValueError("a duration such as 10s, 5m or 2h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds
