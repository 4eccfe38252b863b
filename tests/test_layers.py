"""Imports point one way: read from the source, so a cycle fails here before it fails at import."""

import ast
from pathlib import Path

import pytm4srv

PACKAGE = Path(pytm4srv.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, *, at_import: bool = False) -> set[str]:
    """The pytm4srv names ``path`` imports; ``at_import``: only those its import runs (not those
    inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body if at_import else ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("pytm4srv")}


MODULES = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
AT_IMPORT = {module_name(path): imports_of(path, at_import=True) for path in PACKAGE.rglob("*.py")}


def reached_from(start: str) -> set[str]:
    """The pytm4srv modules that importing ``start`` imports, and theirs in turn."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
        for name in [*AT_IMPORT.get(module, ()), *parents]:
            if name in AT_IMPORT and name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_module_map_is_read():
    assert "pytm4srv.machines.queries" in MODULES["pytm4srv.machines.views"]
    assert "pytm4srv.holds.views" in MODULES["pytm4srv"]  # in create_app
    assert "pytm4srv.holds.views" not in reached_from("pytm4srv")
    assert {"pytm4srv.db", "pytm4srv.holds.models"} <= reached_from("pytm4srv.holds.cli")


def test_holds_import_nothing_of_machines_which_import_holds():
    for name, imported in MODULES.items():
        if in_package(name, "pytm4srv.holds"):
            assert not [i for i in imported if in_package(i, "pytm4srv.machines")], name


def test_no_view_module_is_imported_but_by_the_app_factory():
    for name, imported in MODULES.items():
        if name != "pytm4srv":
            assert not [i for i in imported if i.endswith(".views")], name


def test_the_commands_do_not_reach_the_views():
    for name in MODULES:
        if name.endswith(".cli"):
            assert not [i for i in reached_from(name) if i.endswith(".views")], name
