"""The import direction of design.md holds, and the check really catches a wrong-way import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "api",
    "cli",
    "config",
    "core",
    "domain",
    "integrations",
    "miniprogram_bridge",
    "notifications",
    "workers",
]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_import_direction_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


LOWER_LAYERS = ["miniprogram_bridge", "api", "notifications", "domain", "integrations", "core", "config"]


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_below_the_entry_points_imports_the_factory_or_wsgi():
    offenders = [
        str(path.relative_to(ROOT))
        for layer in LOWER_LAYERS
        for path in (ROOT / layer).rglob("*.py")
        if _imports_of(path) & {"factory", "wsgi", "cli", "workers"}
    ]
    assert offenders == []


def test_a_wrong_way_import_is_caught(tmp_path):
    copy = tmp_path / "tree"
    copy.mkdir()
    for name in PACKAGES:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("factory.py", "wsgi.py", "pyproject.toml"):
        shutil.copy(ROOT / name, copy / name)
    # core must never import the domain layer.
    (copy / "core" / "wrong_way.py").write_text("from domain.accounts import service  # noqa\n")
    result = _lint_imports(copy)
    assert result.returncode != 0
    assert "core.wrong_way -> domain.accounts" in result.stdout


def _reads_the_global_encryptor(path: Path) -> bool:
    """`from core.crypto import crypto`, or `core.crypto.crypto` reached through `import core.crypto`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "core.crypto":
            if any(alias.name == "crypto" for alias in node.names):
                return True
        elif isinstance(node, ast.Attribute) and node.attr == "crypto":
            if ast.unparse(node.value) == "core.crypto":
                return True
    return False


def test_only_the_factory_reads_the_process_wide_encryptor():
    """Views, tasks and commands take the Encryptor from the services of the app they run in
    (api.deps.services()): `core.crypto.crypto` is rebound by every app a process builds (tests
    build several), so code reading it could use another app's keys."""
    sources = [p for name in PACKAGES if name != "core" for p in (ROOT / name).rglob("*.py")]
    offenders = [
        str(p.relative_to(ROOT)) for p in [*sources, ROOT / "wsgi.py"] if _reads_the_global_encryptor(p)
    ]
    assert offenders == []
    assert _reads_the_global_encryptor(ROOT / "factory.py")  # the check sees what it looks for
