"""The public surface: the documented modules' names import and are documented, the docs'
examples import only from those modules, the package has no import circles, and its lower
layers never see the client (the facade)."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vccasync"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
API_PAGE = ROOT / "docs" / "api.md"
PUBLIC = (
    "vccasync",
    "vccasync.stores",
    "vccasync.sync",
    "vccasync.content",
    "vccasync.distributed",
    "vccasync.fake",
    "vccasync.dlt",
)
CLI = ("vccasync.cli",)  # the command line: `python -m vccasync.cli`, the entry point
_FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports(name: str) -> None:
    if name == "vccasync.dlt":
        pytest.importorskip("dlt")  # the dlt extra
    module = importlib.import_module(name)
    public = module.__all__
    assert public, f"{name}.__all__ is empty"
    assert module.__doc__, f"{name} has no docstring"
    for attribute in public:
        exec(f"from {name} import {attribute}", {})  # as a user writes it


def test_the_public_modules_are_the_api_pages_sections() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    assert set(re.findall(r"^## `(vccasync[\w.]*)`", page, re.M)) == set(PUBLIC)


def test_every_internal_module_is_underscore_named() -> None:
    """A module that is neither documented (nor the CLI, nor a ``__main__``) has a ``_`` on its
    path, so that an import says whether it reaches past the public surface."""
    public = {*PUBLIC, *CLI}
    exposed = [
        name
        for path in PACKAGE.rglob("*.py")
        if path.stem != "__main__"
        and (name := module_name(path, ROOT)) not in public
        and not any(part.startswith("_") for part in name.split("."))
    ]
    assert not exposed, f"internal modules without a leading underscore: {sorted(exposed)}"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_on_the_api_page(name: str) -> None:
    if name == "vccasync.dlt":
        pytest.importorskip("dlt")  # the dlt extra
    page = API_PAGE.read_text(encoding="utf-8")
    section = re.search(rf"^## `{re.escape(name)}`\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    assert section, f"docs/api.md has no section ## `{name}`"
    missing = [a for a in importlib.import_module(name).__all__ if f"`{a}`" not in section[1]]
    assert not missing, f"docs/api.md does not name {missing} under {name}"


def python_examples(text: str) -> Iterator[str]:
    """The fenced ```python blocks of a Markdown text."""
    for block in _FENCE.finditer(text):
        yield block[1]


def imported_modules(source: str) -> set[str]:
    """The modules a snippet imports (``import X``, ``from X import y``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_python_examples_are_found() -> None:
    text = "intro\n```python\nfrom vccasync import VccClient\n```\n```bash\nls\n```\n"
    assert list(python_examples(text)) == ["from vccasync import VccClient\n"]
    assert imported_modules("import a.b\nfrom c import d\nfrom . import e\n") == {"a.b", "c"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_examples_import_only_the_public_modules(doc: Path) -> None:
    for example in python_examples(doc.read_text(encoding="utf-8")):
        for module in imported_modules(example):
            if module == "vccasync" or module.startswith("vccasync."):
                assert module in PUBLIC, f"{doc.name} imports {module}:\n{example}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(body: list[ast.stmt], *, typing: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements at module level; ``if TYPE_CHECKING:`` blocks only when ``typing``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if typing or "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _module_imports(node.body, typing=typing)
            yield from _module_imports(node.orelse, typing=typing)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_imports(block, typing=typing)


def import_graph(package: Path, *, typing: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level (with ``typing``, those
    imported for type checking only too). Importing ``a.b.c`` imports the packages ``a`` and
    ``a.b`` too; a module's own enclosing packages are left out (they are always initialised
    first)."""
    paths = {module_name(p, package.parent): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _module_imports(tree.body, typing=typing):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            targets.add(origin)
            targets.update(f"{origin}.{alias.name}" for alias in node.names)
        edges: set[str] = set()
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in paths and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import circle (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_reports_the_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_import_graph_follows_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text("from .sub import b\nx = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import c\nif TYPE_CHECKING:\n"
        "    from ..a import x\n"
    )
    (pkg / "sub" / "c.py").write_text("try:\n    import pkg.a\nexcept ImportError:\n    pass\n")
    graph = import_graph(pkg)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub", "pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.sub.c"},
        "pkg.sub.c": {"pkg.a"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]
    assert import_graph(pkg, typing=True)["pkg.sub.b"] == {"pkg.sub.c", "pkg.a"}


@pytest.mark.parametrize("typing", [False, True], ids=["at-run-time", "for-type-checking-too"])
def test_no_import_circles(typing: bool) -> None:
    graph = import_graph(PACKAGE, typing=typing)
    assert "vccasync._http.session" in graph["vccasync._client"]
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


FRONT_ENDS = ("vccasync.cli", "vccasync.distributed", "vccasync.dlt")  # build and drive a client
FACADE = "vccasync._client"


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("typing", [False, True], ids=["at-run-time", "for-type-checking-too"])
def test_no_module_below_the_front_ends_imports_the_client(typing: bool) -> None:
    graph = import_graph(PACKAGE, typing=typing)
    assert FACADE in graph["vccasync.cli._common"]  # the walk sees the imports it checks
    importers = {name for name, edges in graph.items() if FACADE in edges}
    below = sorted(n for n in importers if n != "vccasync" and not _within(n, FRONT_ENDS))
    assert below == [], f"below the front ends, these import {FACADE}: {below}"


def _session_internals(tree: ast.AST) -> Iterator[str]:
    """Reads of a session's rate limiter, token source or stats (``x.session.limiter``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"limiter", "tokens", "stats"}:
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in {"session", "_session"}:
                yield f"line {node.lineno}: {ast.unparse(node)}"


def test_session_internals_are_read_by_the_facade_only() -> None:
    """Lower layers are handed the budget they pace by (and read the session's ``latency``,
    not its stats), front ends ask the session (or the client) to act; only the session and
    the facade that owns it touch its parts."""
    reaches = {
        name: found
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _within(name := module_name(path, PACKAGE.parent), ("vccasync._http", FACADE))
        if (found := list(_session_internals(ast.parse(path.read_text(encoding="utf-8")))))
    }
    assert reaches == {}
    sample = ast.parse("async def f(vcc):\n    await vcc.session.limiter.acquire()\n")
    assert list(_session_internals(sample)) == ["line 2: vcc.session.limiter"]
    stats = ast.parse("def f(run):\n    return run.session.stats.latency\n")
    assert list(_session_internals(stats)) == ["line 2: run.session.stats"]


def test_the_client_hands_itself_to_no_lower_layer() -> None:
    """The facade passes narrow parts (a bound method, a budget), never ``self``."""
    tree = ast.parse((PACKAGE / "_client.py").read_text(encoding="utf-8"))
    passed = [
        f"line {call.lineno}: {ast.unparse(call)}"
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        for arg in [*call.args, *(k.value for k in call.keywords)]
        if isinstance(arg, ast.Name) and arg.id == "self"
    ]
    assert passed == []
