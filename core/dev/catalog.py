"""``actions [--json]``: the catalog as the hub receives it, a table of it, and the URL size.

The first line is the catalog JSON exactly as it travels in the connection URL; then comes a
table of every action with its description and fields (type, required or default, nested
models as ``parent.child``), and the size of the connection URL, with a warning on stderr
when hubs may refuse it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from core.dev.command import EXIT_OK, display_path, load_actions
from core.hub.connection import URL_SIZE_WARNING, connection_url
from core.model.registry import catalog_hash, catalog_json
from core.model.runner import ActionRunner
from core.settings import Settings

# Longest default shown in the table before it is shortened.
DEFAULT_DISPLAY_LENGTH: Final = 40
# Stand-ins for the hub settings when they are not set, so that the URL can be sized.
PLACEHOLDER_WEBSOCKET_URL: Final = "ws://localhost:4000/websocket"
PLACEHOLDER_TOKEN: Final = "x" * 32


@dataclass(frozen=True, slots=True)
class _Row:
    """One line of the table."""

    name: str
    type: str = ""
    requirement: str = ""
    description: str = ""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``actions [--json | --hash]``: the catalog JSON, a table and the connection URL size."""
    actions = load_actions(settings.actions_path)
    out = sys.stdout
    catalog = catalog_json(actions)
    if args.hash:
        out.write(catalog_hash(catalog) + "\n")
        return EXIT_OK
    out.write(catalog + "\n")
    if args.json:
        return EXIT_OK
    out.write("\n")
    if actions:
        out.write(table(actions))
    else:
        out.write(f"(no actions under {display_path(settings.actions_path)})\n")
    assumed: list[str] = []
    if not settings.websocket_url:
        assumed.append(f"WEBSOCKET_URL={PLACEHOLDER_WEBSOCKET_URL}")
    if not settings.token:
        assumed.append(f"a {len(PLACEHOLDER_TOKEN)}-character TOKEN")
    url = connection_url(
        settings.websocket_url or PLACEHOLDER_WEBSOCKET_URL,
        settings.token or PLACEHOLDER_TOKEN,
        catalog,
        settings.phoenix_vsn,
    )
    size = len(url.encode())
    note = f" (assuming {' and '.join(assumed)}; set them for the exact size)" if assumed else ""
    out.write(f"\nConnection URL: {size:,} bytes; hubs accept about {URL_SIZE_WARNING:,}{note}\n")
    if size > URL_SIZE_WARNING:
        sys.stderr.write(
            f"warning: the connection URL is {size:,} bytes, over {URL_SIZE_WARNING:,}: the hub "
            "may refuse it. Shorten the action and field descriptions or split the service\n"
        )
    return EXIT_OK


def table(actions: Mapping[str, type[ActionRunner]]) -> str:
    """Every action with its description, then its fields: type, required or default."""
    header = _Row("ACTION / FIELD", "TYPE", "REQUIRED / DEFAULT", "DESCRIPTION")
    blocks: list[list[_Row]] = []
    for name, action in actions.items():
        schema = action.json_schema()
        rows = [_Row(name, description=action.description())]
        fields = _field_rows(schema, schema.get("$defs", {}), "  ", frozenset())
        rows.extend(fields or [_Row("  (no fields)")])
        blocks.append(rows)
    every = [header, *(row for block in blocks for row in block)]
    widths = [
        max(len(row.name) for row in every),
        max(len(row.type) for row in every),
        max(len(row.requirement) for row in every),
    ]

    def line(row: _Row) -> str:
        cells = (row.name, row.type, row.requirement)
        padded = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return f"{padded}  {row.description}".rstrip() + "\n"

    return line(header) + "\n".join("".join(line(row) for row in block) for block in blocks)


def _field_rows(
    schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str, seen: frozenset[str]
) -> list[_Row]:
    """Rows for the properties of `schema`; nested models follow as ``parent.child``."""
    required = set(schema.get("required", []))
    rows: list[_Row] = []
    for key, prop in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        if key in required:
            requirement = "required"
        elif "default" in prop:
            shown = json.dumps(prop["default"], ensure_ascii=False, default=str)
            if len(shown) > DEFAULT_DISPLAY_LENGTH:
                shown = shown[: DEFAULT_DISPLAY_LENGTH - 3] + "..."
            requirement = f"default {shown}"
        else:
            requirement = "optional"
        rows.append(_Row(name, type_label(prop), requirement, prop.get("description") or ""))
        nested = _nested_ref(prop)
        if nested is not None:
            ref, suffix = nested
            if ref in defs and ref not in seen:
                rows.extend(_field_rows(defs[ref], defs, f"{name}{suffix}.", seen | {ref}))
    return rows


def _ref_name(ref: str) -> str:
    """``#/$defs/Address`` -> ``Address``."""
    return ref.rsplit("/", 1)[-1]


def type_label(prop: Mapping[str, Any]) -> str:
    """A short, readable type for a JSON Schema property: ``string | null``, ``array[Address]``."""
    if "$ref" in prop:
        return _ref_name(prop["$ref"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in prop:
            labels = dict.fromkeys(type_label(option) for option in prop[combinator])
            return " | ".join(labels) if combinator != "allOf" else " & ".join(labels)
    if "const" in prop:
        return json.dumps(prop["const"], default=str)
    if "enum" in prop:
        return " | ".join(json.dumps(value, default=str) for value in prop["enum"])
    kind = prop.get("type")
    if isinstance(kind, list):
        return " | ".join(str(item) for item in kind)
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"array[{type_label(prop['items'])}]"
    if kind == "object" and isinstance(prop.get("additionalProperties"), Mapping):
        return f"object[{type_label(prop['additionalProperties'])}]"
    return str(kind) if kind else "any"


def _nested_ref(prop: Mapping[str, Any]) -> tuple[str, str] | None:
    """The model a property holds (directly, optionally or in a list), with a name suffix."""
    if "$ref" in prop:
        return _ref_name(prop["$ref"]), ""
    if prop.get("type") == "array" and isinstance(prop.get("items"), Mapping):
        inner = _nested_ref(prop["items"])
        return (inner[0], f"[]{inner[1]}") if inner else None
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in prop.get(combinator, []):
            found = _nested_ref(option)
            if found is not None:
                return found
    return None
