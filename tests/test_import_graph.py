"""The shape of the house: no import cycle in lrcfuse_model or lrcfuse_ros, no ROS in lrcfuse_model, no huge module.

The import graph is read from the source with ``ast``, not by importing anything. It counts every
import: at module level and inside functions (lazy imports run too, only later), under
``TYPE_CHECKING``, and module names given as strings (``importlib.import_module`` tables such as
``lrcfuse_model/_moved.py``, ``python -m`` targets). A node is a module; a package's
``__init__.py`` is a node of its own (the package's name). ``import a.b.c`` and
``from a.b import c`` (``c`` a submodule) are edges to ``a.b.c``; ``from a.b import name`` is an
edge to ``a.b``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lrcfuse_model", "lrcfuse_ros")
LAUNCH_FILE = REPO_ROOT / "launch" / "fusion.launch.py"
MAX_LINES = 550  # "about 500": a loose guard against a module growing back into several
# Top-level names of ROS 2 Python packages (client library, messages, launch, ament). `rosbags` (pure-Python bag
# files, no ROS) is not one of them: lrcfuse_model.streams.bag uses it.
ROS_PACKAGES = frozenset(
    {
        "rclpy",
        "rcl_interfaces",
        "rosidl_runtime_py",
        "rosidl_parser",
        "rosbag2_py",
        "launch",
        "launch_ros",
        "ament_index_python",
        "message_filters",
        "cv_bridge",
        "builtin_interfaces",
        "std_msgs",
        "sensor_msgs",
        "diagnostic_msgs",
        "vision_msgs",
        "geometry_msgs",
    }
)


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages (a package's ``__init__`` as the package)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _docstrings(tree: ast.AST) -> set[int]:
    """``id`` of every docstring node (not counted as a string reference)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module ``target`` refers to: itself, else its longest prefix that is a module (``pkg.mod.name``)."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def imported_names(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """Every absolute module name that the module ``name`` (file ``path``) imports, or names in a string, with the
    line. Relative imports are resolved; ``from a import b`` gives ``a.b`` where that is a module, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                yield (f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base), node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            # a dotted module path of ours in a string: import_module tables, `python -m` targets
            if node.value.split(".")[0] in PACKAGES and "." in node.value and " " not in node.value:
                yield node.value, node.lineno


def build_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(edges, external)``: module -> the modules of the two packages it imports; module -> the top-level names
    of the other packages it imports."""
    modules = module_files()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _ in imported_names(name, path, modules):
            root = target.split(".")[0]
            if root not in PACKAGES:
                external[name].add(root)
                continue
            resolved = resolve(target, modules)
            if resolved is not None and resolved != name:
                edges[name].add(resolved)
    return edges, external


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or ``None`` (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(edges[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return build_graph()


def test_the_import_graph_is_acyclic(graph) -> None:
    edges, _ = graph
    # The graph is the real one (lazy and string imports included), not an empty reading of it:
    assert "lrcfuse_model.inference.export" in edges["lrcfuse_model.inference.backends"]  # lazy, in a function
    assert "lrcfuse_model.inference.export_check" in edges["lrcfuse_model.cli"]  # a subcommand named by a string
    assert "lrcfuse_model.nn.model" in edges["lrcfuse_model._moved"]  # the old module paths
    assert "lrcfuse_model.streams.image_msg" in edges["lrcfuse_ros.fusion_node"]
    n_edges = sum(len(t) for t in edges.values())
    cycle = find_cycle(edges)
    print(f"import graph: {len(edges)} modules, {n_edges} edges, cycle: {' -> '.join(cycle) if cycle else 'none'}")
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one() -> None:
    """The checker itself: a planted cycle is found and named."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_lrcfuse_model_never_imports_ros(graph) -> None:
    edges, external = graph
    ros = {m: sorted(names & ROS_PACKAGES) for m, names in external.items() if m.startswith("lrcfuse_model")}
    assert not {m: names for m, names in ros.items() if names}
    ros_side = {m: sorted(t for t in targets if t.startswith("lrcfuse_ros")) for m, targets in edges.items()}
    assert not {m: t for m, t in ros_side.items() if t and m.startswith("lrcfuse_model")}


def test_package_code_uses_the_new_module_paths() -> None:
    """The old flat paths are for users' code; the packages themselves import modules where they live now."""
    from lrcfuse_model._moved import MOVED

    modules = module_files()
    old = {f"lrcfuse_model.{name}" for name in MOVED}
    for name, path in modules.items():
        if name == "lrcfuse_model._moved":
            continue
        for target, line in imported_names(name, path, modules):
            hit = next((o for o in old if target == o or target.startswith(o + ".")), None)
            assert hit is None, f"{path}:{line} imports the old path {hit}"


def test_old_module_paths_point_to_modules_that_exist() -> None:
    from lrcfuse_model._moved import MOVED

    modules = module_files()
    for old, homes in MOVED.items():
        assert f"lrcfuse_model.{old}" not in modules, f"{old} exists again as a module: drop it from MOVED"
        assert all(home in modules for home in homes), (old, homes)


def test_launch_file_imports_only_the_torch_free_malloc_settings() -> None:
    modules = module_files()
    found = {target for target, _ in imported_names("fusion_launch", LAUNCH_FILE, modules)}
    ours = {resolve(t, modules) for t in found if t.split(".")[0] in PACKAGES}
    assert ours == {"lrcfuse_model.malloc_tuning"}


def test_no_module_is_huge() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_files().items()}
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}
