"""The core stays pure: protocol/ and crypto/ import no I/O library and no node code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"trio", "libp2p", "plyvel", "socket", "node", "hypercorn", "starlette", "asyncio", "time"}
PURE = sorted(p for d in ("protocol", "crypto") for p in (ROOT / d).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            roots.update(a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            roots.add(n.module.split(".")[0])
    return roots


def test_there_are_pure_modules() -> None:
    assert len(PURE) >= 5


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_pure(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_crypto_does_not_import_protocol() -> None:
    for path in sorted((ROOT / "crypto").rglob("*.py")):
        assert "protocol" not in imported_roots(path), path
