"""helpers.robustness: the perturbations, what of the fine detail survives them, and ROC-AUC under them."""
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from helpers import config, data, robustness, spectrum
from tests.conftest import textured_images

LEVELS = {"jpeg": [60, 10], "downscale": [4], "blur": [2.0]}


@pytest.fixture(scope="module")
def faces(dfdc) -> pd.DataFrame:
    """Six real and six fake test faces, each its own group (the index's source videos dropped)."""
    frame = data.index_dataset(dfdc).drop(columns=config.GROUP_COLUMN)
    return frame[frame["split"] == "test"].groupby("label").head(6).reset_index(drop=True)


@pytest.fixture(scope="module")
def face_images(faces) -> np.ndarray:
    """Four real and four fake of those faces, at 96 px."""
    return data.load_images(faces.groupby("label").head(4), 96)


@pytest.fixture(scope="module")
def textures() -> np.ndarray:
    """Eight 48 px uint8 images with both smooth shading and fine detail."""
    return textured_images(8, 48)


def test_importing_it_needs_no_tensorflow():
    code = "import sys, helpers.robustness; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- perturbations


def evidence(images, name, level) -> dict[str, float]:
    return robustness.evidence_kept(images, robustness.apply_perturbation(images, name, level))


@pytest.mark.parametrize("name", list(robustness.PERTURBATIONS))
def test_perturbation_keeps_shape_dtype_and_repeats(name, face_images):
    for level in robustness.PERTURBATIONS[name][1]:
        out = robustness.apply_perturbation(face_images, name, level)
        assert out.shape == face_images.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, robustness.apply_perturbation(face_images, name, level))


@pytest.mark.parametrize("name", list(robustness.PERTURBATIONS))
def test_harsher_levels_move_further_from_the_original(name, face_images):
    levels = robustness.PERTURBATIONS[name][1]
    scores = [evidence(face_images, name, level) for level in levels]
    psnrs = [score["psnr_db"] for score in scores]
    correlations = [score["hf_correlation"] for score in scores]
    assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs
    # Once the fine detail is gone the correlation sits near 0 and wobbles, hence the small tolerance.
    assert all(b < a + 0.05 for a, b in zip(correlations, correlations[1:])), correlations
    assert correlations[0] - correlations[-1] > 0.4, correlations


def test_lower_jpeg_quality_loses_more_fine_detail(face_images):
    correlation = {quality: evidence(face_images, "jpeg", quality)["hf_correlation"] for quality in (95, 50, 10)}
    assert correlation[95] > correlation[50] > correlation[10]


@pytest.mark.parametrize("name", ["blur", "downscale"])
def test_blur_and_downscaling_remove_high_frequency_energy(name, face_images):
    mild, *_, harsh = robustness.PERTURBATIONS[name][1]
    kept_mild = evidence(face_images, name, mild)["hf_energy_kept"]
    kept_harsh = evidence(face_images, name, harsh)["hf_energy_kept"]
    assert 1.0 > kept_mild > kept_harsh and kept_harsh < 0.1


def test_noise_is_seeded_by_the_image_unless_given_a_seed(textures):
    first, second = textures[0], textures[1]
    np.testing.assert_array_equal(robustness.noise(first, 8), robustness.noise(first, 8))
    added_to_first = robustness.noise(first, 8).astype(int) - first
    added_to_second = robustness.noise(second, 8).astype(int) - second
    assert not np.array_equal(added_to_first, added_to_second)
    assert not np.array_equal(robustness.noise(first, 8, seed=1), robustness.noise(first, 8, seed=2))


def test_apply_perturbation_handles_edge_cases(textures):
    with pytest.raises(ValueError, match="choose from"):
        robustness.apply_perturbation(textures, "sharpen", 1)
    assert robustness.apply_perturbation(textures[:0], "jpeg", 50).shape == (0, 48, 48, 3)


# ----------------------------------------------------------------------------- measuring what survives


def test_psnr_of_an_unchanged_image_is_infinite(textures):
    assert robustness.psnr(textures[0], textures[0]) == float("inf")


def test_psnr_follows_its_definition(textures):
    brighter = textures[0].astype(int) + 3  # every pixel off by 3: mean squared error 9
    assert robustness.psnr(textures[0], brighter) == pytest.approx(10 * np.log10(255**2 / 9))


def test_perturbation_table_covers_every_level(textures):
    table = robustness.perturbation_table(textures[:2])
    assert len(table) == sum(len(levels) for _, levels in robustness.PERTURBATIONS.values())
    assert list(table.columns) == ["perturbation", "step", "level", "psnr_db", "hf_energy_kept",
                                   "hf_correlation"]


def test_perturbation_spectra_put_the_original_first(textures):
    profiles = robustness.perturbation_spectra(textures[:2], {"blur 2": ("blur", 2.0), "noise 16": ("noise", 16)})
    assert list(profiles) == ["original", "blur 2", "noise 16"]
    frequencies, original = profiles["original"]
    np.testing.assert_allclose(original, spectrum.mean_radial_profile(textures[:2])[1])
    np.testing.assert_allclose(profiles["blur 2"][0], frequencies)
    assert profiles["blur 2"][1][-5:].sum() < original[-5:].sum() < profiles["noise 16"][1][-5:].sum()


