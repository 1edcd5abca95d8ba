"""Install hints name graphtool's own distribution (the PyPI project "graphtool" is another,
unrelated one): every `pip install X` in the package, the README and docs/ names ours, or
this tree, and the metadata says the same name."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from graphtool.errors import DISTRIBUTION, install_hint

from .conftest import ROOT

# `pip install X`: X up to the next space, quotes and extras stripped.
PIP_INSTALL = re.compile(r"pip install (?:-e |-q |--upgrade )*['\"]?([A-Za-z0-9_.{}\-]+)")
LOCAL_TREE = {".", "-e"}
TEXTS = ("graphtool/**/*.py", "README.md", "docs/*.md")


def named_distributions(text: str) -> set[str]:
    """The distributions `pip install` commands in `text` name (the local tree as ".")."""
    return {match.group(1) for match in PIP_INSTALL.finditer(text)}


def test_the_metadata_names_our_distribution():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["name"] == DISTRIBUTION
    assert "graphtool" in config["options.entry_points"]["console_scripts"]  # the command keeps its name


def test_the_hint_installs_our_distribution_with_the_extra():
    assert install_hint("tf") == f"pip install '{DISTRIBUTION}[tf]'"


@pytest.mark.parametrize("pattern", TEXTS)
def test_every_hint_names_our_distribution(pattern):
    foreign = {}
    for path in sorted(ROOT.glob(pattern)):
        names = named_distributions(path.read_text(encoding="utf-8")) - LOCAL_TREE - {DISTRIBUTION, "{DISTRIBUTION}"}
        if names:
            foreign[str(path.relative_to(ROOT))] = sorted(names)
    assert not foreign, f"install hints naming another distribution: {foreign}"


def test_a_foreign_hint_is_found():
    assert named_distributions("needs TensorFlow: pip install 'graphtool[tf]'") == {"graphtool"}
    assert named_distributions(f'{install_hint("litert")}; or pip install -e ".[test]"') == {DISTRIBUTION, "."}
