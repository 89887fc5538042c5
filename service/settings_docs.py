"""The settings table of docs/configuration.md, generated from `service.settings.Settings`.

    python -m service.settings_docs            # print the table
    python -m service.settings_docs --write    # rewrite it in docs/configuration.md (make docs)
    python -m service.settings_docs --check    # exit 1 when docs/configuration.md is out of date

The table lists every field in declaration order: its environment variable, its type (with
its bounds), its default and its description. tests/system/test_settings_docs.py fails when the
table in docs/configuration.md differs from this one.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from nlp.paths import source_root
from service.settings import Settings

# A development tool: the doc lives in the source checkout (docs/ is not installed); run
# elsewhere, it looks in the working directory.
SOURCE_ROOT = source_root()
CONFIGURATION_DOC = (SOURCE_ROOT or Path()) / "docs" / "configuration.md"
START_MARKER = "<!-- settings-table:start -->"
END_MARKER = "<!-- settings-table:end -->"

_TYPE_NAMES: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    Path: "path",
    SecretStr: "secret",
}


def env_var(name: str) -> str:
    """The environment variable that sets field `name`."""
    prefix = Settings.model_config.get("env_prefix") or ""
    return f"{prefix}{name}".upper()


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if annotation in _TYPE_NAMES:
        return _TYPE_NAMES[annotation]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _number(value: Any) -> str:
    if isinstance(value, float):
        short = format(value, "g")
        return short if float(short) == value else repr(value)
    return str(value)


def _bounds(field: FieldInfo) -> list[str]:
    bounds: list[str] = []
    for item in field.metadata:
        if isinstance(item, Ge):
            bounds.append(f"≥ {_number(item.ge)}")
        elif isinstance(item, Gt):
            bounds.append(f"> {_number(item.gt)}")
        elif isinstance(item, Le):
            bounds.append(f"≤ {_number(item.le)}")
        elif isinstance(item, Lt):
            bounds.append(f"< {_number(item.lt)}")
        elif isinstance(item, MinLen):
            bounds.append(f"length ≥ {item.min_length}")
        elif isinstance(item, MaxLen):
            bounds.append(f"length ≤ {item.max_length}")
    return bounds


def _type_cell(field: FieldInfo) -> str:
    """E.g. `int (≥ 1)`, `path, optional`: an optional field may be left unset (None)."""
    annotation = field.annotation
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        optional = type(None) in args
        rest = [arg for arg in args if arg is not type(None)]
        annotation = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007 - built at run time
    text = _type_name(annotation)
    bounds = _bounds(field)
    if bounds:
        text += f" ({', '.join(bounds)})"
    return f"{text}, optional" if optional else text


def _default_cell(field: FieldInfo) -> str:
    if field.default_factory is not None:
        # Say what a factory computes only where that can be read off it; never its value
        # on this machine, which would make the table differ from one machine to the next.
        code = getattr(field.default_factory, "__code__", None)
        if code is not None and "cpu_count" in code.co_names:
            return "number of CPUs"
        return "computed"
    default = field.default
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "unset"
    if isinstance(default, SecretStr):
        return ""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, Path):
        if SOURCE_ROOT is not None and default.is_relative_to(SOURCE_ROOT):
            default = default.relative_to(SOURCE_ROOT)  # never this machine's checkout path
        return f"`{default.as_posix()}`"
    if isinstance(default, (int, float)):
        return _number(default)
    if isinstance(default, str):
        return f"`{default}`" if default else '`""`'
    if isinstance(default, (list, tuple, set, frozenset)):
        return ", ".join(f"`{item}`" for item in default) or "empty"
    return f"`{default}`"


def _cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return " ".join(text.split()).replace("|", "\\|")


def settings_table() -> str:
    """A Markdown table of every `Settings` field, in declaration order."""
    lines = [
        "| environment variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        cells = [f"`{env_var(name)}`", _type_cell(field), _default_cell(field), field.description or ""]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _split(document: str, path: Path) -> tuple[str, str, str]:
    start = document.find(START_MARKER)
    end = document.find(END_MARKER)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{path}: expected the markers {START_MARKER} and {END_MARKER}, in that order")
    head = document[: start + len(START_MARKER)]
    return head, document[len(head) : end], document[end:]


def documented_table(path: Path = CONFIGURATION_DOC) -> str:
    """The table as it stands between the markers of `path`."""
    _, body, _ = _split(path.read_text(encoding="utf-8"), path)
    return body.strip("\n") + "\n"


def write_table(path: Path = CONFIGURATION_DOC) -> bool:
    """Rewrite the table between the markers of `path`; True when the file changed."""
    document = path.read_text(encoding="utf-8")
    head, _, tail = _split(document, path)
    updated = f"{head}\n{settings_table()}{tail}"
    if updated == document:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.settings_docs",
        description="The settings table of docs/configuration.md, generated from Settings.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the table in the configuration doc")
    action.add_argument("--check", action="store_true", help="exit 1 when the configuration doc's table is stale")
    parser.add_argument("--path", type=Path, default=CONFIGURATION_DOC, help="the configuration doc")
    args = parser.parse_args(argv)
    try:
        if args.write:
            changed = write_table(args.path)
            print(f"{args.path}: {'settings table updated' if changed else 'settings table already up to date'}")
        elif args.check:
            if documented_table(args.path) != settings_table():
                print(f"{args.path}: the settings table is out of date; run `make docs`", file=sys.stderr)
                return 1
        else:
            sys.stdout.write(settings_table())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
