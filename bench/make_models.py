"""Build the benchmark models into bench/models/ (gitignored; rebuilt on demand).

    python bench/make_models.py            # build the missing ones
    python bench/make_models.py --force    # rebuild all of them

Each model is a frozen GraphDef made with TensorFlow from random (seeded) weights:
nothing is downloaded. Add a model by adding a builder to MODELS.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from quiet_tf import import_tensorflow  # sets TF_CPP_MIN_LOG_LEVEL=3 before TensorFlow loads

MODELS_DIR = Path(__file__).resolve().parent / "models"
SEED = 0


def _freeze(model, input_shape: tuple[int | None, ...]) -> bytes:
    """A Keras model as frozen GraphDef bytes: inference mode, variables as constants."""
    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec(input_shape, tf.float32, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    return frozen.graph.as_graph_def().SerializeToString(deterministic=True)


def build_resnet50() -> bytes:
    """tf_keras ResNet50 with random weights (~100 MB of float32 constants)."""
    import_tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(SEED)
    model = tf_keras.applications.ResNet50(weights=None)
    return _freeze(model, (None, 224, 224, 3))


# file name in MODELS_DIR -> builder returning the file's bytes
MODELS: dict[str, Callable[[], bytes]] = {
    "resnet50_frozen.pb": build_resnet50,
}


def model_path(name: str) -> Path:
    """Where the model `name` lives (built or not)."""
    return MODELS_DIR / name


def _write(path: Path, data: bytes) -> None:
    """Write atomically, so an interrupted build never leaves a truncated model."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_models(force: bool = False, names: list[str] | None = None) -> list[Path]:
    """Build every model in `names` (default: all) that is missing, or all with `force`."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or list(MODELS):
        path = model_path(name)
        if force or not path.exists():
            print(f"building {path} ...", file=sys.stderr, flush=True)
            _write(path, MODELS[name]())
        print(f"{path}: {path.stat().st_size:,} bytes", file=sys.stderr)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild models that already exist")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to build (default: all of {', '.join(MODELS)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    ensure_models(force=args.force, names=args.names or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
