"""Save the capstone's model with one TensorFlow/Keras pair and load it with another (issue 31).

    python benchmarks/capstone_loading.py run --python ENV_A/bin/python --python ENV_B/bin/python ...
    python benchmarks/capstone_loading.py run --size 64 --out ../loading-64.json   # this interpreter alone

The original capstone wrapped `keras.applications.EfficientNetB0` as one layer of a `Sequential`
(augmentation, Rescaling(1/255), the backbone, GAP, Dropout(0.5), Dense(2, softmax)); its Hugging Face
Space, with another Keras than the Colab that trained it, could not load the saved model. `run` makes
every interpreter given (one per TensorFlow/Keras pair; this one when none is given) save, each in a
folder of its own:

    capstone_stage1.{keras,h5,weights.h5}  after one training step with the backbone frozen (Adam 1e-3)
    capstone_stage2.{keras,h5,weights.h5}  after one more with the backbone's top 30 layers unfrozen (1e-4)
    project/                               helpers' flat detector after the same two steps (its own
                                           stage 2: whole blocks), saved by helpers.saving.save_model

and then every interpreter loads every folder, each file in every way below, and scores the fixed
input the saving interpreter scored: a case is (saved with, loaded with, artefact, way), and records
whether it loaded, the exception's type and first line (and Keras' "Exception encountered" line, the
real cause, which Keras puts at the end of a long message), and the largest difference in outputs.

    capstone .keras / .h5  plain | compile=False | custom_objects, compile=False (the capstone's workaround)
    capstone .weights.h5   the capstone rebuilt here, then load_weights
    project                model.keras plain | model.keras compile=False (helpers' first try) |
                           model.weights.h5 into build_classifier (helpers' fallback) |
                           helpers.saving.load_model (the whole path; which way it took)

ImageNet weights cannot be downloaded here and do not change the architecture: backbones are built
with weights=None. Side environments: benchmarks/README.md. Writes benchmarks/deploy/capstone_loading.json.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from helpers import config, files

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT = REPO_ROOT / "benchmarks" / "deploy" / "capstone_loading.json"
SEED = config.SEED
SIZE = 224  # the capstone's input size
TOP_LAYERS = 30  # the capstone's stage 2: "the top 30 layers" of the backbone unfrozen
PROJECT_BLOCKS = 2  # the project's stage 2 here: whole top blocks, BatchNorm frozen
BATCH = 4  # images in the one training batch of each stage (random pixels, seeded)
TOLERANCE = 1e-4  # outputs are "the same" within this (softmax probabilities; float32 kernels of other versions)
SAVED = "saved.json"
CAPSTONE_FORMATS = ("keras", "h5")
PROJECT_WAYS = ("model.keras plain", "model.keras compile=False", "model.weights.h5 into build_classifier",
                "helpers.saving.load_model")
STAGES = ("capstone_stage1", "capstone_stage2")
WORKAROUNDS = ("compile=False", "custom_objects, compile=False")  # the capstone's, one at a time and together


# ----------------------------------------------------------------------------- the models


def build_capstone(size: int):
    """The capstone's model as it was built: (model, backbone). Layer names are Keras' defaults, as there."""
    import keras
    from keras import layers

    augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1),
                                     layers.RandomZoom(0.1)], name="data_augmentation")
    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(size, size, 3))
    backbone.trainable = False
    model = keras.Sequential([keras.Input(shape=(size, size, 3)), augmentation, layers.Rescaling(1.0 / 255),
                              backbone, layers.GlobalAveragePooling2D(), layers.Dropout(0.5),
                              layers.Dense(2, activation="softmax")])
    return model, backbone


def unfreeze_capstone_top(backbone, n_layers: int = TOP_LAYERS) -> None:
    """The capstone's stage 2: the backbone trainable, all but its last `n_layers` frozen again."""
    backbone.trainable = True
    for layer in backbone.layers[:-n_layers]:
        layer.trainable = False


def capstone_custom_objects() -> dict:
    """custom_objects naming every layer class the capstone's model uses (its own dictionary is not known)."""
    import keras

    names = ("RandomFlip", "RandomRotation", "RandomZoom", "Rescaling", "Normalization", "GlobalAveragePooling2D",
             "Dropout", "Dense", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "Activation", "ZeroPadding2D",
             "Multiply", "Add", "Reshape")
    return {"Sequential": keras.Sequential, **{name: getattr(keras.layers, name) for name in names}}


