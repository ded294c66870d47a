"""Training modes with self-blended images, and the cross-dataset table."""
import pandas as pd
import pytest

from helpers import config, data, generalisation, train


@pytest.fixture(scope="module")
def smoke_frames(dfdc):
    return train.load_frames(dfdc, config.get_profile("smoke"), verbose=False)


def test_real_plus_sbi_keeps_no_real_fake(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+sbi")
    for split in ("train", "validation"):
        fakes = frames[split][frames[split]["label"] == 1]
        assert (fakes["transform_seed"] >= 0).all(), "every fake is a pseudo-fake"
        assert fakes["relpath"].str.endswith("#sbi").all()
        assert data.counts(frames[split]).loc[split].tolist() == [24, 24]
    assert frames["test"] is smoke_frames["test"], "the test split is never changed"


def test_real_fake_sbi_adds_one_pseudo_fake_per_real(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+fake+sbi")
    assert data.counts(frames["train"]).loc["train"].tolist() == [24, 48]
    assert train.with_mode(smoke_frames, "real+fake") is smoke_frames
    with pytest.raises(ValueError, match="real\\+sbi"):
        train.with_mode(smoke_frames, "sbi-only")


def test_sbi_rows_flow_through_the_pipeline(smoke_frames):
    frames = train.with_mode(smoke_frames, "real+sbi")
    images, labels = next(iter(train.dataset(frames["train"].tail(4), config.get_profile("smoke"))))
    assert images.shape == (4, 96, 96, 3) and labels.numpy().tolist() == [1, 1, 1, 1]


def test_model_dir_names_the_mode(dfdc):
    smoke = config.get_profile("smoke")
    assert train.model_dir(dfdc, smoke).name == "smoke-dfdc-faces"
    assert train.model_dir(dfdc, smoke, "real+sbi").name == "smoke-dfdc-faces-real-sbi"


def test_cross_dataset_table_and_its_reading(trained_model_dir, dfdc, ffhq):
    table = generalisation.cross_dataset_table(
        {"standard": ("dfdc", "real+fake", trained_model_dir)}, {"dfdc": dfdc, "ffhq": ffhq},
        profile=config.get_profile("smoke"))
    assert list(table["tested on"]) == ["dfdc", "ffhq"]
    assert list(table["in-domain"]) == [True, False]
    assert table["ROC-AUC"].between(0, 1).all() and (table["images"] == 48).all()
    assert generalisation.auc_matrix(table).shape == (1, 2)
    sentence = generalisation.describe(table)
    assert "Trained on dfdc (real+fake)" in sentence and "on ffhq" in sentence


def test_reading_says_when_the_own_fakes_were_never_seen():
    table = pd.DataFrame({"trained on": ["dfdc"] * 4, "mode": ["real+fake"] * 2 + ["real+sbi"] * 2,
                          "tested on": ["dfdc", "ffhq"] * 2, "in-domain": [True, False] * 2,
                          "ROC-AUC": [0.84, 0.55, 0.54, 0.40]})
    standard, sbi_only = generalisation.describe(table).splitlines()
    assert "0.84 on its own test set" in standard and "never saw" not in standard
    assert "0.54 on dfdc's test set (fakes it never saw)" in sbi_only
    assert standard.endswith("close to chance.") and sbi_only.endswith("more real than the real faces.")


def test_data_roots_add_the_cross_root_only_when_set(monkeypatch, dfdc, ffhq):
    monkeypatch.setenv(config.DATA_ENV, str(dfdc))
    monkeypatch.delenv(config.CROSS_DATA_ENV, raising=False)
    assert generalisation.data_roots() == {"dfdc-faces": dfdc.resolve()}
    monkeypatch.setenv(config.CROSS_DATA_ENV, str(ffhq))
    assert generalisation.data_roots() == {"dfdc-faces": dfdc.resolve(), "ffhq-stylegan2": ffhq.resolve()}
