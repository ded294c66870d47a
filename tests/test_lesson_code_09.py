"""Lesson 09's code in the open does what the helpers do, its prose says what the evidence says, and
the Space runs offline.

- saving: the cells `save_model` and `load_model` against `saving.save_model` and `saving.load_model`
  (same sidecar, same weights file, same checksums, same outputs, the same fallback);
- export: `to_tflite` and `run_litert` against `export.to_tflite` and `litert.TFLiteRunner`;
- the FLOPs the lesson counts from layer shapes, against TensorFlow's profiler;
- serving: the cell that starts the app, and `space/app.py` run the way a Space runs it, from a Space
  folder put together as space/README.md says, in a fresh process that is refused every connection
  beyond this machine: the same page, the same answer for the same photo;
- the versions and outcomes the lesson's prose names, against benchmarks/deploy/capstone_loading.json.

No face data is needed: the models are built here with random weights, at 32 px.
"""
import ast
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import classifier, config, export, files, litert, saving
from tests.conftest import free_port, lesson_code, outbound_connections, run_lesson_code

NOTEBOOK = "09_deployment.ipynb"
SIZE = 32
METADATA = {"backbone": "efficientnet_lite0", "image_size": SIZE, "class_names": ["real", "fake"], "threshold": 0.5,
            "profile": "smoke", "augmentations": ["flip", "rotation", "zoom"]}
EVIDENCE = config.REPO_ROOT / "benchmarks" / "deploy" / "capstone_loading.json"


def quiet(*args, **kwargs):
    pass


def cells() -> dict[str, str]:
    """The lesson's `lesson-code` cells, by what they do."""
    sources = lesson_code(NOTEBOOK)
    assert len(sources) == 5, "save, load, convert, run the export, serve"
    return dict(zip(("save", "load", "convert", "run export", "serve"), sources))