def build_project(size: int):
    """helpers' flat detector: EfficientNet-B0's layers in the model's own graph, no nested model."""
    from helpers import classifier

    return classifier.build_classifier("efficientnet_b0", size, weights=None)


def project_metadata(size: int) -> dict:
    """The sidecar keys helpers.saving needs to rebuild the detector."""
    return {"backbone": "efficientnet_b0", "image_size": size, "class_names": ["real", "fake"], "threshold": 0.5,
            "augmentations": ["flip", "rotation", "zoom"]}


def train_step(model, size: int, learning_rate: float, compile_model, fit: bool = True) -> None:
    """Compile with `compile_model(model, learning_rate)`, then (if `fit`) one epoch of one seeded random batch."""
    compile_model(model, learning_rate)
    if not fit:
        return
    rng = np.random.default_rng(SEED)
    images = rng.uniform(0, 255, (BATCH, size, size, 3)).astype(np.float32)
    model.fit(images, np.arange(BATCH) % 2, batch_size=BATCH, epochs=1, verbose=0)


def compile_capstone(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def fixed_input(size: int) -> np.ndarray:
    """The two images every saved model is scored on, before saving and after each load."""
    return np.random.default_rng(SEED + 1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)


def scores(model, size: int) -> tuple[np.ndarray, str]:
    """The model's outputs on the fixed input in inference mode, and their structure ("array" or "list of N")."""
    outputs = model(fixed_input(size), training=False)
    if isinstance(outputs, (list, tuple)):
        structure = f"list of {len(outputs)}"
        outputs = outputs[0] if len(outputs) == 1 else outputs
    else:
        structure = "array"
    return np.asarray(outputs, dtype=np.float64), structure


# ----------------------------------------------------------------------------- save (in each environment)


def versions() -> dict:
    """What the results depend on: Python, TensorFlow, Keras and the libraries that read the files."""
    import h5py
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "platform": platform.platform()}


def label(found: dict) -> str:
    return f"tf{found['tensorflow']}-keras{found['keras']}"


def serialised_io(path: Path) -> dict:
    """How a .keras file records its nested or top-level model's inputs and outputs (config.json), and its Keras."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        written_by = json.loads(archive.read("metadata.json")).get("keras_version")
    nested = [layer for layer in config["config"].get("layers", []) if layer.get("class_name") == "Functional"]
    model = nested[0]["config"] if nested else config["config"]
    return {"keras_version": written_by, "model": model["name"], "nested": bool(nested),
            "input_layers": model["input_layers"], "output_layers": model["output_layers"]}


def _attempt(call) -> dict:
    """Run call(); {"ok": True} or the exception's type and first line."""
    try:
        call()
        return {"ok": True}
    except Exception as err:  # any failure is a result here
        return {"ok": False, **describe(err)}


def describe(err: Exception) -> dict:
    """The exception's type, its first line, and Keras' "Exception encountered" line when it wraps another."""
    text = str(err)
    found = text.rfind("Exception encountered:")
    cause = text[found + len("Exception encountered:"):].strip().splitlines()[0][:300] if found >= 0 else None
    first = text.strip().splitlines()[0][:300] if text.strip() else ""
    return {"error_type": type(err).__name__, "error": first, "cause": cause}


