"""Reading, writing and inspecting a GraphDef never import TensorFlow."""
import subprocess
import sys

from .conftest import GRAPHDEF_FIXTURES

HEAVY = "sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'ai_edge_litert'))"

LIBRARY = f"""
import sys, graphtool
from graphtool.formats import graphdef
for path in sys.argv[1:]:
    graph = graphtool.load(path)
    graphtool.inspect(graph, structure=True)
    graphdef.write(graph)
    graphdef.write(graph, text=True)
    for node in graph:
        for tensor in node.outputs:
            tensor.data
print({HEAVY})
"""

CLI = f"""
import sys
from graphtool.cli import main
main(['inspect', '--json', sys.argv[1]])
print({HEAVY})
"""


def test_load_inspect_write_leave_tensorflow_unimported():
    paths = [str(p) for p in sorted(GRAPHDEF_FIXTURES.glob("*.pb*"))]
    assert paths
    result = subprocess.run([sys.executable, "-c", LIBRARY, *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_inspect_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-c", CLI, str(GRAPHDEF_FIXTURES / "keras2_cnn.pb")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
