"""The LiteRT export: what it writes, that it agrees with Keras, and that a stale or damaged export is never used."""
import json
import shutil
import sys
import warnings

import numpy as np
import pytest

from helpers import cli, config, export, files, images, litert, saving
from helpers.detector import Detector, _cached_detector, as_detector


def copy_model(source, destination):
    return shutil.copytree(source, destination, ignore=shutil.ignore_patterns("checkpoints"))


@pytest.fixture(scope="module")
def exported_dir(trained_model_dir, tmp_path_factory):
    """A copy of the session's smoke model, exported once (the shared folder stays untouched)."""
    directory = copy_model(trained_model_dir, tmp_path_factory.mktemp("export") / "model")
    export.export_tflite(directory, verbose=False)
    return directory


@pytest.fixture
def model_copy(exported_dir, tmp_path):
    return copy_model(exported_dir, tmp_path / "model")


@pytest.fixture(scope="module")
def faces(dfdc) -> np.ndarray:
    """32 validation faces (the export was verified on test faces) at the smoke model's 96 px."""
    paths = [path for name in ("Real", "Fake") for path in sorted((dfdc / "Validation" / name).iterdir())[:16]]
    return np.stack([images.load_resized(path, 96) for path in paths]).astype(np.float32)


@pytest.fixture(scope="module")
def keras_scores(exported_dir, faces) -> np.ndarray:
    return Detector.load(exported_dir, verbose=False, runtime="keras").p_fake(faces)


def sidecar(directory) -> dict:
    return json.loads((directory / saving.SIDECAR_FILE).read_text())


# ----------------------------------------------------------------------------- the export
def test_export_writes_the_file_and_records_it(exported_dir):
    path = exported_dir / litert.EXPORT_FILE
    entry = sidecar(exported_dir)["export"]
    assert path.is_file() and entry["file"] == litert.EXPORT_FILE
    assert entry["sha256"] == files.sha256_of(path)
    assert entry["source_sha256"][saving.WEIGHTS_FILE] == files.sha256_of(exported_dir / saving.WEIGHTS_FILE)
    assert entry["runtime"] == litert.runtime_name()  # ai-edge-litert where installed, else tf.lite
    assert entry["quantization"] is None and entry["verified_on"]["images"] == 2 * export.VERIFY_PER_CLASS
    assert entry["verified_on"]["split"] == "test"
    assert 0 <= entry["max_abs_diff_p_fake"] <= export.TOLERANCE
    assert litert.stale_reason(exported_dir) is None
    assert not list(exported_dir.glob(".model*"))  # no temporary file left behind


def test_the_exported_graph_has_no_augmentation(exported_dir):
    model, _ = saving.load_model(exported_dir, verbose=False)
    assert any(layer.name.startswith("augment_") for layer in model.layers)
    assert not any(layer.name.startswith("augment_") for layer in export.inference_model(model).layers)
    runner = litert.TFLiteRunner(exported_dir / litert.EXPORT_FILE)
    assert not [name for name in runner.tensor_names() if "augment" in name.lower()]
    assert not [op for op in runner.op_names() if "RANDOM" in op or "MULTINOMIAL" in op]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"} <= runner.op_names()


def test_litert_agrees_with_keras_on_real_images(exported_dir, faces, keras_scores):
    detector = Detector.load(exported_dir, verbose=False)
    assert detector.runtime == "litert"
    np.testing.assert_allclose(detector.p_fake(faces), keras_scores, atol=export.TOLERANCE)
    assert len({round(score, 4) for score in keras_scores}) > 1  # not a constant answer


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_every_batch_size_gives_the_same_answers(exported_dir, faces, keras_scores, batch_size):
    for run_batch in (1, 32):  # one image per invocation, or the input resized to the batch
        runner = litert.TFLiteRunner(exported_dir / litert.EXPORT_FILE, batch_size=run_batch)
        scores = runner(faces[:batch_size])[:, 1]
        assert scores.shape == (batch_size,)
        np.testing.assert_allclose(scores, keras_scores[:batch_size], atol=export.TOLERANCE)
        np.testing.assert_allclose(runner(faces[:1])[:, 1], keras_scores[:1], atol=export.TOLERANCE)
    assert runner(faces[:0]).shape == (0, 2)