def save_all(directory: Path, size: int = SIZE, fit: bool = True) -> dict:
    """Train and save the capstone's model (both stages) and the project's detector; write saved.json.

    `fit=False` skips the training steps (each stage still compiles and freezes as it would): a quick check.
    """
    import keras

    from helpers import classifier, saving

    directory.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    record = {"versions": versions(), "size": size, "fit": fit, "artefacts": {}}
    model, backbone = build_capstone(size)
    for stage in STAGES:
        if stage == "capstone_stage1":
            train_step(model, size, 1e-3, compile_capstone, fit)
        else:
            unfreeze_capstone_top(backbone)
            train_step(model, size, 1e-4, compile_capstone, fit)
        outputs, _ = scores(model, size)
        record["artefacts"][stage] = {"outputs": outputs.tolist(), "saved": {
            "keras": _attempt(lambda: model.save(str(directory / f"{stage}.keras"))),
            "h5": _attempt(lambda: model.save(str(directory / f"{stage}.h5"))),
            "weights.h5": _attempt(lambda: model.save_weights(str(directory / f"{stage}.weights.h5")))}}
        if record["artefacts"][stage]["saved"]["keras"]["ok"]:
            record["artefacts"][stage]["serialised"] = serialised_io(directory / f"{stage}.keras")
    project = build_project(size)
    train_step(project, size, 1e-3, classifier.compile_model, fit)
    classifier.unfreeze_top_blocks(project, PROJECT_BLOCKS)
    train_step(project, size, 1e-4, classifier.compile_model, fit)
    outputs, _ = scores(project, size)
    folder = directory / "project"
    record["artefacts"]["project"] = {
        "outputs": outputs.tolist(),
        "saved": {"folder": _attempt(lambda: saving.save_model(project, folder, project_metadata(size)))}}
    if record["artefacts"]["project"]["saved"]["folder"]["ok"]:
        record["artefacts"]["project"]["serialised"] = serialised_io(folder / saving.MODEL_FILE)
    (directory / SAVED).write_text(json.dumps(record, indent=1) + "\n")
    return record


# ----------------------------------------------------------------------------- load (in each environment)


def _capstone_loaders(path: Path, fmt: str, size: int) -> dict:
    """Way -> call returning the loaded capstone model."""
    import keras

    if fmt == "weights.h5":
        def rebuild_and_load():
            model, _ = build_capstone(size)
            model.load_weights(path)
            return model
        return {"rebuild, load_weights": rebuild_and_load}
    options = {"plain": {}, WORKAROUNDS[0]: {"compile": False},
               WORKAROUNDS[1]: {"custom_objects": capstone_custom_objects(), "compile": False}}
    return {way: (lambda kwargs=kwargs: keras.saving.load_model(path, **kwargs)) for way, kwargs in options.items()}


def _project_loaders(folder: Path) -> dict:
    """Way -> call returning the loaded detector (and, for helpers' own path, which file it used)."""
    import keras

    from helpers import classifier, saving

    def rebuild():
        metadata = saving.read_metadata(folder)
        model = classifier.build_classifier(metadata["backbone"], metadata["image_size"], weights=None,
                                            augmentations=tuple(metadata["augmentations"]))
        model.load_weights(folder / saving.WEIGHTS_FILE)
        return model

    def helpers_path():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            model, _ = saving.load_model(folder)
        return model, ("rebuilt from model.weights.h5" if "rebuilding" in printed.getvalue() else "model.keras")

    path = folder / saving.MODEL_FILE
    return {"model.keras plain": lambda: keras.saving.load_model(path),
            "model.keras compile=False": lambda: keras.saving.load_model(path, compile=False, safe_mode=True),
            "model.weights.h5 into build_classifier": rebuild,
            "helpers.saving.load_model": helpers_path}


def _case(load, expected: list, size: int) -> dict:
    """Load, score the fixed input, compare with the saving environment's outputs."""
    import keras

    started = time.perf_counter()
    result = {"loaded": False, "error_type": None, "error": None, "cause": None, "route": None,
              "output_structure": None, "max_abs_diff": None, "same_outputs": None}
    try:
        model = load()
        if isinstance(model, tuple):
            model, result["route"] = model
        result["loaded"] = True
        outputs, result["output_structure"] = scores(model, size)
        result["max_abs_diff"] = float(np.max(np.abs(outputs - np.asarray(expected))))
        result["same_outputs"] = result["max_abs_diff"] <= TOLERANCE
    except Exception as err:  # any failure is a result here
        if result["loaded"]:  # it loaded, but could not score the input
            result["output_structure"] = "scoring failed"
        result.update(describe(err))
    result["seconds"] = round(time.perf_counter() - started, 2)
    keras.backend.clear_session()
    gc.collect()
    return result


