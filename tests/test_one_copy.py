"""One copy of every data file: no two files of the repository (tests and fixtures aside, and
files of a few bytes such as an empty __init__.py) have the same content. Run-time data live
once, inside the package; generators write there directly."""
from __future__ import annotations

import hashlib
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from .conftest import ROOT

EXEMPT_TREES = ("tests", "fixtures")
SMALL_BYTES = 64  # an empty __init__.py, py.typed, a one-line docstring


def repository_files(root: Path) -> list[Path]:
    """The files git tracks, and the untracked ones it does not ignore."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                            capture_output=True, check=True).stdout.split(b"\0")
    return [root / name.decode() for name in listed if name and (root / name.decode()).is_file()]


def identical_files(root: Path, files: list[Path]) -> list[list[str]]:
    """Groups of files (outside the exempt trees, over SMALL_BYTES) with the same content."""
    by_digest: dict[str, list[str]] = defaultdict(list)
    for path in files:
        relative = path.relative_to(root)
        if relative.parts[0] in EXEMPT_TREES or path.stat().st_size <= SMALL_BYTES:
            continue
        by_digest[hashlib.sha256(path.read_bytes()).hexdigest()].append(str(relative))
    return sorted(sorted(group) for group in by_digest.values() if len(group) > 1)


def test_no_two_files_are_the_same():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the file list comes from git")
    assert identical_files(ROOT, repository_files(ROOT)) == []


def test_a_copy_is_found(tmp_path):
    """The check can fail: a copied data file is reported, small and exempt ones are not."""
    (tmp_path / "schemas").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()
    table = b'{"schema": "x", "ops": [' + b'"ADD", ' * 20 + b'"SUB"]}'
    for name in ("schemas/gpu.json", "pkg/gpu.json", "tests/gpu.json"):
        (tmp_path / name).write_bytes(table)
    for name in ("pkg/__init__.py", "schemas/__init__.py"):
        (tmp_path / name).write_bytes(b"")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert identical_files(tmp_path, files) == [["pkg/gpu.json", "schemas/gpu.json"]]