def test_tensorflow_runs_the_export_where_ai_edge_litert_is_missing(exported_dir, faces, keras_scores,
                                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # makes `import ai_edge_litert` fail
    assert litert.runtime_name().startswith("tf.lite ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter says it is deprecated
        scores = litert.TFLiteRunner(exported_dir / litert.EXPORT_FILE)(faces)[:, 1]
    np.testing.assert_allclose(scores, keras_scores, atol=export.TOLERANCE)


def test_a_disagreeing_export_is_refused(model_copy, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no export can agree now
    with pytest.raises(litert.ExportError, match="disagrees with Keras.*not kept"):
        export.export_tflite(model_copy, verbose=False)
    assert not (model_copy / litert.EXPORT_FILE).exists()
    assert "export" not in sidecar(model_copy)  # nor the record of the earlier export it replaced


def test_quantized_export_is_judged_by_validation_auc_and_never_picked_by_itself(model_copy, monkeypatch):
    monkeypatch.setattr(export, "MAX_AUC_DROP", 1.0)  # the smoke model's AUC is too noisy to gate on
    path = export.export_tflite(model_copy, quantize="int8", verbose=False)
    entry = sidecar(model_copy)["export_int8"]
    assert path.name == "model-int8.tflite" and entry["quantization"] == "int8"
    assert entry["verified_on"]["split"] == "validation" and set(entry["validation_roc_auc"]) == {"keras", "exported"}
    assert litert.stale_reason(model_copy, "int8") is None and litert.stale_reason(model_copy) is None
    assert path.stat().st_size < (model_copy / litert.EXPORT_FILE).stat().st_size / 2
    assert Detector.load(model_copy, verbose=False).runtime_reason.endswith(litert.EXPORT_FILE)
    monkeypatch.setattr(export, "MAX_AUC_DROP", -1.0)  # refused the way a float32 export is (tested above)
    model, metadata = saving.load_model(model_copy, verbose=False)
    with pytest.raises(litert.ExportError, match="Quantization costs too much"):
        export.verify_quantized(model, litert.TFLiteRunner(path), metadata["data"]["root"], 96)


def test_no_data_to_verify_on_is_a_plain_error(model_copy, tmp_path):
    with pytest.raises(litert.ExportError, match="--data"):
        export.export_tflite(model_copy, data_root=tmp_path / "nowhere", verbose=False)


def test_command_line_prints_file_runtime_and_agreement(model_copy, capsys):
    (model_copy / litert.EXPORT_FILE).unlink()
    assert cli.main(["export", str(model_copy)]) == 0
    printed = capsys.readouterr().out
    assert str(model_copy / litert.EXPORT_FILE) in printed
    assert litert.runtime_name() in printed and "max |Δp(fake)|" in printed and "allowed 1e-04" in printed
    assert litert.stale_reason(model_copy) is None


# ----------------------------------------------------------------------------- choosing the runtime
def test_detector_uses_litert_when_fresh_and_keras_when_asked(exported_dir, faces, keras_scores, capsys,
                                                               monkeypatch):
    detector = Detector.load(exported_dir)
    runtime = litert.runtime_name().split()[0]
    assert detector.runtime == "litert" and f"using LiteRT ({runtime}) model.tflite" in capsys.readouterr().out
    assert "litert" in repr(detector)
    forced = Detector.load(exported_dir, runtime="keras")
    assert forced.runtime == "keras" and "using Keras: asked for" in capsys.readouterr().out
    monkeypatch.setenv(config.RUNTIME_ENV, "keras")
    assert Detector.load(exported_dir, verbose=False).runtime == "keras"
    assert as_detector(exported_dir).runtime == "keras"
    assert as_detector(exported_dir, runtime="litert").runtime == "litert"
    assert type(detector.model).__name__ == "Functional"  # Grad-CAM still gets the Keras model


def test_unexported_folder_uses_keras_quietly_and_refuses_forced_litert(trained_model_dir, recwarn, capsys):
    detector = Detector.load(trained_model_dir)
    assert detector.runtime == "keras" and "using Keras: no model.tflite" in capsys.readouterr().out
    assert not [w for w in recwarn if "model.tflite" in str(w.message)]
    with pytest.raises(litert.ExportError, match="LiteRT was asked for"):
        Detector.load(trained_model_dir, verbose=False, runtime="litert")
    with pytest.raises(ValueError, match="Unknown runtime"):
        Detector.load(trained_model_dir, verbose=False, runtime="tpu")


def _assert_keras_fallback(directory, faces, expected, reason):
    with pytest.warns(UserWarning, match=reason):
        detector = Detector.load(directory, verbose=False)
    assert detector.runtime == "keras"
    np.testing.assert_allclose(detector.p_fake(faces), expected, atol=1e-6)


def test_weights_saved_again_make_the_export_stale(model_copy, faces, keras_scores):
    model, metadata = saving.load_model(model_copy, verbose=False)
    bias = model.get_layer("prediction").bias
    bias.assign(bias.numpy() + np.array([-0.5, 0.5], np.float32))  # fine-tuned after the export
    saving.save_model(model, model_copy, metadata)  # the metadata still holds the old export entry
    new_scores = Detector(model, metadata, runtime="keras").p_fake(faces)
    assert np.abs(new_scores - keras_scores).max() > 0.01  # the old export would now answer wrongly
    _assert_keras_fallback(model_copy, faces, new_scores, "weights changed")


def test_only_the_weights_file_changed_is_stale_too(model_copy):
    model, _ = saving.load_model(model_copy, verbose=False)
    model.save_weights(model_copy / saving.WEIGHTS_FILE)  # same values, a new file: not what was exported
    assert "weights changed" in litert.stale_reason(model_copy)


def test_truncated_export_falls_back_to_keras(model_copy, faces, keras_scores):
    path = model_copy / litert.EXPORT_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _assert_keras_fallback(model_copy, faces, keras_scores, "checksum")
    with pytest.raises(litert.ExportError, match="checksum"):
        Detector.load(model_copy, verbose=False, runtime="litert")


def test_export_the_runtime_cannot_load_falls_back_to_keras(model_copy, faces, keras_scores):
    path = model_copy / litert.EXPORT_FILE
    path.write_bytes(b"not a flatbuffer" * 100)
    entry = sidecar(model_copy)
    entry["export"]["sha256"] = files.sha256_of(path)  # recorded, yet unusable
    files.write_json(model_copy / saving.SIDECAR_FILE, entry)
    _assert_keras_fallback(model_copy, faces, keras_scores, "could not be loaded")


def test_missing_export_recorded_in_the_sidecar_warns(model_copy, faces, keras_scores):
    (model_copy / litert.EXPORT_FILE).unlink()
    _assert_keras_fallback(model_copy, faces, keras_scores, "missing")


def test_command_lines_take_a_runtime(exported_dir, dfdc, capsys):
    from helpers import evaluate

    _cached_detector.cache_clear()  # a command line loads its model afresh, and says which runtime
    assert cli.main(["evaluate", str(exported_dir), str(dfdc), "--profile", "smoke",
                                        "--runtime", "litert"]) == 0
    assert "using LiteRT" in capsys.readouterr().out
    face = next((dfdc / "Test" / "Fake").iterdir())
    assert cli.main(["predict", str(exported_dir), str(face), "--runtime", "keras"]) == 0
    assert "using Keras" in capsys.readouterr().out