def load_all(saved_dir: Path, ways: set[str] | None = None) -> list[dict]:
    """Every artefact in `saved_dir`, loaded every way (or only the `ways` named) here: one dict per case."""
    record = json.loads((saved_dir / SAVED).read_text())
    here, size = label(versions()), record["size"]
    cases = []

    def add(artefact, fmt, way, load, saved_ok, folder=None):
        if ways is not None and way not in ways:
            return
        base = {"saved_with": label(record["versions"]), "loaded_with": here, "artefact": artefact, "format": fmt,
                "way": way}
        if not saved_ok:
            cases.append({**base, "loaded": None, "skipped": "not saved by the saving environment"})
            return
        before = sorted(path.name for path in folder.iterdir()) if folder else None
        cases.append({**base, **_case(load, record["artefacts"][artefact]["outputs"], size)})
        if folder:  # Keras 3.4 extracts model.weights.h5 next to the .keras file it loads, then deletes it
            cases[-1]["files_removed"] = [name for name in before if not (folder / name).exists()]
        print(f"  {base['saved_with']} -> {here} {artefact}.{fmt} {way}: "
              f"{'loaded' if cases[-1]['loaded'] else cases[-1]['error_type']}", flush=True)

    for stage in STAGES:
        saved = record["artefacts"][stage]["saved"]
        for fmt in (*CAPSTONE_FORMATS, "weights.h5"):
            for way, load in _capstone_loaders(saved_dir / f"{stage}.{fmt}", fmt, size).items():
                add(stage, fmt, way, load, saved[fmt]["ok"])
    saved_ok = record["artefacts"]["project"]["saved"]["folder"]["ok"]
    for way in PROJECT_WAYS:  # each way on its own copy of the folder, as it was saved
        with tempfile.TemporaryDirectory(prefix="capstone-loading-") as work:
            folder = Path(work) / "project"
            if saved_ok:
                shutil.copytree(saved_dir / "project", folder)
            add("project", "folder", way, lambda: _project_loaders(folder)[way](), saved_ok, folder)
    return cases


# ----------------------------------------------------------------------------- run (across environments)


def _in(python: str, *args: str) -> None:
    """Run this script's subcommand in another interpreter, with the repository's helpers importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([python, str(Path(__file__).resolve()), *args], check=True, env=env)


def run(pythons: list[str], size: int, out: Path, work: Path) -> dict:
    """Save in every interpreter, load every folder in every interpreter, write the whole result to `out`."""
    started = time.perf_counter()
    folders = []
    for number, python in enumerate(pythons):
        folder = work / f"saved-{number}"
        print(f"saving with {python}", flush=True)
        _in(python, "save", str(folder), "--size", str(size))
        folders.append(folder)
    cases, environments = [], []
    for number, python in enumerate(pythons):
        print(f"loading with {python}", flush=True)
        answer = work / f"cases-{number}.json"
        _in(python, "load", *map(str, folders), "--json", str(answer))
        cases += json.loads(answer.read_text())
    for folder in folders:
        record = json.loads((folder / SAVED).read_text())
        environments.append({"label": label(record["versions"]), **record["versions"],
                             "serialised": {name: artefact.get("serialised")
                                            for name, artefact in record["artefacts"].items()},
                             "saved": {name: artefact["saved"]
                                       for name, artefact in record["artefacts"].items()}})
    result = {"issue": 31, "date": datetime.now(timezone.utc).date().isoformat(), "size": size,
              "seed": SEED, "tolerance": TOLERANCE, "top_layers_unfrozen": TOP_LAYERS,
              "project_blocks_unfrozen": PROJECT_BLOCKS,
              "command": "python benchmarks/capstone_loading.py run" + "".join(
                  f" --python {Path(p).parent.parent.name}/bin/python" for p in pythons) + f" --size {size}",
              "environments": environments, "cases": cases, "seconds": round(time.perf_counter() - started, 1)}
    files.write_json(out, result)
    print(f"wrote {out} ({len(cases)} cases, {result['seconds']} s)")
    return result


# ----------------------------------------------------------------------------- the tables in benchmarks/README.md


def outcome(case: dict) -> str:
    """A case in a few words: "ok", "ok, outputs differ", "not saved", or the failure's type and cause."""
    if case["loaded"] is None:
        return "not saved"
    if case["loaded"] and case["error_type"] is None:
        return "ok" if case["same_outputs"] else "ok, outputs differ"
    text = f"{case['error_type']}: {case['cause'] or case['error']}"
    return text.split(" Inputs received:")[0]  # the rest names tensors, which differ from run to run


