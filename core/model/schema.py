"""`ActionSchema`: the Pydantic base of every action and of the models nested in one."""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo


class ActionSchema(BaseModel):
    """A Pydantic model that describes itself in the Plugboard catalog format.

    Subclasses declare their fields with Pydantic and implement `description()`. The catalog
    entry (`catalog_entry()`) follows the hub's format exactly, because the hub compares
    catalogs across replicas, including replicas built from the seed; `to_dict()` and
    `to_json()` give it keyed by the discriminator, as the seed's do, so that a catalog can
    be assembled with ``{**A.to_dict(), **B.to_dict()}``. Richer descriptions come from
    `json_schema()`.
    """

    model_config = ConfigDict(extra="ignore")

    @classmethod
    @abstractmethod
    def description(cls) -> str:
        """A one-line description of what this schema is or does."""

    @classmethod
    def discriminator(cls) -> str:
        """The name the hub knows this schema by (the class name unless overridden)."""
        return cls.__name__

    @classmethod
    def catalog_fields(cls) -> dict[str, Any]:
        """The ``fields`` object of this schema's catalog entry (protocol page, section 2).

        One entry per property of the schema: its JSON-Schema ``type`` as Pydantic reports
        it at the top level (None for unions), its description, and its default when it has
        one. A field whose type is itself an `ActionSchema` is that schema's own entry with
        its discriminator as ``type``, and no default.
        """
        properties: dict[str, Any] = cls.model_json_schema().get("properties", {})
        by_key = {_property_key(name, info): info for name, info in cls.model_fields.items()}
        fields: dict[str, Any] = {}
        for key, prop in properties.items():
            info = by_key.get(key)
            annotation = info.annotation if info is not None else None
            if (
                "$ref" in prop
                and isinstance(annotation, type)
                and issubclass(annotation, ActionSchema)
            ):
                fields[key] = {"type": annotation.discriminator(), **annotation.catalog_entry()}
                continue
            entry = {"type": prop.get("type"), "description": prop.get("description")}
            if "default" in prop:
                entry["default"] = prop["default"]
            fields[key] = entry
        return fields

    @classmethod
    def catalog_entry(cls) -> dict[str, Any]:
        """This schema's entry in the catalog: ``{"description": ..., "fields": {...}}``."""
        return {"description": cls.description(), "fields": cls.catalog_fields()}

    @classmethod
    def to_dict(cls) -> dict[str, Any]:
        """The catalog entry keyed by the discriminator: ``{name: {"description", "fields"}}``."""
        return {cls.discriminator(): cls.catalog_entry()}

    @classmethod
    def to_json(cls, indent: int | None = None) -> str:
        """`to_dict()` as JSON text, written as the seed writes it (the standard library's
        separators; `indent` as `json.dumps` takes it). The hub's connection URL carries a
        compact form instead (`core.model.registry.catalog_json`)."""
        return json.dumps(cls.to_dict(), indent=indent)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The full JSON Schema of this action's fields, as Pydantic generates it."""
        schema = cls.model_json_schema()
        schema["description"] = cls.description()
        return schema


def _property_key(name: str, info: FieldInfo) -> str:
    """The key of field `name` in the model's validation JSON Schema."""
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return info.alias or name
