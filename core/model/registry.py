"""Discovery of action and event classes in the modules under a folder, and the catalog.

`discover` is what the service uses: every module under a folder (subfolders too), every
concrete subclass of a kind, and one error naming the files when anything is wrong.
`ActionRegistry` is the seed's public API over it (``core.action_registry``), kept for code
written against the seed.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from core import json_codec
from core.model.result import ResultTypeError, result_type
from core.model.runner import ActionDefinitionError, ActionRunner, run_convention
from core.model.schema import ActionSchema
from core.redaction import truncate

logger = logging.getLogger(__name__)


def catalog_json(actions: Mapping[str, type[ActionRunner]]) -> str:
    """The catalog as the hub receives it in the connection URL: compact JSON, one entry per
    action (``{name: {"description", "fields"}}``)."""
    return json_codec.dumps({name: action.catalog_entry() for name, action in actions.items()})


def catalog_hash(catalog: str) -> str:
    """A short hash of a catalog's JSON: replicas that can serve side by side share it."""
    return hashlib.sha256(catalog.encode()).hexdigest()[:12]


class DiscoveryError(Exception):
    """Start-up must stop: a module failed to import, or two classes share a name."""


def _default_key(cls: type[Any]) -> str:
    if issubclass(cls, ActionSchema):
        return cls.discriminator()
    name = getattr(cls, "event", None)
    if not isinstance(name, str):
        raise DiscoveryError(f"{cls.__module__}.{cls.__qualname__} has no name to register it by")
    return name


def discover(
    path: str | Path, kind: type[Any], key: Callable[[type[Any]], str] | None = None
) -> dict[str, type[Any]]:
    """Import every module under `path` (subfolders too) and collect subclasses of `kind`.

    Only classes defined in a module count (an imported class is not counted twice), and
    abstract classes are skipped. Classes are keyed by `key(cls)`: the discriminator for
    actions, the ``event`` attribute for event handlers. Raises `DiscoveryError`, naming
    the files, when `path` is not a folder, a module fails to import, two classes share a
    key, or an action's `run()` takes neither ``(self, ctx)`` nor ``(self, client,
    websocket)`` or declares a result type that cannot be read.
    """
    name_of = key or _default_key
    found: dict[str, type[Any]] = {}
    origin: dict[str, str] = {}
    modules, failures = _import_all(Path(path))
    for file, module in modules:
        for cls in _classes_defined_in(module, kind):
            name = name_of(cls)
            where = f"{file}:{cls.__qualname__}"
            if name in found and found[name] is not cls:
                failures.append(f"two classes are named {name!r}: {origin[name]} and {where}")
                continue
            if issubclass(cls, ActionRunner):
                try:
                    run_convention(cls)
                    result_type(cls)
                except (ActionDefinitionError, ResultTypeError) as error:
                    failures.append(f"{file}: {error}")
                    continue
            found[name] = cls
            origin[name] = where
    if failures:
        raise DiscoveryError("; ".join(failures))
    return dict(sorted(found.items()))


def import_modules(path: str | Path) -> list[ModuleType]:
    """Import every module under `path` (subfolders too), in file order.

    Raises `DiscoveryError`, naming the files, when a module fails to import.
    """
    modules, failures = _import_all(Path(path))
    if failures:
        raise DiscoveryError("; ".join(failures))
    return [module for _, module in modules]


class ActionRegistry:
    """The seed's registry: static methods that find the actions of a folder and build
    their catalog. The service itself uses `discover`."""

    @staticmethod
    def valid_action_types() -> list[type[ActionSchema]]:
        """The kinds `discover` accepts: `ActionSchema` and `ActionRunner`."""
        return [ActionSchema, ActionRunner]

    @staticmethod
    def discover(path: str | Path, action_type: type[Any]) -> builtins.dict[str, type[Any]]:
        """``{discriminator: class}`` for the classes of `action_type` under `path`.

        `ActionRunner` finds the actions; `ActionSchema` the schemas that are not actions
        (the models nested in actions' fields). A `path` that does not exist gives ``{}``;
        another `action_type` raises `ValueError`; a module that fails to import raises
        `DiscoveryError`.
        """
        if action_type not in ActionRegistry.valid_action_types():
            raise ValueError(
                f"action_type must be ActionSchema or ActionRunner, not {action_type!r}"
            )
        if not Path(path).exists():
            return {}
        found = discover(path, action_type)
        if action_type is ActionSchema:
            return {name: cls for name, cls in found.items() if not issubclass(cls, ActionRunner)}
        return found

    @staticmethod
    def actions(path: str | Path, action_type: type[Any]) -> builtins.dict[str, type[Any]]:
        """The same as `discover`."""
        return ActionRegistry.discover(path, action_type)

    @staticmethod
    def dict(path: str | Path = "actions") -> builtins.dict[str, Any]:
        """The catalog of the actions under `path`: ``{name: {"description", "fields"}}``."""
        catalog: builtins.dict[str, Any] = {}
        for action in ActionRegistry.discover(path, ActionRunner).values():
            catalog.update(action.to_dict())
        return catalog

    @staticmethod
    def json(path: str | Path = "actions", indent: int | None = None) -> str:
        """`dict(path)` as JSON text, written as the seed writes it (`json.dumps`)."""
        return json.dumps(ActionRegistry.dict(path), indent=indent)


def _import_all(root: Path) -> tuple[list[tuple[Path, ModuleType]], list[str]]:
    """Every module under `root` imported, with the failures (one line each)."""
    modules: list[tuple[Path, ModuleType]] = []
    failures: list[str] = []
    for file, module_name in _module_files(root):
        try:
            modules.append((file, _import(file, module_name)))
        except Exception as error:  # any import-time failure must stop start-up
            failures.append(f"{file}: {type(error).__name__}: {error}")
    return modules, failures


def _module_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield (file, module name) for every Python module under `root`, sorted."""
    try:
        is_folder = root.is_dir()
    except OSError as error:  # e.g. a name longer than the system allows
        raise DiscoveryError(
            f"{truncate(str(root), 100)} cannot be read: {error.strerror or error}"
        ) from None
    if not is_folder:
        raise DiscoveryError(f"{root} is not a folder")
    base = _package_base(root)
    for file in sorted(root.rglob("*.py")):
        relative = file.relative_to(root).with_suffix("")
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        parts = [part for part in relative.parts if part != "__init__"]
        yield file, ".".join([base, *parts]) if parts else base


def _package_base(root: Path) -> str:
    """The dotted name `root` is importable as, or a private name when it is not on sys.path."""
    resolved = root.resolve()
    for entry in sys.path:
        try:
            if Path(entry or ".").resolve() == resolved.parent:
                return resolved.name
        except OSError:
            continue
    return f"_discovered_{abs(hash(str(resolved))):x}_{resolved.name}"


def _import(file: Path, module_name: str) -> ModuleType:
    if not module_name.startswith("_discovered_"):
        return importlib.import_module(module_name)
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _classes_defined_in(module: ModuleType, kind: type[Any]) -> Iterator[type[Any]]:
    for _, value in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(value, kind)
            and value is not kind
            and value.__module__ == module.__name__
            and not inspect.isabstract(value)
        ):
            yield value