def notebook_cells() -> list[dict]:
    return json.loads((config.REPO_ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]


def function_from_notebook(name: str):
    """A function the lesson defines in a cell that does more than define it: the definition alone, run."""
    for cell in notebook_cells():
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # the Colab set-up cell (shell lines)
            continue
        found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
        if found:
            namespace = {}
            exec(compile(ast.Module(body=found, type_ignores=[]), f"<{NOTEBOOK}: {name}>", "exec"), namespace)
            return namespace[name]
    raise AssertionError(f"{NOTEBOOK} defines no function {name}")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """The project's detector at 32 px, seeded random weights (head and backbone)."""
    keras.utils.set_random_seed(config.SEED)
    return classifier.build_classifier("efficientnet_lite0", SIZE, weights=None)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(config.SEED).uniform(0, 255, (5, SIZE, SIZE, 3)).astype(np.float32)


def scores(model, images) -> np.ndarray:
    return np.asarray(model(images, training=False))


def test_the_lessons_cells_are_tagged():
    assert list(cells()) == ["save", "load", "convert", "run export", "serve"]


# ----------------------------------------------------------------------------- saving
def archive(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def test_the_lesson_saves_the_folder_that_save_model_saves(model, tmp_path):
    namespace = run_lesson_code([cells()["save"]], {"Path": Path, "keras": keras, "print": quiet})
    ours = namespace["save_model"](model, tmp_path / "lesson", METADATA)
    theirs = saving.save_model(model, tmp_path / "helpers", METADATA)
    names = sorted([saving.MODEL_FILE, saving.SIDECAR_FILE, saving.WEIGHTS_FILE])
    assert sorted(path.name for path in ours.iterdir()) == sorted(path.name for path in theirs.iterdir()) == names
    sidecars = [json.loads((folder / saving.SIDECAR_FILE).read_text()) for folder in (ours, theirs)]
    assert sidecars[0].keys() == sidecars[1].keys()
    assert [{k: v for k, v in sidecar.items() if k not in ("saved_at", "files")} for sidecar in sidecars] == [
        {**METADATA, "keras_version": keras.__version__, "tensorflow_version": sidecars[1]["tensorflow_version"]}] * 2
    for folder, sidecar in zip((ours, theirs), sidecars):
        assert sidecar["files"] == {name: files.sha256_of(folder / name)
                                    for name in (saving.MODEL_FILE, saving.WEIGHTS_FILE)}
    assert sidecars[0]["files"][saving.WEIGHTS_FILE] == sidecars[1]["files"][saving.WEIGHTS_FILE]  # byte for byte
    inside = [archive(folder / saving.MODEL_FILE) for folder in (ours, theirs)]
    assert inside[0].keys() == inside[1].keys()
    assert {name for name in inside[0] if inside[0][name] != inside[1][name]} <= {"metadata.json"}  # its save time
    saving.read_metadata(ours)  # the helpers accept the lesson's folder


def unknown_argument(folder) -> None:
    """model.keras as a Keras that knows a layer argument this one does not would write it (the lesson's E2-E4),
    with its sha256 recorded: the file is intact, but this Keras cannot read it."""
    members = archive(folder / saving.MODEL_FILE)
    architecture = json.loads(members["config.json"])
    architecture["config"]["layers"][-1]["config"]["argument_from_another_keras"] = 1
    members["config.json"] = json.dumps(architecture).encode()
    with zipfile.ZipFile(folder / saving.MODEL_FILE, "w") as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, content)
    sidecar = json.loads((folder / saving.SIDECAR_FILE).read_text())
    sidecar["files"][saving.MODEL_FILE] = files.sha256_of(folder / saving.MODEL_FILE)
    (folder / saving.SIDECAR_FILE).write_text(json.dumps(sidecar))


DAMAGE = {
    "none": lambda folder: None,
    "model.keras cut short": lambda folder: (folder / saving.MODEL_FILE).write_bytes(
        (folder / saving.MODEL_FILE).read_bytes()[:5000]),
    "model.keras missing": lambda folder: (folder / saving.MODEL_FILE).unlink(),
    "model.keras from a Keras this one cannot read": unknown_argument,
    "model.weights.h5 missing": lambda folder: (folder / saving.WEIGHTS_FILE).unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_lesson_loads_what_load_model_loads(model, images, tmp_path, damage):
    folder = saving.save_model(model, tmp_path / "model", METADATA)
    DAMAGE[damage](folder)
    printed = []
    namespace = run_lesson_code([cells()["load"]], {"Path": Path, "files": files, "keras": keras,
                                        "print": lambda *args, **kwargs: printed.append(" ".join(map(str, args)))})
    ours, ours_metadata = namespace["load_model"](folder)
    helper_lines = io.StringIO()
    with contextlib.redirect_stdout(helper_lines):
        theirs, their_metadata = saving.load_model(folder)
    assert ours_metadata == their_metadata
    rebuilt = damage.startswith("model.keras")
    assert bool(printed) == rebuilt == ("rebuilding" in helper_lines.getvalue()), (printed, helper_lines.getvalue())
    if rebuilt:
        assert "rebuilding from model.json and loading model.weights.h5" in printed[0]
    expected = scores(model, images)
    np.testing.assert_allclose(scores(ours, images), expected, atol=1e-6)
    np.testing.assert_array_equal(scores(ours, images), scores(theirs, images))


def test_the_lesson_refuses_what_load_model_refuses(model, tmp_path):
    folder = saving.save_model(model, tmp_path / "model", METADATA)
    (folder / saving.MODEL_FILE).write_bytes(b"cut")
    (folder / saving.WEIGHTS_FILE).write_bytes(b"cut")
    namespace = run_lesson_code([cells()["load"]], {"Path": Path, "files": files, "keras": keras,
                                        "print": quiet})
    with pytest.raises(saving.ModelFileError, match="neither model file"):
        namespace["load_model"](folder)
    with pytest.raises(saving.ModelFileError):
        saving.load_model(folder, verbose=False)
    sidecar = json.loads((folder / saving.SIDECAR_FILE).read_text())
    (folder / saving.SIDECAR_FILE).write_text(json.dumps({**sidecar, "threshold": 5}))
    with pytest.raises(saving.ModelFileError, match="threshold must be a number from 0 to 1"):
        namespace["load_model"](folder)


# ----------------------------------------------------------------------------- export
def test_the_lesson_converts_and_runs_what_export_and_litert_do(model, images, tmp_path):
    folder = saving.save_model(model, tmp_path / "model", METADATA)
    import tensorflow as tf

    namespace = run_lesson_code([cells()["convert"], cells()["run export"]],
                    {"model": model, "folder": folder, "tf": tf, "np": np, "print": quiet})
    blob = namespace["blob"]
    assert blob == export.to_tflite(model), "the lesson's conversion and the helper's give different files"
    run_litert = namespace["run_litert"]
    ours = run_litert(images)
    assert ours.shape == (len(images), 2)
    np.testing.assert_array_equal(ours, litert.TFLiteRunner(blob, batch_size=len(images))(images))
    np.testing.assert_allclose(ours, litert.TFLiteRunner(blob)(images), atol=1e-6)  # one image per call
    np.testing.assert_allclose(ours[:, 1], scores(model, images)[:, 1], atol=export.TOLERANCE)
    np.testing.assert_array_equal(run_litert(images[:1]), litert.TFLiteRunner(blob)(images[:1]))  # resized back
    assert namespace["Interpreter"] is litert._interpreter_class()  # the runtime the helpers use


def test_the_lessons_flops_are_the_profilers(model):
    """The lesson counts convolutions and dense layers from their shapes; TensorFlow's profiler counts the
    same ops in the frozen inference graph, node by node."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tensorflow.python.profiler import model_analyzer, option_builder

    counted = function_from_notebook("flops_per_image")(model)
    graph = export.inference_model(model)
    spec = tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda images: graph(images, training=False)).get_concrete_function(spec))
    options = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation())
    profile = model_analyzer.profile(frozen.graph, options=options.with_empty_output().build())
    op_types = {operation.name: operation.type for operation in frozen.graph.get_operations()}
    by_type = {}
    for node in profile.children:
        kind = op_types.get(node.name)
        by_type[kind] = by_type.get(kind, 0) + node.total_float_ops
    assert counted == {"Conv2D": by_type["Conv2D"], "DepthwiseConv2D": by_type["DepthwiseConv2dNative"],
                       "Dense": by_type["MatMul"]}
    assert sum(counted.values()) > 0.9 * profile.total_float_ops  # what the lesson leaves out is small


# ----------------------------------------------------------------------------- serving and the Space
OFFLINE_START = '''
import os, runpy, socket, sys

LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}
log = open(os.environ["OUTBOUND_LOG"], "a", buffering=1)
connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo


def refuse_beyond_this_machine(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
        log.write(f"connect {address[0]}\\n")
        raise OSError("offline: connections beyond this machine are refused")
    return connect(sock, address)


def lookup(host, *args, **kwargs):
    if host is not None and host not in LOOPBACK:
        log.write(f"lookup {host}\\n")
        raise socket.gaierror("offline: no name lookups")
    return getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.getaddrinfo = refuse_beyond_this_machine, lookup
sys.path.insert(0, os.getcwd())  # the Space's own helpers/, as in the Space
import helpers

log.write(f"helpers {helpers.__file__}\\n")
sys.argv = ["app.py"]
runpy.run_path("app.py", run_name="__main__")
'''


@pytest.fixture(scope="module")
def space_folder(model, tmp_path_factory):
    """A Space's repository put together as space/README.md says: its files, the helpers, a model folder."""
    folder = tmp_path_factory.mktemp("space") / "my-space"
    folder.mkdir()
    for path in (config.REPO_ROOT / "space").iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    shutil.copytree(config.REPO_ROOT / "src" / "helpers", folder / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    saving.save_model(model, folder / "model", METADATA)
    (folder / "offline_start.py").write_text(OFFLINE_START)
    return folder


def space_environment(**extra) -> dict:
    """This process's environment without anything that would point the Space elsewhere."""
    leave_out = {"PYTHONPATH", config.HOME_ENV, config.STORAGE_ENV, config.MODEL_DIR_ENV, config.MODEL_REPO_ENV}
    return {**{name: value for name, value in os.environ.items() if name not in leave_out}, **extra}


def wait_for(url: str, process: subprocess.Popen, output: Path, seconds: float = 240) -> None:
    """Until the app answers at `url`; fails if its process ends first or it takes longer than `seconds`."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise AssertionError(f"app.py exited with {process.returncode}: {output.read_text()}")
        try:
            with direct.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"app.py did not answer at {url} within {seconds} s")


def test_a_space_without_a_model_stops_with_one_line(space_folder, tmp_path):
    empty = tmp_path / "space"
    shutil.copytree(space_folder, empty, ignore=shutil.ignore_patterns("model"))
    finished = subprocess.run([sys.executable, "app.py"], cwd=empty, capture_output=True, text=True, timeout=300,
                              env=space_environment())
    assert finished.returncode == 1, finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "model" in last, finished.stderr  # one line, not a traceback
    assert "Traceback" not in finished.stderr


def test_the_lessons_app_answers_as_the_space_does_offline(space_folder, tmp_path):
    """`python app.py` in the Space folder, offline, and the lesson's serving cell on the same model folder:
    both pages score the same photo the same way."""
    from gradio_client import Client, handle_file


    photo = tmp_path / "astronaut.png"
    import skimage.data

    Image.fromarray(skimage.data.astronaut()).save(photo)
    outbound_log = tmp_path / "outbound.log"
    port = free_port()
    space_url = f"http://127.0.0.1:{port}/"
    output = tmp_path / "app.log"
    process = subprocess.Popen(
        [sys.executable, "offline_start.py"], cwd=space_folder, stdout=output.open("w"), stderr=subprocess.STDOUT,
        env=space_environment(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                              OUTBOUND_LOG=str(outbound_log)))
    app = None
    try:
        wait_for(space_url, process, output)
        namespace = run_lesson_code([cells()["serve"]], {"folder": space_folder / "model", "work": tmp_path, "print": quiet})
        app, lesson_url = namespace["app"], namespace["url"]
        assert lesson_url != space_url
        answers = []
        with outbound_connections() as outbound:
            for url in (space_url, lesson_url):
                client = Client(url, verbose=False, analytics_enabled=False)
                message, _, faces = client.predict(handle_file(str(photo)), "on", api_name="/analyse")
                answers.append((message, faces))
        assert outbound == []
        assert answers[0] == answers[1]
        assert "astronaut.png" in answers[0][0] and answers[0][1], "no verdict in the page's answer"
    finally:
        if app is not None:
            app.close()
        process.terminate()
        process.wait(timeout=60)
    log = outbound_log.read_text().splitlines()
    assert log[0] == f"helpers {space_folder / 'helpers' / '__init__.py'}", "the Space ran another copy of helpers"
    assert log[1:] == [], f"app.py reached beyond this machine: {log[1:]}\n{output.read_text()}"


# ----------------------------------------------------------------------------- the prose and the evidence
def markdown() -> str:
    return "\n".join("".join(cell["source"]) for cell in notebook_cells() if cell["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def evidence() -> dict:
    return json.loads(EVIDENCE.read_text())


def outcome(evidence, saved_keras, loaded_keras, saved_tf=None, loaded_tf=None) -> str:
    """The plain load of the capstone's stage-2 .keras file: "ok" or the error's first line."""
    found = {(c["saved_with"], c["loaded_with"]): c for c in evidence["cases"]
             if (c["artefact"], c["format"], c["way"]) == ("capstone_stage2", "keras", "plain")}
    matches = [case for (saver, loader), case in found.items()
               if saver.endswith(f"-keras{saved_keras}") and loader.endswith(f"-keras{loaded_keras}")
               and (saved_tf is None or saver.startswith(f"tf{saved_tf}-"))
               and (loaded_tf is None or loader.startswith(f"tf{loaded_tf}-"))]
    assert matches, (saved_keras, loaded_keras)
    results = {"ok" if case["loaded"] and not case["error_type"] else case["error"].split(" Inputs received:")[0]
               for case in matches}  # the rest names tensors, which differ from run to run
    assert len(results) == 1, results
    return results.pop()


E1 = 'Layer "dense" expects 1 input(s), but it received 2 input tensors.'


def test_the_versions_the_lesson_names_were_tried(evidence):
    tried = {(environment["tensorflow"], environment["keras"]) for environment in evidence["environments"]}
    text = markdown()
    for version in re.findall(r"Keras (\d+\.\d+\.\d+)", text):
        assert version in {keras_version for _, keras_version in tried}, version
    for version in re.findall(r"TensorFlow (\d+\.\d+\.\d+)", text):
        assert version in {tf_version for tf_version, _ in tried}, version
    assert ("2.18.0", "3.10.0") in tried and ("2.17.0", "3.4.1") in tried  # the capstone's pin, keras#20084's pair


def test_what_the_lesson_says_about_the_grid_is_what_it_holds(evidence):
    assert f"ValueError: {E1}" in markdown()
    assert outcome(evidence, "3.4.1", "3.4.1").startswith(E1)  # cannot load its own file
    for saved in ("3.8.0", "3.10.0"):
        for loaded in ("3.11.3", "3.15.1"):
            assert outcome(evidence, saved, loaded).startswith(E1), (saved, loaded)
    versions = sorted({e["keras"] for e in evidence["environments"]})
    diagonal = {version: outcome(evidence, version, version) for version in versions}
    assert [version for version, result in diagonal.items() if result != "ok"] == ["3.4.1"]  # pinning: the diagonal
    for version in versions:  # Keras 3.10.0 behaves the same on TensorFlow 2.18.0 and 2.19.0
        assert outcome(evidence, "3.10.0", version, saved_tf="2.18.0") == outcome(evidence, "3.10.0", version,
                                                                                   saved_tf="2.19.0")
        assert outcome(evidence, version, "3.10.0", loaded_tf="2.18.0") == outcome(evidence, version, "3.10.0",
                                                                                    loaded_tf="2.19.0")
    written = {e["keras"]: e["serialised"]["capstone_stage2"]["output_layers"] for e in evidence["environments"]}
    one_entry_list = {version for version, layers in written.items() if isinstance(layers[0], list)}
    assert one_entry_list == {v for v in versions if tuple(map(int, v.split("."))) < (3, 11)}  # 3.3-3.10, as said
