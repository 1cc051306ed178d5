"""The package's own import graph: modules map to chapters, and no two import each other."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minigpt"


def imported_modules(path: Path) -> set[str]:
    """The package modules that `path` imports anywhere, inside functions included."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y, from . import x
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names = [f"{base}.{node.module}"] if node.module else [f"{base}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            found.update(n for n in names if n.startswith("minigpt."))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("minigpt."))
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): imported_modules(p)
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py"  # the package's front door imports everything, by design
    }
    assert "minigpt.checkpoint" in graph["minigpt.train"]  # the graph sees the imports

    def cycle_from(start, node, path):
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path and (found := cycle_from(start, nxt, [*path, nxt])):
                return found
        return None

    cycles = [c for m in graph if (c := cycle_from(m, m, [m]))]
    assert not cycles, f"import cycles: {cycles}"
