"""The code lessons 03, 04 and 08 show in the open is the helpers' code: same layers, same weights, same bytes.

The cells tagged `lesson-code` are run here as they stand in the notebooks, in the `smoke` profile
on the data root the notebooks use (the shared faces, or the stand-in set in a fresh clone), and
compared with `build_classifier`, `train_stage1`, `unfreeze_top_blocks` and `train_stage2`; lesson
08's self-blend with `sbi.self_blend` on a photo that ships with scikit-image.
"""

import keras
import numpy as np
import pytest

from helpers import backbones, config, data, lessons, model_folders, sbi, train
from helpers import classifier
from tests.conftest import lesson_code, run_lesson_code


def same_weights(first, second) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.fixture
def smoke_run(tmp_path, monkeypatch):
    """The smoke profile fitted to the lessons' data root, with models and caches in a temporary folder."""
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    settings = config.resolve("smoke")
    frames = data.load_frames(settings.data_root, settings.profile, verbose=False)
    profile = train.fit_to_data(settings.profile, frames)
    namespace = {"settings": settings, "root": settings.data_root, "profile": profile, "frames": frames,
                 "config": config, "backbones": backbones, "data": data, "train": train, "classifier": classifier,
                 "lessons": lessons, "model_folders": model_folders, "print": lambda *args, **kwargs: None,
                 "class_weights": data.class_weights(frames["train"]["label"])}
    return profile, frames, namespace


def test_the_lessons_cells_are_tagged():
    assert len(lesson_code("03_frozen_head_training.ipynb")) == 5  # augmentation, backbone, head, callbacks, fit
    assert len(lesson_code("04_fine_tuning.ipynb")) == 2  # the unfreeze loop, the fine-tuning
    assert len(lesson_code("08_generalisation.ipynb")) == 2  # the mask, the self-blend


def test_lesson_03_builds_and_trains_what_the_helpers_do(smoke_run, tmp_path):
    profile, frames, namespace = smoke_run
    cells = lesson_code("03_frozen_head_training.ipynb")
    run_lesson_code(cells[:3], namespace)
    shown = namespace["model"]
    packaged = classifier.build_classifier(namespace["backbone_name"], profile.image_size,
                                         augmentations=profile.augmentations)
    assert [(layer.name, type(layer)) for layer in shown.layers] == [(layer.name, type(layer)) for layer in packaged.layers]
    for ours, theirs in zip(shown.layers, packaged.layers):
        settings = [{key: value for key, value in layer.get_config().items() if key != "trainable"}
                    for layer in (ours, theirs)]
        assert settings[0] == settings[1], ours.name
        if ours.weights:  # `backbone.trainable = False` also flags the weightless augmentation layers
            assert ours.trainable == theirs.trainable, ours.name
    assert same_weights(shown.get_weights(), packaged.get_weights())

    run_lesson_code(cells[3:], namespace)
    train.train_stage1(packaged, frames["train"], frames["validation"], profile, tmp_path / "helper", verbose=0)
    assert same_weights(shown.get_weights(), packaged.get_weights())
    assert not same_weights(shown.get_weights(), classifier.build_classifier(
        namespace["backbone_name"], profile.image_size, augmentations=profile.augmentations).get_weights())


def test_lesson_04_fine_tunes_what_the_helpers_do(smoke_run, tmp_path):
    profile, frames, namespace = smoke_run
    model, _, stage1_history = lessons.load_stage1(config.data_root(), profile, verbose=0)  # trains one: smoke
    namespace.update(keras=keras, model=model, stage1_history=stage1_history)
    unfreeze, fine_tune = lesson_code("04_fine_tuning.ipynb")
    run_lesson_code([unfreeze], namespace)
    helper_model, _, _ = lessons.load_stage1(config.data_root(), profile)
    assert namespace["blocks"] == classifier.unfreeze_top_blocks(helper_model, profile.unfreeze_blocks)
    assert [layer.trainable for layer in model.layers] == [layer.trainable for layer in helper_model.layers]

    run_lesson_code([fine_tune], namespace)
    helper_model, _, _ = lessons.load_stage1(config.data_root(), profile)
    train.train_stage2(helper_model, frames["train"], frames["validation"], profile, tmp_path / "helper", verbose=0)
    assert same_weights(namespace["model"].get_weights(), helper_model.get_weights())
    assert not same_weights(namespace["model"].get_weights(), lessons.load_stage1(config.data_root(), profile)[0].get_weights())


def test_lesson_08_self_blends_what_sbi_does():
    """Same seed, same bytes: the mask, the source and the pseudo-fake of the lesson's cells and of `sbi`."""
    import skimage.data

    photo = skimage.data.astronaut()  # an RGB photo with a face: any uint8 RGB image will do
    faces = [photo[20:276, 120:376], photo[40:240, 140:360]]  # square, and not square
    namespace = run_lesson_code(lesson_code("08_generalisation.ipynb"), {"faces": faces, "config": config,
                                                               "print": lambda *args, **kwargs: None})
    self_blend, face_mask = namespace["self_blend"], namespace["face_mask"]
    fakes = []
    for face in faces:
        for seed in (0, 1, 2, 3, 4, config.SEED):
            fake, mask, source = self_blend(face, seed)
            packaged = sbi.self_blend(face, seed)
            assert np.array_equal(fake, packaged.fake) and np.array_equal(source, packaged.source), seed
            assert mask.dtype == packaged.mask.dtype and np.array_equal(mask, packaged.mask), seed
            fakes.append(fake)
        rng, packaged_rng = np.random.default_rng(7), np.random.default_rng(7)
        assert np.array_equal(face_mask(face.shape[:2], rng), sbi.face_mask(face.shape[:2], packaged_rng))
    assert not np.array_equal(fakes[0], fakes[1]), "two seeds give two pseudo-fakes"
    assert not np.array_equal(fakes[0], faces[0][...]), "the pseudo-fake differs from the real face"
