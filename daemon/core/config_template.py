"""The commented ``inboxd.toml`` that ``inboxd init`` writes, generated from the config
model: every key with its default and its description, so the file cannot drift from
the code. Uncommenting a line changes nothing; a key whose default is unset shows an
example value instead, marked "(example)"."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from daemon.core.config import Config

HEADER = """\
# inboxd configuration. Every key can also be set as an environment variable:
# INBOXD_<SECTION>__<KEY>, e.g. INBOXD_WATCH__SETTLE_SECONDS=5. Command-line options win.
# Each commented line shows the default: uncomment it and change the value."""

# Keys that are not settings of the file: the root is the file's own folder (--root).
SKIPPED = frozenset({"root"})
WIDTH = 92
# Where a line's description starts; a longer setting line has its description above it.
COMMENT_COLUMN = 29
LONG_LINE = 44


def toml_value(value: Any) -> str:
    """One TOML value on one line (arrays inline, paths as strings)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


def _describe(value_line: str, description: str) -> Iterator[str]:
    """``# key = value`` with its description as a comment, wrapped under itself."""
    if len(value_line) > LONG_LINE:
        yield from ("# " + line for line in textwrap.wrap(description, width=WIDTH - 2))
        yield value_line
        return
    column = max(COMMENT_COLUMN, len(value_line) + 2)
    text = textwrap.wrap(description, width=WIDTH - column - 2)
    if not text:
        yield value_line
        return
    yield value_line.ljust(column) + "# " + text[0]
    for more in text[1:]:
        yield "#".ljust(column) + "# " + more


def _setting(name: str, info: FieldInfo) -> Iterator[str]:
    default = info.get_default(call_default_factory=True)
    description = info.description or ""
    if default is None:
        value = info.examples[0] if info.examples else ""
        description = f"(example) {description}"
    else:
        value = default
    yield from _describe(f"# {name} = {toml_value(value)}", description)


def _tables(section: str, name: str, info: FieldInfo) -> Iterator[str]:
    """A mapping of models (``[gemini.prices."<model>"]``) as commented sub-tables."""
    entries: dict[str, BaseModel] = info.get_default(call_default_factory=True)
    dumped = {key: entry.model_dump() for key, entry in entries.items()}
    yield "#"
    first = True
    for line in tomli_w.dumps({section: {name: dumped}}).splitlines():
        if not line:
            continue
        if line.startswith("[") and first:
            yield from _describe(f"# {line}", info.description or "")
            first = False
        else:
            yield f"# {line}"


def _is_model_mapping(info: FieldInfo) -> bool:
    default = info.get_default(call_default_factory=True)
    return isinstance(default, dict) and all(isinstance(v, BaseModel) for v in default.values())


def _doc_lines(model: type[BaseModel]) -> list[str]:
    doc = model.__dict__.get("__doc__")
    if not doc:
        return []
    text = " ".join(inspect.cleandoc(doc).split()).replace("``", "`")
    return ["# " + line for line in textwrap.wrap(text, width=WIDTH - 2)]


def _section(name: str, model: type[BaseModel]) -> Iterator[str]:
    yield ""
    yield f"[{name}]"
    yield from _doc_lines(model)
    for key, info in model.model_fields.items():
        if _is_model_mapping(info):
            yield from _tables(name, key, info)
        else:
            yield from _setting(key, info)


def render_config_template() -> str:
    """The full commented template, top-level keys first, then one table a section."""
    lines = HEADER.splitlines()
    lines.append("")
    sections: list[tuple[str, type[BaseModel]]] = []
    for key, info in Config.model_fields.items():
        if key in SKIPPED:
            continue
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            sections.append((key, kind))
        else:
            lines.extend(_setting(key, info))
    for key, model in sections:
        lines.extend(_section(key, model))
    return "\n".join(lines) + "\n"
