"""Small steps the later lessons share: finding the model an earlier lesson saved.

Each lesson also runs on its own: when the model it needs is missing, the `smoke` profile trains
one on the spot (seconds) and says so; other profiles stop with one line naming the lesson or
command to run and how long it takes, rather than silently spending minutes or hours.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers import config, model_folders, saving, train
from helpers.detector import Detector
from helpers.errors import MissingModelError


# How long the missing training takes, as measured (cpu) or estimated (full); see the README's profiles.
TRAINING_TIME = {"cpu": "10-25 min on 2 CPU cores, measured on the shared face sets",
                 "full": "hours on a Colab GPU, an estimate"}


def _ensure(folder: Path, profile: config.Profile, lesson: str, command: str, make) -> None:
    """Run `make()` to create the model folder if it is missing and the profile is `smoke`."""
    if (folder / saving.SIDECAR_FILE).is_file():
        return
    if profile.name != "smoke":
        raise MissingModelError(f"No trained model in {folder}: run {lesson} first (or `{command}`; "
                                f"{TRAINING_TIME[profile.name]}).")
    print(f"No trained model in {folder} yet: training one now (smoke profile, seconds).")
    make()


def _train_command(root: Path, profile: config.Profile) -> str:
    return f"deepfake-lessons train --data {root} --profile {profile.name}"


def load_stage1(root=None, profile: config.Profile | str | None = None, verbose: int | str = 2):
    """The stage-1 model lesson 03 saved, as (Keras model, metadata, history)."""
    root, profile = config.data_root(root), config.get_profile(profile)
    folder = model_folders.model_dir(root, profile) / model_folders.STAGE1_DIR
    _ensure(folder, profile, "lesson 03", _train_command(root, profile),
            lambda: train.train(root, profile, folder, verbose=verbose, stop_after="stage1"))
    model, metadata = saving.load_model(folder)
    return model, metadata, pd.read_csv(folder / model_folders.HISTORY_FILE)


def load_final_model(root=None, profile: config.Profile | str | None = None, verbose: int | str = 2,
                     mode: str = "real+fake") -> Detector:
    """The final model for this data root, profile and training mode (lesson 04 or 07), as a Detector.

    In `smoke`, a missing one is trained on the spot; it replaces the stage-1 model that lesson 03 may
    have left in the same folder (`overwrite`), never anything else (`model_folders.check_output`).
    """
    root, profile = config.data_root(root), config.get_profile(profile)
    folder = model_folders.model_dir(root, profile, mode)
    lesson = "lesson 04" if mode == "real+fake" else "lesson 08"
    _ensure(folder, profile, lesson, f"{_train_command(root, profile)} --mode {mode}",
            lambda: train.train(root, profile, folder, verbose=verbose, mode=mode, overwrite=True))
    return Detector.load(folder)
