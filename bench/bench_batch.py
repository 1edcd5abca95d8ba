"""`graphtool check` on a whole model zoo in one command,
`graphtool check DIR --target gpu --jobs 2`, against one CLI run per model, the shell loop
`for f in DIR/*.tflite; do graphtool check "$f" --target gpu; done`: wall clock of each from a
fresh shell, median of 3 runs, interleaved. Target: the one command in at most 0.3× the loop's
time.

The zoo: ZOO's tf_keras models (MLPs, CNNs, MobileNet v1/v2/v3, a ResNet-style and a U-Net-style
net, an autoencoder, LSTM, GRU, Conv1D and Transformer blocks; two with the converter's int8
weights), seeded random weights, converted to TFLite into bench/models/batch_zoo/ on first use
(0.1 to 7 MB each). Before timing, the one command's JSON Lines must hold, for every model,
the very verdict and findings `graphtool check FILE --target gpu --json` prints, or the run fails.
A second row runs the one command with `--jobs 1` (one process, no pool): how much comes from
starting Python and graphtool once, how much from the two workers.

    python bench/bench_batch.py      # print the figures
    python bench/run.py bench_batch  # and rewrite this benchmark's section of BENCHMARKS.md
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from bench_inspect import cold_medians, format_rows
from make_models import MODELS_DIR, _fresh_keras, _to_tflite

ZOO_DIR = MODELS_DIR / "batch_zoo"
GRAPHTOOL = str(Path(sys.executable).parent / "graphtool")  # the console script, as a user runs it
TARGET = "gpu"
JOBS = 2
REPEATS = 3
GOAL = 0.3  # the one command's time over the loop's, at most
MIN_MODELS, MIN_MB, MAX_MB = 14, 0.1, 7.0
# `"$@"; exit 0 or 1 is fine` (1: some model is not compatible), and the loop, as a user types it
ONE_COMMAND = '"$@" > /dev/null; test $? -le 1'
LOOP = 'for f in "$1"/*.tflite; do "$0" check "$f" --target gpu > /dev/null || test $? -eq 1 || exit; done'


# -- the zoo ----------------------------------------------------------------------------------------

def _mlp(widths: tuple[int, ...]) -> Callable[[], Any]:
    def build():
        keras = _fresh_keras()
        inputs = keras.Input((widths[0],))
        x = inputs
        for i, width in enumerate(widths[1:]):
            x = keras.layers.Dense(width, activation="relu" if i < len(widths) - 2 else None)(x)
        return keras.Model(inputs, x)
    return build


def _cnn(side: int, channels: int, filters: tuple[int, ...], dense: int) -> Callable[[], Any]:
    def build():
        keras = _fresh_keras()
        layers = keras.layers
        stack = [keras.Input((side, side, channels))]
        for width in filters:
            stack += [layers.Conv2D(width, 3, padding="same", activation="relu"), layers.MaxPooling2D()]
        stack += [layers.Flatten(), layers.Dense(dense, activation="relu"), layers.Dense(10)]
        return keras.Sequential(stack)
    return build


def _application(name: str, side: int, **options: Any) -> Callable[[], Any]:
    def build():
        keras = _fresh_keras()
        return getattr(keras.applications, name)(input_shape=(side, side, 3), weights=None, **options)
    return build


def _resnet_blocks():
    keras = _fresh_keras()
    layers = keras.layers
    inputs = keras.Input((64, 64, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    for width in (32, 64, 128):
        shortcut = layers.Conv2D(width, 1, strides=2, padding="same")(x)
        h = layers.Conv2D(width, 3, strides=2, padding="same")(x)
        h = layers.ReLU()(layers.BatchNormalization()(h))
        h = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same")(h))
        x = layers.ReLU()(layers.Add()([shortcut, h]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(100)(x))


def _unet():
    keras = _fresh_keras()
    layers = keras.layers
    inputs = keras.Input((64, 64, 3))
    skips, x = [], inputs
    for width in (32, 64, 128):
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)
    for width, skip in zip((128, 64, 32), reversed(skips)):
        x = layers.Concatenate()([layers.UpSampling2D()(x), skip])
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.Conv2D(2, 1)(x))


def _autoencoder():
    keras = _fresh_keras()
    layers = keras.layers
    return keras.Sequential([
        keras.Input((64, 64, 3)),
        layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(128, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(128, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(3, 3, padding="same", activation="sigmoid")])


def _recurrent(layer: str, units: int, steps: int, features: int) -> Callable[[], Any]:
    def build():
        keras = _fresh_keras()
        cell = getattr(keras.layers, layer)
        return keras.Sequential([keras.Input((steps, features)), cell(units, return_sequences=True), cell(units),
                                 keras.layers.Dense(12)])
    return build


def _conv1d():
    keras = _fresh_keras()
    layers = keras.layers
    stack = [keras.Input((4000, 1))]
    for width in (64, 128, 128, 128):
        stack += [layers.Conv1D(width, 9, padding="same", activation="relu"), layers.MaxPooling1D(4)]
    return keras.Sequential(stack + [layers.GlobalAveragePooling1D(), layers.Dense(35)])


def _transformer():
    keras = _fresh_keras()
    layers = keras.layers
    inputs = keras.Input((32, 128))
    x = inputs
    for _ in range(2):
        attended = layers.MultiHeadAttention(num_heads=4, key_dim=32)(x, x)
        x = layers.LayerNormalization()(layers.Add()([x, attended]))
        h = layers.Dense(128)(layers.Dense(512, activation="gelu")(x))
        x = layers.LayerNormalization()(layers.Add()([x, h]))
    return keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling1D()(x)))


Builder = Callable[[], Any]
# file name in ZOO_DIR -> (builder of a tf_keras model, input shape, int8 weights?)
ZOO: dict[str, tuple[Builder, tuple[int, ...], bool]] = {
    "mlp_784_256_128.tflite": (_mlp((784, 256, 128, 10)), (1, 784), False),
    "mlp_1024_1024_512.tflite": (_mlp((1024, 1024, 512, 10)), (1, 1024), False),
    "mlp_1024_1024_512_int8w.tflite": (_mlp((1024, 1024, 512, 10)), (1, 1024), True),
    "cnn_digits.tflite": (_cnn(8, 1, (16, 32), 256), (1, 8, 8, 1), False),
    "cnn_32x32.tflite": (_cnn(32, 3, (32, 64, 64), 128), (1, 32, 32, 3), False),
    "mobilenet_v1_025_128.tflite": (_application("MobileNet", 128, alpha=0.25, classes=100), (1, 128, 128, 3), False),
    "mobilenet_v1_050_160.tflite": (_application("MobileNet", 160, alpha=0.5), (1, 160, 160, 3), False),
    "mobilenet_v1_050_160_int8w.tflite": (_application("MobileNet", 160, alpha=0.5), (1, 160, 160, 3), True),
    "mobilenet_v2_035_96.tflite": (_application("MobileNetV2", 96, alpha=0.35, classes=10), (1, 96, 96, 3), False),
    "mobilenet_v2_050_128.tflite": (_application("MobileNetV2", 128, alpha=0.5, classes=200), (1, 128, 128, 3),
                                    False),
    "mobilenet_v3_small_075.tflite": (_application("MobileNetV3Small", 96, alpha=0.75, minimalistic=True,
                                                   classes=10), (1, 96, 96, 3), False),
    "mobilenet_v3_small_100.tflite": (_application("MobileNetV3Small", 128, classes=100), (1, 128, 128, 3), False),
    "resnet_blocks.tflite": (_resnet_blocks, (1, 64, 64, 3), False),
    "unet_64.tflite": (_unet, (1, 64, 64, 3), False),
    "autoencoder_64.tflite": (_autoencoder, (1, 64, 64, 3), False),
    "lstm_2x128.tflite": (_recurrent("LSTM", 128, 50, 40), (1, 50, 40), False),
    "gru_2x96.tflite": (_recurrent("GRU", 96, 100, 32), (1, 100, 32), False),
    "conv1d_audio.tflite": (_conv1d, (1, 4000, 1), False),
    "transformer_2x128.tflite": (_transformer, (1, 32, 128), False),
}


def build_models() -> list[Path]:
    """Build the zoo's missing models into ZOO_DIR (TensorFlow is imported only then); every path."""
    ZOO_DIR.mkdir(parents=True, exist_ok=True)
    for name, (builder, shape, int8_weights) in ZOO.items():
        path = ZOO_DIR / name
        if not path.exists():
            print(f"building {path} ...", file=sys.stderr, flush=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(_to_tflite(builder(), shape, int8_weights=int8_weights))
            tmp.replace(path)
    return [ZOO_DIR / name for name in sorted(ZOO)]


# -- the runs -------------------------------------------------------------------------------------

def one_command(jobs: int) -> list[str]:
    return ["bash", "-c", ONE_COMMAND, "-", GRAPHTOOL, "check", str(ZOO_DIR), "--target", TARGET, "--jobs", str(jobs)]


def the_loop() -> list[str]:
    return ["bash", "-c", LOOP, GRAPHTOOL, str(ZOO_DIR)]


def _json(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def check_agree(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Every model's line of the one command's JSON Lines against its own `graphtool check
    --json`; raises on a difference. The lines, by file name."""
    lines = [json.loads(line) for line in _json([GRAPHTOOL, "check", str(ZOO_DIR), "--target", TARGET,
                                                  "--jobs", str(JOBS), "--json"]).splitlines()]
    if [line["path"] for line in lines] != [str(path) for path in paths]:
        raise AssertionError(f"the one command checked {[line['path'] for line in lines]}, not the zoo")
    for line, path in zip(lines, paths):
        alone = json.loads(_json([GRAPHTOOL, "check", str(path), "--target", TARGET, "--json"]))
        if {key: line[key] for key in alone} != alone:
            raise AssertionError(f"{path.name}: the one command says {line}, a run of its own {alone}")
    return {Path(line["path"]).name: line for line in lines}


def run() -> list[dict[str, Any]]:
    paths = build_models()
    sizes = [path.stat().st_size / 1e6 for path in paths]
    if len(paths) < MIN_MODELS or not all(MIN_MB <= size <= MAX_MB for size in sizes):
        raise AssertionError(f"the zoo must hold {MIN_MODELS}+ models of {MIN_MB}-{MAX_MB} MB: "
                             f"{dict(zip((p.name for p in paths), sizes))}")
    lines = check_agree(paths)
    times = cold_medians({"loop": the_loop(), **{f"jobs {jobs}": one_command(jobs) for jobs in (JOBS, 1)}}, REPEATS)
    loop_s, loop_rss = times["loop"]["seconds"], times["loop"]["peak_rss_mb"]
    title = (f"check a zoo of {len(paths)} TFLite models ({min(sizes):.1f}–{max(sizes):.1f} MB, "
             f"{sum(sizes):.0f} MB in all) in one command")
    rows = []
    for jobs in (JOBS, 1):
        seconds, rss = times[f"jobs {jobs}"]["seconds"], times[f"jobs {jobs}"]["peak_rss_mb"]
        share = seconds / loop_s
        rows.append({"benchmark": title, "mode": f"`graphtool check DIR --target {TARGET} --jobs {jobs}` "
                                                 f"(median of {REPEATS})",
                     "graphtool_s": seconds, "anchor": f"`graphtool check FILE --target {TARGET}` per model, "
                                                       f"a shell loop of {len(paths)} runs",
                     "anchor_s": loop_s, "ratio": loop_s / seconds, "graphtool_peak_rss_mb": rss,
                     "anchor_peak_rss_mb": loop_rss, "jobs": jobs, "share": share,
                     "columns": {"Time / loop's": f"{share:.2f}×",
                                 f"Target ≤ {GOAL}×": "met" if share <= GOAL else "not met"}})
    rows[0]["zoo"] = [(path.name, size, lines[path.name]) for path, size in zip(paths, sizes)]
    return rows


def notes(rows: list[dict[str, Any]]) -> str:
    pooled, alone = rows
    zoo = pooled["zoo"]
    per_model = pooled["anchor_s"] / len(zoo)
    listed = "; ".join(f"`{name}` {size:.2f} MB, {line['operators']} operators, {line['verdict']}"
                       for name, size, line in zoo)
    change = alone["graphtool_s"] / pooled["graphtool_s"] - 1
    compared = "about as fast" if abs(change) < 0.1 else f"{abs(change):.0%} {'slower' if change > 0 else 'faster'}"
    return (f"One command with `--jobs {pooled['jobs']}` takes {pooled['share']:.2f}× the loop's time "
            f"({pooled['graphtool_s']:.2f} s against {pooled['anchor_s']:.2f} s for {len(zoo)} models): the target "
            f"(≤ {GOAL}×) is **{'met' if pooled['share'] <= GOAL else 'not met'}**. The loop pays a Python start "
            f"and a graphtool import per model ({per_model:.2f} s each here); the one command pays them once, and "
            f"loading and checking one of these models takes milliseconds, so its time is mostly that one start. "
            f"`--jobs 1` (no pool: the command's own process) was {compared} here ({alone['graphtool_s']:.2f} s): "
            f"with models this quick, a second worker has little to take over, and forking the workers and "
            f"sending the results back costs time too; the pool pays where a model takes longer to load and "
            f"check than a worker takes to start. "
            f"Peak RSS is that of the largest process.\n\nThe zoo: {listed}.")


if __name__ == "__main__":
    print(format_rows(run()))
