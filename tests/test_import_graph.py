"""catalog/'s import graph, read from the source: no cycle, and the layers the architecture describes.

Every import statement counts: at module level, inside functions, and under ``TYPE_CHECKING``.
A cycle couples two modules whenever the import runs: an import moved into a function only hides
the cycle from the interpreter, and a type-only one still ties the modules together for a reader
and for the type checker. Both cycles this test was written against were hidden that way. An
import names the modules it uses: ``import a.b`` names ``a.b``; ``from a import b`` names ``a``,
and ``a.b`` as well when that is a module. Modules loaded by a name held in a string
(``importlib.import_module``) are not edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "catalog"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.file}:{self.line})"


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package`` (a package is its ``__init__``)."""
    names = {}
    for file in sorted(package.rglob("*.py")):
        parts = file.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = file
    return names


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """One edge per catalog module each import statement of ``modules`` names (see the docstring)."""
    edges = []
    for name, file in modules.items():
        where = file.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                origin = _absolute(name, file.name == "__init__.py", node)
                named = [origin, *(f"{origin}.{alias.name}" for alias in node.names)]
            else:
                continue
            edges += [Edge(name, target, where, node.lineno) for target in dict.fromkeys(named)
                      if target in modules and target != name]  # fmt: skip
    return edges


def strongly_connected(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, iteratively."""
    after: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        after[e.source].append(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(after[root])))
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(after[target])))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return found


def one_cycle(component: list[str], edges: list[Edge]) -> list[Edge]:
    """A shortest cycle through the component's first module, as the import statements that make it."""
    inside = set(component)
    start = component[0]
    came_by: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for e in edges:
                if e.source != node or e.target not in inside:
                    continue
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came_by[path[0].source])
                    return path
                if e.target not in came_by:
                    came_by[e.target] = e
                    following.append(e.target)
        frontier = following
    raise AssertionError(f"{component} is strongly connected, yet no cycle goes through {start}")


MODULES = module_names(PACKAGE)
EDGES = import_edges(MODULES)


def test_the_graph_is_read_from_every_import() -> None:
    """Imports inside functions and under TYPE_CHECKING are edges too; unknown modules are not."""
    found = {(e.source, e.target) for e in EDGES}
    assert ("catalog.cli.main", "catalog.cli.common") in found  # module level
    assert ("catalog.provider.provider", "catalog.provider.endpoint") in found  # inside a function
    assert ("catalog.errors", "catalog.domain.problems") in found  # under TYPE_CHECKING only
    assert all(e.target.startswith("catalog") for e in EDGES)


def test_a_cycle_is_found_and_named() -> None:
    edges = [Edge("a", "b", "a.py", 3), Edge("b", "c", "b.py", 5), Edge("c", "a", "c.py", 8), Edge("c", "d", "c.py", 9)]
    (component,) = strongly_connected(["a", "b", "c", "d"], edges)
    assert component == ["a", "b", "c"]
    assert [str(e) for e in one_cycle(component, edges)] == [
        "a -> b (a.py:3)",
        "b -> c (b.py:5)",
        "c -> a (c.py:8)",
    ]


def test_catalog_has_no_import_cycle() -> None:
    cycles = strongly_connected(list(MODULES), EDGES)
    described = [
        f"{' <-> '.join(component)}:\n    " + "\n    ".join(str(e) for e in one_cycle(component, EDGES))
        for component in cycles
    ]
    assert not cycles, "import cycles:\n  " + "\n  ".join(described)


def _within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_domain_imports_only_the_domain_and_wording() -> None:
    """The domain is pure (no IO, never prints): it needs none of the adapters around it."""
    wrong = [
        str(e)
        for e in EDGES
        if _within(e.source, "catalog.domain") and not _within(e.target, "catalog.domain", "catalog.wording")
    ]
    assert not wrong, "the domain imports outside catalog.domain and catalog.wording:\n  " + "\n  ".join(wrong)


def test_only_the_cli_imports_the_cli() -> None:
    """The CLI parses, calls a service and renders: nothing below it may need it."""
    upward = [str(e) for e in EDGES if _within(e.target, "catalog.cli") and not _within(e.source, "catalog.cli")]
    assert not upward, "modules importing the CLI:\n  " + "\n  ".join(upward)


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def room_of(module: str) -> str:
    """The room of a module: the package or top-level module right under ``catalog``."""
    return module.split(".")[1] if "." in module else module


def rooms_table(text: str) -> dict[str, set[str] | None]:
    """docs/architecture.md's table of rooms: room -> the rooms it may import (None: every room)."""
    rooms: dict[str, set[str] | None] = {}
    section = text.split("\n## Rooms\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        room, allowed = cells[0].strip("`"), cells[-1]
        rooms[room] = (
            None if allowed == "every room" else {name.strip("` ") for name in allowed.split(",") if name.strip()}
        )
    return rooms


def test_every_import_stays_within_the_rooms_the_architecture_page_draws() -> None:
    rooms = rooms_table(ARCHITECTURE.read_text(encoding="utf-8"))
    present = {room_of(m) for m in MODULES if m != "catalog"}
    assert set(rooms) == present, (
        f"rooms without a row: {present - set(rooms)}; rows without a room: {set(rooms) - present}"
    )
    crossing = []
    for e in EDGES:
        source, target = room_of(e.source), room_of(e.target)
        if e.target == "catalog" or source == target:
            continue
        if e.source == "catalog":  # the public API gathers every room but the CLI
            if target == "cli":
                crossing.append(str(e))
            continue
        allowed = rooms[source]
        if allowed is not None and target not in allowed:
            crossing.append(str(e))
    assert not crossing, "imports the architecture page does not allow:\n  " + "\n  ".join(crossing)


def test_the_rooms_table_is_read_as_written() -> None:
    table = "\n## Rooms\n\n| room | holds | may import |\n| --- | --- | --- |\n| `a` | x, y | `b`, `c` |\n| `b` | z | |\n| `cli` | w | every room |\n\n## Next\n| `d` | | `a` |\n"
    assert rooms_table(table) == {"a": {"b", "c"}, "b": set(), "cli": None}


def test_only_catalog_vault_imports_hvac() -> None:
    """One adapter talks to Vault: its errors are translated, its retries bounded and its token kept in one place."""
    importers = set()
    for name, file in MODULES.items():
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            named = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            named += [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == "hvac" or n.startswith("hvac.") for n in named):
                importers.add(name)
    assert importers == {"catalog.vault"}
