"""The saved model folder: checksums, the weights fallback, and a sidecar that does not fit its model."""
import shutil

import numpy as np
import pytest

from helpers import files, saving


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    return shutil.copytree(trained_model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("checkpoints"))


def _bias(model) -> np.ndarray:
    return model.get_layer("prediction").bias.numpy()


def _save_other_model(directory, name):
    """Overwrite `name` with a valid file of another model (the same architecture, another bias)."""
    model, _ = saving.load_model(directory, verbose=False)
    bias = model.get_layer("prediction").bias
    bias.assign(bias.numpy() + 1.0)
    (model.save if name == saving.MODEL_FILE else model.save_weights)(directory / name)
    return model


def test_an_unloadable_model_keras_falls_back_in_one_line(model_copy, monkeypatch, capsys):
    import keras

    def unreadable(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    expected = _bias(saving.load_model(model_copy, verbose=False)[0])
    monkeypatch.setattr(keras.saving, "load_model", unreadable)
    model, _ = saving.load_model(model_copy)
    printed = capsys.readouterr().out.strip()
    assert printed.count("\n") == 0 and "model.keras (ValueError: first line second line)" in printed
    assert "rebuilding from model.json and loading model.weights.h5" in printed
    np.testing.assert_array_equal(_bias(model), expected)


def test_a_swapped_model_keras_is_not_used(model_copy, capsys):
    expected = _bias(saving.load_model(model_copy, verbose=False)[0])
    _save_other_model(model_copy, saving.MODEL_FILE)  # loads fine, but it is not the model the sidecar describes
    model, _ = saving.load_model(model_copy)
    printed = capsys.readouterr().out.strip()
    assert printed.count("\n") == 0 and "model.keras does not match its sha256 in model.json" in printed
    np.testing.assert_array_equal(_bias(model), expected)


def test_no_file_matching_its_sha256_is_an_error_naming_both(model_copy):
    _save_other_model(model_copy, saving.MODEL_FILE)
    _save_other_model(model_copy, saving.WEIGHTS_FILE)
    with pytest.raises(saving.ModelFileError, match=r"model\.keras does not match .*/model\.weights\.h5 does not"):
        saving.load_model(model_copy, verbose=False)


@pytest.mark.parametrize("size, message", [(224, "image_size is 224, but the model takes 96x96"),
                                           (0, "image_size must be a positive"),
                                           ("96", "image_size must be a positive")])
def test_a_sidecar_image_size_that_does_not_fit_names_the_file_and_key(model_copy, size, message):
    metadata = saving.read_metadata(model_copy)
    files.write_json(model_copy / saving.SIDECAR_FILE, {**metadata, "image_size": size})
    with pytest.raises(saving.ModelFileError, match=f"model.json: {message}"):
        saving.load_model(model_copy, verbose=False)
