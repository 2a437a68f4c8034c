"""gpubox/ has no import cycle: every module can be read on its own, and a family (cloud/,
commands/) depends on the ones below it, never back. Walks the source with ast (nothing is
imported), so a cycle hidden in a function-level import counts too; only imports under
`if TYPE_CHECKING:` are left out, since they never run."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gpubox"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the gpubox modules it imports (a `from gpubox.x import y` names module x.y when
    there is one, else x)."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_gpubox_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "gpubox.cloud.records" in graph and "gpubox.cloud.ec2" in graph  # the walk sees the packages
    assert cycles(graph) == [], "import cycles in gpubox/ (each group imports itself round-about)"


def test_the_walk_finds_a_cycle(tmp_path: Path) -> None:
    """The check can fail: a two-module cycle through a function-level import, and one through a
    `from package import module`, are both found; a TYPE_CHECKING-only import is not a cycle."""
    package = tmp_path / "gpubox"
    (package / "cloud").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cloud" / "__init__.py").write_text("")
    (package / "cloud" / "ec2.py").write_text("from gpubox.cloud import launch\n")
    (package / "cloud" / "launch.py").write_text("def later():\n    from gpubox.cloud import ec2\n")
    (package / "plan.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gpubox import status\n")
    (package / "status.py").write_text("from gpubox import plan\n")
    assert cycles(import_graph(package)) == [["gpubox.cloud.ec2", "gpubox.cloud.launch"]]
