"""The lab/report import circle stays broken: no lab module imports the report, and the report imports
from the lab only the store's schema module (it reads a run directory)."""

from __future__ import annotations

import ast
from pathlib import Path

import prunequant

ROOT = Path(prunequant.__file__).parent


def imports(package: str) -> dict[str, set[str]]:
    """{module file: every prunequant module it imports (top level or inside functions)}."""
    found = {}
    for path in sorted((ROOT / package).glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = {name for name in names if name.startswith("prunequant")}
    return found


def test_no_lab_module_imports_the_report():
    offenders = {f: n for f, n in imports("lab").items() if any(m.startswith("prunequant.report") for m in n)}
    assert offenders == {}


def test_the_report_reads_only_the_store_schema_of_the_lab():
    used = {m for names in imports("report").values() for m in names if m.startswith("prunequant.lab")}
    assert used == {"prunequant.lab.store"}
