"""The code's structure and the README's promises, checked from the files themselves."""

from __future__ import annotations

import ast
import re
import unittest
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The service's own packages and the entry point; tests and benchmarks import them, never the
# other way round.
PACKAGES = ("core", "events", "schemas", "actions")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {"entrypoint": PROJECT_ROOT / "entrypoint.py"}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `name` imports anywhere in its file: at the top, inside a function
    or under ``if TYPE_CHECKING:`` alike, since each is a dependency a reader must follow."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from core.hub import outbox` imports the module core.hub.outbox; `from core
            # import State` imports what core/__init__.py defines.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # The deepest project module the import names (a package stands for its
            # __init__.py).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


class ImportCycleTest(unittest.TestCase):
    def test_no_module_imports_itself_through_others(self) -> None:
        modules = project_modules()
        graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
        self.assertEqual(cycles(graph), [])

    def test_the_checker_sees_a_cycle(self) -> None:
        self.assertEqual(
            cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}), [["a", "b", "c"]]
        )

    def test_type_checking_and_function_level_imports_count(self) -> None:
        modules = project_modules()
        name, path = "core.hub.client", modules["core.hub.client"]
        self.assertIn("core.hub.outbox", imports_of(name, path, modules))


class ReadmeTest(unittest.TestCase):
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")

    def test_the_readme_is_short(self) -> None:
        self.assertLessEqual(len(self.readme.splitlines()), 200)

    def test_it_leads_with_the_two_commands(self) -> None:
        lead = self.readme[: self.readme.index("\n## ")]
        self.assertIn("python3 entrypoint.py --local", lead)
        self.assertIn("python3 -m tests", lead)

    def test_its_links_reach_files_and_headings(self) -> None:
        for target in re.findall(r"\]\(([^)\s]+)\)", self.readme):
            if "://" in target:
                continue
            file, _, anchor = target.partition("#")
            page = PROJECT_ROOT / file
            self.assertTrue(page.is_file(), f"README links to {target}, which does not exist")
            if anchor:
                headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
                slugs = {
                    re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings
                }
                self.assertIn(anchor, slugs, f"README links to {target}: no such heading")


if __name__ == "__main__":
    unittest.main()
