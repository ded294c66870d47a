"""Self-Blended Images: the pseudo-fake generator and the rows it adds to a dataset frame (helpers.sbi)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import data, sbi
from helpers.images import load_image, resize


@pytest.fixture(scope="module")
def faces(dfdc, ffhq) -> list[np.ndarray]:
    """Three real FFHQ faces (256 px) and three real DFDC faces (224 px), at full resolution."""
    ffhq_paths = sorted((ffhq / "real").glob("*.jpg"))[:3]
    dfdc_paths = sorted((dfdc / "Train" / "Real").glob("*.jpg"))[:3]
    return [load_image(path) for path in ffhq_paths + dfdc_paths]


@pytest.fixture(scope="module")
def small_face(faces) -> np.ndarray:
    """One face at 96 px, for tests that draw hundreds of pseudo-fakes."""
    return resize(faces[0], 96)


def _listing(root: Path) -> list[tuple[str, int, int]]:
    """Every file below `root` with its size and modification time."""
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- self_blend
def test_shapes_dtypes_and_ranges(faces):
    for seed, face in enumerate(faces):
        blended = sbi.self_blend(face, seed)
        height, width = face.shape[:2]
        for image in (blended.fake, blended.source, blended.target):
            assert image.shape == (height, width, 3) and image.dtype == np.uint8
        assert blended.mask.shape == (height, width) and blended.mask.dtype == np.float32
        assert 0 <= blended.mask.min() and blended.mask.max() <= 1
        assert np.array_equal(blended.target, face)
        assert np.array_equal(sbi.pseudo_fake(face, seed), blended.fake)


def test_a_face_that_is_not_square_keeps_its_shape(faces):
    blended = sbi.self_blend(faces[0][:200, :240], seed=3)
    assert blended.fake.shape == (200, 240, 3) and blended.mask.shape == (200, 240)


def test_the_input_is_left_untouched(faces):
    face = faces[0].copy()
    sbi.self_blend(face, seed=5)
    assert np.array_equal(face, faces[0])


@pytest.mark.parametrize("image", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                                   np.zeros((64, 64, 4), np.uint8)])
def test_anything_but_an_rgb_uint8_image_is_refused(image):
    with pytest.raises(ValueError, match="uint8 RGB"):
        sbi.self_blend(image, seed=0)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs(faces):
    for face in faces:
        first, again, other = sbi.self_blend(face, 11), sbi.self_blend(face, 11), sbi.self_blend(face, 12)
        assert first.fake.tobytes() == again.fake.tobytes()
        assert first.mask.tobytes() == again.mask.tobytes()
        assert first.fake.tobytes() != other.fake.tobytes()
        assert first.mask.tobytes() != other.mask.tobytes()


def test_blend_ratios_are_the_papers(small_face):
    blends = [sbi.self_blend(small_face, seed) for seed in range(300)]
    ratios = [blended.ratio for blended in blends]
    assert set(ratios) == {0.25, 0.5, 0.75, 1.0}
    assert 0.4 < ratios.count(1.0) / len(ratios) < 0.6  # drawn from (0.25, 0.5, 0.75, 1, 1, 1)
    for blended in blends:
        assert blended.mask.max() == pytest.approx(blended.ratio, abs=1e-3)  # the ratio is in the mask


def test_the_mask_covers_the_central_face_and_nothing_near_the_border(faces):
    for face in faces[::3]:  # one 256 px and one 224 px face
        height, width = face.shape[:2]
        inner = (slice(round(0.05 * height), round(0.95 * height)), slice(round(0.05 * width), round(0.95 * width)))
        corner = (slice(0, height // 8), slice(0, width // 8))
        for seed in range(40):
            blended = sbi.self_blend(face, seed)
            mask = blended.mask / blended.ratio
            assert mask[height // 2, width // 2] == pytest.approx(1, abs=1e-3)
            assert mask.sum() > 0.1 * height * width
            assert mask[inner].sum() > 0.999 * mask.sum()
            for flipped in (mask, mask[::-1], mask[:, ::-1], mask[::-1, ::-1]):
                assert not flipped[corner].any()


def test_the_fake_is_the_target_where_the_mask_is_zero_and_changed_inside_it(faces):
    for face in faces:
        for seed in range(10):
            blended = sbi.self_blend(face, seed)
            outside = blended.mask == 0
            assert np.array_equal(blended.fake[outside], blended.target[outside])
            inside = blended.mask >= 0.5 * blended.ratio
            change = np.abs(blended.fake.astype(int) - blended.target)[inside].mean()
            assert change > 1.0, f"seed {seed}: the pseudo-fake barely differs from the real face"


def test_where_the_mask_is_one_the_fake_is_the_source(faces):
    blended = next(b for b in (sbi.self_blend(faces[0], seed) for seed in range(20)) if b.ratio == 1.0)
    full = blended.mask == 1
    assert full.any()
    assert np.array_equal(blended.fake[full], blended.source[full])


# ----------------------------------------------------------------------------- add_pseudo_fakes
@pytest.fixture(scope="module", params=["dfdc-faces", "ffhq-stylegan2"])
def frame(request, shared_data):
    return data.index_dataset(shared_data / request.param)


def _real(frame, split):
    return frame[(frame["split"] == split) & (frame["label"] == 0)]


def test_one_pseudo_fake_per_real_training_and_validation_image(frame):
    result = sbi.add_pseudo_fakes(frame)
    added = result[result["transform_seed"] >= 0]
    expected = len(_real(frame, "train")) + len(_real(frame, "validation"))
    assert len(added) == expected and len(result) == len(frame) + expected
    for split in ("train", "validation"):
        reals = _real(frame, split)
        rows = added[added["split"] == split]
        assert sorted(rows["relpath"]) == sorted(reals["relpath"] + "#sbi")
        assert sorted(rows["path"]) == sorted(reals["path"])
    assert set(added["label"]) == {1} and set(added["class_name"]) == {"fake"}
    assert result["transform_seed"].dtype == np.int64


def test_ordinary_rows_are_kept_and_the_test_split_is_untouched(frame):
    result = sbi.add_pseudo_fakes(frame)
    ordinary = result[result["transform_seed"] == sbi.NO_TRANSFORM].drop(columns="transform_seed")
    assert ordinary.reset_index(drop=True).equals(frame.reset_index(drop=True))
    test_rows = result[result["split"] == "test"]
    assert set(test_rows["transform_seed"]) == {sbi.NO_TRANSFORM}
    assert test_rows.drop(columns="transform_seed").reset_index(drop=True).equals(
        frame[frame["split"] == "test"].reset_index(drop=True))


def test_seeds_are_stable_and_do_not_depend_on_row_order(frame):
    def seeds(result):
        return dict(zip(result["relpath"], result["transform_seed"]))

    first = seeds(sbi.add_pseudo_fakes(frame))
    assert seeds(sbi.add_pseudo_fakes(frame)) == first
    assert seeds(sbi.add_pseudo_fakes(frame.sample(frac=1, random_state=1))) == first
    assert seeds(sbi.add_pseudo_fakes(frame, seed=7)) != first
    added = [seed for seed in first.values() if seed >= 0]
    assert len(set(added)) == len(added)


def test_a_seed_is_the_same_on_every_machine():
    # sha256 of "42:Train/Real/real_00000.jpg#sbi": pinned, so a change of recipe cannot go unnoticed.
    assert sbi.transform_seed("Train/Real/real_00000.jpg#sbi", 42) == 4131570535


def test_attrs_are_kept_and_adding_twice_is_refused(frame):
    result = sbi.add_pseudo_fakes(frame)
    assert result.attrs == frame.attrs and result.attrs["root"]
    with pytest.raises(ValueError, match="already"):
        sbi.add_pseudo_fakes(result)


def test_pseudo_fake_rows_load_and_nothing_is_written(shared_data, frame):
    before = _listing(shared_data)
    result = sbi.add_pseudo_fakes(frame)
    for row in result[result["transform_seed"] >= 0].head(3).itertuples():
        real = load_image(row.path)
        fake = sbi.pseudo_fake(real, row.transform_seed)
        assert fake.shape == real.shape and not np.array_equal(fake, real)
    assert _listing(shared_data) == before
    assert not any(name.endswith("#sbi") for name in os.listdir(Path(frame.attrs["root"])))


# ----------------------------------------------------------------------------- for the lesson
def test_preview_gallery_has_five_panels_per_face(faces):
    gallery, titles = sbi.preview_gallery(faces[:2], seed=0)
    assert len(gallery) == len(titles) == 10
    assert titles[0] == "real (target)" and titles[2].startswith("mask (ratio ")
    assert all(image.dtype == np.uint8 and image.shape == faces[0].shape for image in gallery[:5])
    assert np.array_equal(gallery[3], sbi.pseudo_fake(faces[0], 0))


def test_speed_reports_each_size(faces):
    table = sbi.speed(faces[0], sizes=(64, 96), count=3)
    assert list(table.index) == [64, 96]
    assert (table["images"] == 3).all() and (table["per_second_wall"] > 0).all()
