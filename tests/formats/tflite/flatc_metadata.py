"""An independent reader of TFLite Support metadata: the Python flatc generates from the official
metadata_schema.fbs (tests/data/, tensorflow/tflite-support's, licence header kept), not
graphtool's codec. tflite-support itself cannot be installed beside protobuf >= 4."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

FBS = Path(__file__).resolve().parents[2] / "data" / "metadata_schema.fbs"
MODULE = "flatc_metadata_schema_generated"


def flatc() -> str:
    """The flatc command; the test skips where it is not installed."""
    found = shutil.which("flatc")
    if found is None:
        pytest.skip("needs flatc (Debian: apt-get install flatbuffers-compiler; .ci/run installs it)")
    return found


def flatc_metadata_module(directory: Path) -> ModuleType:
    """metadata_schema.fbs compiled by flatc (object API) into `directory` and imported."""
    subprocess.run([flatc(), "--python", "--gen-object-api", "--gen-onefile", "-o", str(directory), str(FBS)],
                   check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location(MODULE, directory / "metadata_schema_generated.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module  # the generated classes refer to each other through their module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def flatc_metadata(tmp_path_factory) -> ModuleType:
    return flatc_metadata_module(tmp_path_factory.mktemp("flatc_metadata"))
