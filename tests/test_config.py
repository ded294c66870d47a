"""Profiles, paths and seeds."""
import numpy as np
import pytest

from helpers import config


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "cpu")
    assert config.get_profile().name == "cpu"
    monkeypatch.setenv(config.PROFILE_ENV, " SMOKE ")
    assert config.get_profile().name == "smoke"
    assert config.get_profile("full").name == "full"  # an argument wins over the environment


def test_default_profile_is_cpu(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    assert config.get_profile() is config.PROFILES["cpu"]


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="smoke, cpu, full"):
        config.get_profile("huge")


def test_smoke_is_small_and_full_uses_everything():
    smoke, cpu, full = (config.PROFILES[n] for n in ("smoke", "cpu", "full"))
    assert smoke.image_size < cpu.image_size == full.image_size == 224
    assert smoke.max_per_class < cpu.max_per_class and full.max_per_class is None
    assert smoke.balance_classes and not cpu.balance_classes


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    assert config.data_root() == config.DATA_DIR.resolve()
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    assert config.data_root() == tmp_path.resolve()
    assert config.data_root(tmp_path / "x") == (tmp_path / "x").resolve()


def test_paths_live_in_the_repository():
    assert (config.REPO_ROOT / "pyproject.toml").is_file()
    for path in (config.DATA_DIR, config.FIGURES_DIR, config.MODELS_DIR, config.CACHE_DIR):
        assert path.parent == config.REPO_ROOT


def test_set_seeds_repeats_random_draws():
    import keras

    config.set_seeds(7)
    first = np.random.rand(3), keras.random.uniform((3,)).numpy()
    config.set_seeds(7)
    second = np.random.rand(3), keras.random.uniform((3,)).numpy()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
