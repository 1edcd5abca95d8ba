"""The core lane stays healthy without a venv of its own: the suite, run here with TensorFlow,
LiteRT and the other test extras made unimportable (as in a core-only install, `make
test-fast`), collects every module and passes or skips every test."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REQUIRES, ROOT, installed

# What a core-only install lacks: the module of every marker that skips a test, and Keras 3
# (which comes with TensorFlow).
ABSENT = sorted({*REQUIRES.values(), "keras"})
MIN_PASSED = 350

# Run first by every Python that has it on PYTHONPATH, the suite's child processes too: each
# meta path finder is asked for every module but the absent ones, so `import` raises
# ModuleNotFoundError for them and importlib.util.find_spec returns None, as when they are
# not installed, and sys.modules never holds them.
SITECUSTOMIZE = """import sys

ABSENT = frozenset({absent!r})


class WithoutAbsent:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            return None
        return self.finder.find_spec(name, path, target)

    def invalidate_caches(self):
        if hasattr(self.finder, "invalidate_caches"):
            self.finder.invalidate_caches()

    def find_distributions(self, *args, **kwargs):
        if hasattr(self.finder, "find_distributions"):
            return self.finder.find_distributions(*args, **kwargs)
        return iter(())


sys.meta_path[:] = [WithoutAbsent(finder) for finder in sys.meta_path]
"""


def without_extras(tmp_path: Path) -> dict[str, str]:
    """The environment of a child process in which the ABSENT modules cannot be imported."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE.format(absent=ABSENT))
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


# In a child with the blocker: each absent module is neither found nor importable, nor
# imported by what the core lane imports.
LOOKS_UNINSTALLED = """import importlib, importlib.util, sys

absent = sys.argv[1:]
for name in absent:
    assert importlib.util.find_spec(name) is None, name
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        continue
    raise AssertionError(f"{name} imported")
import graphtool.cli.main, pytest, hypothesis
assert not {m.partition(".")[0] for m in sys.modules} & set(absent)
"""


def test_the_extras_look_uninstalled_to_a_child(tmp_path):
    result = subprocess.run([sys.executable, "-c", LOOKS_UNINSTALLED, *ABSENT], env=without_extras(tmp_path),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not any(map(installed, ABSENT)),
                    reason="none of the test extras is installed: this run is the core lane already")
def test_the_suite_passes_or_skips_without_the_extras(tmp_path):
    """The fast tests, this file left out (it would run itself again)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                             "--basetemp", str(tmp_path / "run"), "--ignore", str(Path(__file__))],
                            cwd=ROOT, env=without_extras(tmp_path), capture_output=True, text=True, timeout=900)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    counts = {word.rstrip("s"): int(number) for number, word in re.findall(r"(\d+) (\w+)", summary)}
    report = f"{summary}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, report
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, report
    assert counts.get("passed", 0) >= MIN_PASSED and counts.get("skipped", 0) > 0, report