def tables(result: dict) -> str:
    """Markdown for benchmarks/README.md: one grid (saved with x loaded with) per question, then the failures."""
    labels = [environment["label"] for environment in result["environments"]]
    by_key = {(case["saved_with"], case["loaded_with"], case["artefact"], case["format"], case["way"]): case
              for case in result["cases"]}
    failures: list[str] = []

    def code(case):
        text = outcome(case)
        if text.startswith("ok") or text == "not saved":
            return text
        if text not in failures:
            failures.append(text)
        return f"E{failures.index(text) + 1}"

    def grid(title, cell):
        rows = [f"**{title}**", "", "| saved with \\ loaded with | " + " | ".join(labels) + " |",
                "| --- " * (len(labels) + 1) + "|"]
        rows += [f"| {saver} | " + " | ".join(cell(saver, loader) for loader in labels) + " |" for saver in labels]
        return "\n".join(rows)

    def capstone(fmt, way):
        return lambda saver, loader: code(by_key[saver, loader, "capstone_stage2", fmt, way])

    def helpers_path(saver, loader):
        case = by_key[saver, loader, "project", "folder", "helpers.saving.load_model"]
        if not case["loaded"] or case["error_type"]:
            return code(case)
        return f"{outcome(case)} ({'model.keras' if case['route'] == 'model.keras' else 'weights'})"

    pairs = [(saver, loader) for saver in labels for loader in labels]

    def differ(first, second):
        return outcome(by_key[first]) != outcome(by_key[second])

    changed = sum(differ((*pair, stage, fmt, "plain"), (*pair, stage, fmt, way))
                  for pair in pairs for stage in STAGES for fmt in CAPSTONE_FORMATS for way in WORKAROUNDS)
    stage_differs = sum(differ((*pair, STAGES[0], fmt, way), (*pair, STAGES[1], fmt, way))
                        for pair in pairs for fmt in CAPSTONE_FORMATS for way in ("plain", *WORKAROUNDS))
    parts = [
        grid("The capstone's model after stage 2, `.keras`, `keras.saving.load_model(path)`",
             capstone("keras", "plain")),
        grid("The same model saved as `.h5`", capstone("h5", "plain")),
        grid("The capstone's `.weights.h5`, loaded into the model rebuilt by the loading version",
             capstone("weights.h5", "rebuild, load_weights")),
        grid("The project's folder, `helpers.saving.load_model` (which file it used)", helpers_path),
        "\n".join(f"- E{number}: {text}" for number, text in enumerate(failures, start=1)),
        f"`compile=False`, and `custom_objects` with `compile=False`, changed the outcome of plain loading in "
        f"{changed} of {len(pairs) * len(STAGES) * len(CAPSTONE_FORMATS) * len(WORKAROUNDS)} cases (both stages, "
        f"both formats); stage 1 and stage 2 differed in {stage_differs} of "
        f"{len(pairs) * len(CAPSTONE_FORMATS) * (1 + len(WORKAROUNDS))}.",
    ]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="save and load across the interpreters given")
    run_parser.add_argument("--python", action="append", help="an interpreter with TensorFlow and Keras; repeat "
                                                              "(default: this one)")
    run_parser.add_argument("--size", type=int, default=SIZE, help=f"input size in pixels (default {SIZE})")
    run_parser.add_argument("--out", type=Path, default=RESULT, help="the JSON to write")
    run_parser.add_argument("--work", type=Path, help="where the saved models go (default: a temporary folder)")
    save_parser = commands.add_parser("save", help="(run calls it) save every model into FOLDER")
    save_parser.add_argument("folder", type=Path)
    save_parser.add_argument("--size", type=int, default=SIZE)
    load_parser = commands.add_parser("load", help="(run calls it) load every saved FOLDER here")
    load_parser.add_argument("folders", type=Path, nargs="+")
    load_parser.add_argument("--json", type=Path, required=True, help="where the cases go")
    table_parser = commands.add_parser("table", help="print the README's tables from a result JSON")
    table_parser.add_argument("--result", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if args.command == "save":
        save_all(args.folder, args.size)
    elif args.command == "load":
        args.json.write_text(json.dumps([case for folder in args.folders for case in load_all(folder)]) + "\n")
    elif args.command == "table":
        print(tables(json.loads(args.result.read_text())), end="")
    else:
        pythons = args.python or [sys.executable]
        if args.work:
            run(pythons, args.size, args.out, args.work)
        else:
            with tempfile.TemporaryDirectory(prefix="capstone-loading-") as work:
                run(pythons, args.size, args.out, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
