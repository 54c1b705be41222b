"""The package's shape: no import cycles between modules or between packages, a core that never imports
the toy world, and a command line that starts without torch."""

import ast
import subprocess
import sys
from pathlib import Path

import imposter

PACKAGE = Path(imposter.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere in it (inside functions and TYPE_CHECKING blocks too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            target = ".".join(part for part in (base, node.module or "") if part)
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in modules else target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, set(paths)) for name, path in paths.items()}
    from imposter.cli import COMMAND_MODULES  # imported by name when the parser is built

    graph["imposter.cli"] |= set(COMMAND_MODULES) & set(paths)
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycles():
    graph = import_graph()
    cycles = {module: cycle for module in graph if (cycle := cycle_through(graph, module))}
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles.values())


def package_of(module: str) -> str:
    """``module`` collapsed to its folder under imposter: imposter.metrics.clip -> imposter.metrics."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_packages():
    """Two folders (or a folder and a top-level module) never import each other, even through different
    files: imposter.metrics.* -> imposter.toyworld.* -> imposter.metrics.* is a cycle here."""
    graph: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        graph.setdefault(package_of(module), set()).update(map(package_of, imported))
    graph = {package: imported - {package} for package, imported in graph.items()}
    cycles = {package: cycle for package in graph if (cycle := cycle_through(graph, package))}
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles.values())


def in_core(module: str) -> bool:
    """The core: every module but what is built on it, the toy world (imposter.toyworld), the app
    (imposter.app), the command line (imposter.cli, imposter.__main__ and each package's ``cli`` module)
    and the test kit (imposter.testing)."""
    above = ("imposter.toyworld", "imposter.app", "imposter.testing", "imposter.cli", "imposter.__main__")
    return not (package_of(module) in above or module.rpartition(".")[2] == "cli")


def test_the_core_never_imports_the_toy_world():
    """The core reaches the toy world only by name: imposter.plugins.PLUGINS lists the modules that register
    named models and metrics, imported on the first lookup (so "toy" resolves like any name). The app and
    the command line, built on the core like the toy world, may import it."""
    from imposter.plugins import PLUGINS

    graph = import_graph()
    core = [module for module in graph if in_core(module)]
    assert (
        "imposter.engine" in core and "imposter.metrics.registry" in core and "imposter.bench.cli" not in core
    )
    reaching_up = {
        module: sorted(imported for imported in graph[module] if package_of(imported) == "imposter.toyworld")
        for module in core
    }
    assert not {module: imported for module, imported in reaching_up.items() if imported}
    assert PLUGINS and not any(in_core(plugin) for plugin in PLUGINS)


def test_methods_and_personalizations_do_not_import_the_engine():
    graph = import_graph()
    lower = [name for name in graph if name.startswith(("imposter.methods", "imposter.personalizations"))]
    assert lower and all("imposter.engine" not in graph[name] for name in lower)


def test_the_command_line_parses_without_importing_torch():
    code = (
        "import sys, imposter.cli as cli; cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
