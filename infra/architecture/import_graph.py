"""The import graph of the core package, folded to its role folders: the architecture as it really is.

    python infra/architecture/import_graph.py            # print the Mermaid diagram
    python infra/architecture/import_graph.py --readme   # rewrite the README's diagram block

grimp (import-linter's graph builder) reads every import, including those inside functions.
tests/unit/test_architecture.py fails when the README's diagram no longer matches the code.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ROLES = ("entrypoints", "local", "bootstrap", "adapters", "services", "settings", "domain")
START, END = "<!-- import-graph:start -->", "<!-- import-graph:end -->"


def role_edges() -> list[tuple[str, str]]:
    """(importer role, imported role) for every import between role folders of churnguard."""
    import grimp

    sys.path.insert(0, str(ROOT / "shared"))
    graph = grimp.build_graph("churnguard")

    def role(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in ROLES else None

    edges = set()
    for module in graph.modules:
        importer = role(module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = role(imported)
            if importer and target and importer != target:
                edges.add((importer, target))
    return sorted(edges, key=lambda e: (ROLES.index(e[0]), ROLES.index(e[1])))


def mermaid(edges: list[tuple[str, str]]) -> str:
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"  {a} --> {b}" for a, b in edges]
    lines.append("```")
    return "\n".join(lines)


def readme_block() -> str | None:
    m = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), README.read_text(), re.S)
    return m.group(1) if m else None


def write_readme(diagram: str) -> None:
    text = README.read_text()
    block = f"{START}\n{diagram}\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    README.write_text(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readme", action="store_true", help="rewrite the README's diagram block")
    diagram = mermaid(role_edges())
    if ap.parse_args().readme:
        write_readme(diagram)
    print(diagram)
