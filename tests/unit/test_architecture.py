"""The architecture, checked: handlers go through bootstrap, and the README's import graph is the real one.

Which role may import which (and that no module imports boto3 outside adapters and bootstrap, and
that there are no cycles) is import-linter's job, in `make lint` (the contracts are in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

from infra.architecture.import_graph import mermaid, readme_block, role_edges

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
# What a handler may import besides the standard library: its runtime libraries and the core's two doors.
ALLOWED_THIRD_PARTY = {"aws_lambda_powertools", "mangum", "snapshot_restore_py"}
ALLOWED_CORE = ("churnguard.bootstrap", "churnguard.entrypoints")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_every_handler_imports_only_bootstrap_and_entrypoints_of_the_core():
    import sys

    assert len(HANDLERS) >= 7
    for handler in HANDLERS:
        for name in _imports(handler):
            top = name.split(".")[0]
            if top == "churnguard":
                assert name.startswith(ALLOWED_CORE), f"{handler.relative_to(ROOT)} imports {name}"
            else:
                ok = top in sys.stdlib_module_names or top == "__future__" or top in ALLOWED_THIRD_PARTY
                assert ok, f"{handler.relative_to(ROOT)} imports {name} (boto3 and friends belong in adapters)"


def test_the_readme_shows_the_import_graph_as_it_is():
    edges = role_edges()
    # The arrows run one way: nothing below imports anything above.
    order = ["entrypoints", "local", "bootstrap", "adapters", "services", "settings", "domain"]
    assert all(order.index(a) < order.index(b) for a, b in edges if {a, b} != {"entrypoints", "local"}), edges
    assert ("entrypoints", "local") in edges and ("local", "entrypoints") not in edges
    assert readme_block() == mermaid(edges), "run: python infra/architecture/import_graph.py --readme"