def test_plots_return_figures(textures):
    table = robustness.perturbation_table(textures[:1])
    profiles = robustness.perturbation_spectra(textures[:1], {"jpeg 30": ("jpeg", 30)})
    figures = [robustness.plot_evidence_kept(table), robustness.plot_perturbation_spectra(profiles)]
    assert all(isinstance(fig, plt.Figure) for fig in figures)
    plt.close("all")


def test_perturbation_gallery_puts_the_original_first_in_every_row(textures):
    gallery, titles = robustness.perturbation_gallery(textures[0])
    row = 1 + len(robustness.PERTURBATIONS["jpeg"][1])
    assert len(gallery) == row * len(robustness.PERTURBATIONS) and titles[:2] == ["original", "jpeg 95"]
    np.testing.assert_array_equal(gallery[row], textures[0])


def test_crop_stays_inside_the_image(textures):
    assert robustness.crop(textures[0], fraction=0.5).shape == (24, 24, 3)
    np.testing.assert_array_equal(robustness.crop(textures[0], center=(1.0, 1.0), fraction=0.25),
                                  textures[0][-12:, -12:])


# ----------------------------------------------------------------------------- a detector on them


@pytest.fixture(scope="module")
def table(detector, faces) -> pd.DataFrame:
    return robustness.robustness_table(detector, faces, levels=LEVELS)


def test_one_row_per_perturbation_and_step(table):
    assert list(table.columns) == robustness.COLUMNS
    assert list(table["perturbation"]) == ["jpeg"] * 3 + ["downscale"] * 2 + ["blur"] * 2
    assert list(table["step"]) == [0, 1, 2, 0, 1, 0, 1]
    assert table.loc[table["step"] > 0, "level"].tolist() == [60, 10, 4, 2.0]
    assert table.loc[table["step"] == 0, "level"].isna().all()
    assert table["roc_auc"].between(0, 1).all() and table["balanced_accuracy"].between(0, 1).all()


def test_every_number_has_its_interval(table):
    for column in ("roc_auc", "balanced_accuracy"):
        assert (table[f"{column}_low"] <= table[column]).all() and (table[column] <= table[f"{column}_high"]).all()
    assert (table["roc_auc_high"] - table["roc_auc_low"] > 0.1).all(), "twelve images leave a wide interval"


def test_every_change_is_read_against_the_clean_step_on_the_same_images(table):
    clean = table[table["step"] == 0]
    for column in ("roc_auc", "balanced_accuracy"):
        assert (clean[[f"{column}_change", f"{column}_change_low", f"{column}_change_high"]] == 0).all().all()
        for _, rows in table.groupby("perturbation"):
            np.testing.assert_allclose(rows[f"{column}_change"], rows[column] - rows[column].iloc[0])
        assert (table[f"{column}_change_low"] <= table[f"{column}_change"]).all()
        assert (table[f"{column}_change"] <= table[f"{column}_change_high"]).all()
    # Paired, a change is read more sharply than the two steps' own intervals side by side.
    harsh = table[table["step"] > 0]
    assert ((harsh["roc_auc_change_high"] - harsh["roc_auc_change_low"]) <
            (harsh["roc_auc_high"] - harsh["roc_auc_low"]) + (clean["roc_auc_high"] - clean["roc_auc_low"]).max()).all()


def test_the_intervals_resample_the_groups_the_frame_names(table, detector, faces, dfdc):
    """The six real and six fake faces are six source videos' pairs (real_NNNNN and fake_NNNNN)."""
    videos = faces["relpath"].str.extract(r"_(\d+)\.", expand=False)
    assert videos.nunique() == 6
    index = data.index_dataset(dfdc).set_index("relpath")[config.GROUP_COLUMN]
    assert index[faces["relpath"]].nunique() == 6, "the data index names the same six pairs"
    grouped = robustness.robustness_table(detector, faces.assign(group=videos), perturbations=("jpeg",),
                                          levels={"jpeg": [10]})
    plain = table[table["perturbation"] == "jpeg"].iloc[[0, 2]].reset_index(drop=True)
    np.testing.assert_allclose(grouped["roc_auc_change"], plain["roc_auc_change"])  # the same scores
    bounds = ["roc_auc_low", "roc_auc_high", "roc_auc_change_low", "roc_auc_change_high"]
    assert not np.allclose(grouped[bounds], plain[bounds]), "six pairs are not twelve independent images"


def test_step_zero_is_the_clean_auc(table, detector, faces):
    clean = detector.p_fake(data.load_images(faces, detector.image_size))  # what evaluate and predict see
    expected = skm.roc_auc_score(faces["label"], clean)
    assert np.allclose(table.loc[table["step"] == 0, "roc_auc"], expected)


def test_repeatable(table, detector, faces):
    pd.testing.assert_frame_equal(robustness.robustness_table(detector, faces, levels=LEVELS), table)


def test_default_levels_and_noise(detector, faces):
    result = robustness.robustness_table(detector, faces.iloc[[0, 1, -2, -1]], perturbations=("noise",))
    assert result["level"].dropna().tolist() == [2, 4, 8, 16, 32]


def test_plain_errors(detector, faces):
    with pytest.raises(ValueError, match="Unknown perturbation"):
        robustness.robustness_table(detector, faces, perturbations=("sepia",))
    with pytest.raises(ValueError, match="both classes"):
        robustness.robustness_table(detector, faces[faces["label"] == 0], levels=LEVELS)
