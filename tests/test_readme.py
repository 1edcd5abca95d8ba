"""README's transform reference is the registry's, and its quick start is the two commands."""
import importlib.util

from .conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transform_reference_matches_the_registry():
    script = _script()
    assert script.current_block(script.README.read_text()) == script.expected_block(), \
        "README's transform reference is stale: run `make readme`"


def test_quick_start_is_make_demo_and_make_test():
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start"):]
    block = quick[quick.index("```sh") + 5:quick.index("```", quick.index("```sh") + 5)]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
