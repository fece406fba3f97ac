"""`ActionSchema`: the Pydantic base of every action and of the models nested in one."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict

from core import json_codec


class ActionSchema(BaseModel):
    """A Pydantic model that describes itself in the Plugboard catalog format.

    Subclasses declare their fields with Pydantic and implement `description()`. The catalog
    entry (`to_dict()`) follows the hub's format exactly, because the hub compares catalogs
    across replicas; richer descriptions come from `json_schema()`.
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
        """The ``fields`` object of this schema's catalog entry."""
        properties: dict[str, Any] = cls.model_json_schema().get("properties", {})
        fields: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            key = info.alias or name
            prop: dict[str, Any] = properties.get(key, {})
            annotation = info.annotation
            entry: dict[str, Any]
            if isinstance(annotation, type) and issubclass(annotation, ActionSchema):
                entry = {"type": annotation.discriminator(), **annotation.to_dict()}
            else:
                entry = {"type": prop.get("type"), "description": prop.get("description")}
            if "default" in prop:
                entry["default"] = prop["default"]
            fields[key] = entry
        return fields

    @classmethod
    def to_dict(cls) -> dict[str, Any]:
        """The catalog entry: ``{"description": ..., "fields": {...}}``."""
        return {"description": cls.description(), "fields": cls.catalog_fields()}

    @classmethod
    def to_json(cls) -> str:
        """The catalog entry as compact JSON."""
        return json_codec.dumps(cls.to_dict())

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The full JSON Schema of this action's fields, as Pydantic generates it."""
        schema = cls.model_json_schema()
        schema["description"] = cls.description()
        return schema
