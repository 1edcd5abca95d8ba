"""A non-editable install carries everything graphtool needs at run time."""
import os
import subprocess
import sys

import pytest

from .conftest import GRAPHDEF_FIXTURES


@pytest.mark.slow
def test_non_editable_install_has_the_generated_proto_module(non_editable_install, tmp_path):
    target = non_editable_install
    assert (target / "graphtool" / "formats" / "graphdef" / "_proto" / "graphtool_graphdef_pb2.py").exists()
    assert not (target / "graphtool" / "tests").exists()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = "import graphtool, sys; g = graphtool.load(sys.argv[1]); print(graphtool.__file__, len(g))"
    run = subprocess.run([sys.executable, "-c", code, str(GRAPHDEF_FIXTURES / "keras2_cnn.pb")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(target))
