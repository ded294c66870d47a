"""Where model folders live, and how a training run writes one without losing anything.

    models/<profile>-<data folder>[-<mode>]   the lessons' default (`model_dir`)
    OUT.partial/                              a run trains here, with a marker file saying so
    OUT/                                      the finished model folder (see `helpers.saving`)

A run never deletes, renames or overwrites what it did not make. It trains in OUT.partial and puts
that in OUT's place only once both stages are done (`replace_folder`), so an interrupted run leaves
OUT as it was and the same command resumes (`finished_stage1`). `check_output` decides first what
OUT and OUT.partial may be:

- OUT missing, or an empty folder: written;
- OUT a model folder (`is_model_folder`: a sidecar `helpers.saving` can read, and nothing a model
  folder does not hold): replaced only with `overwrite`;
- anything else (a file, a data set, a folder of models, a model folder with a user's notes in it):
  refused, with or without `overwrite`;
- OUT.partial holding the marker of an earlier run: resumed; anything else there: refused.

The commands that write a result file (`predict --csv`, `evaluate --json`) ask `check_result_file`
first: never into a model folder, whose files its sidecar vouches for.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from helpers import config, saving
from helpers.errors import FolderExistsError, OutputExistsError
from helpers.files import check_new_file, one_line, printable, write_json

PARTIAL_SUFFIX = ".partial"  # a run trains here, next to OUT, and becomes OUT only once it is complete
RUN_MARKER = ".training-run.json"  # in OUT.partial: what proves that a training run made the folder
CHECKPOINT_DIR = "checkpoints"
STAGE1_DIR = "stage1"
HISTORY_FILE = "history.csv"
# Every name a model folder holds: what `train` writes, and what `export` adds.
MODEL_FOLDER_NAMES = {saving.MODEL_FILE, saving.WEIGHTS_FILE, saving.SIDECAR_FILE, saving.TRAINING_FILES,
                      HISTORY_FILE, "log_stage1.csv", "log_stage2.csv", CHECKPOINT_DIR, STAGE1_DIR,
                      STAGE1_DIR + PARTIAL_SUFFIX, RUN_MARKER}
EXPORT_PATTERN = "model*.tflite"


def model_dir(root: Path, profile: config.Profile, mode: str = "real+fake") -> Path:
    """Where the lessons keep a model: models/<profile>-<data folder>, plus -<mode> for the SBI modes.

    Two data roots with the same folder name share that name. A folder holding a model (or its stage 1)
    trained on another data root that still exists is refused (FolderExistsError), so that neither
    model is read for the other nor overwritten. One whose data root is gone (moved here) is used.
    """
    suffix = "" if mode == "real+fake" else "-" + mode.replace("+", "-")
    folder = config.MODELS_DIR / f"{profile.name}-{root.name}{suffix}"
    for trained in (folder, folder / STAGE1_DIR):
        if (trained / saving.SIDECAR_FILE).is_file():
            other = saving.read_metadata(trained).get("data", {}).get("root")
            if other and Path(other).is_dir() and not Path(other).resolve().is_relative_to(root):
                raise FolderExistsError(
                    f"{trained} holds a model trained on {other}, another data root called {root.name!r}: "
                    f"rename one of the two data folders, move {folder} away, or train with --out.")
    return folder


def partial_dir(out_dir: Path) -> Path:
    """OUT.partial: where a run for OUT trains."""
    return out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)


def foreign_names(folder: Path) -> list[str]:
    """What `folder` holds that a model folder does not: the names a replacement would lose."""
    return sorted(path.name for path in folder.iterdir()
                  if path.name not in MODEL_FOLDER_NAMES and not path.match(EXPORT_PATTERN))


def is_model_folder(folder: Path) -> bool:
    """A folder `train` made: nothing a model folder does not hold, and a sidecar that `saving.read_metadata`
    accepts, of the final model or of its stage 1 (lesson 03 saves that first)."""
    if foreign_names(folder):
        return False
    for candidate in (folder, folder / STAGE1_DIR):
        try:
            saving.read_metadata(candidate)
            return True
        except saving.ModelFileError:
            continue
    return False


def model_folder_holding(path: str | os.PathLike) -> Path | None:
    """The model folder (or stage 1, or a run's OUT.partial) that the file `path` would go into, or None:
    a folder with a sidecar or a run marker, or a sub-folder a model folder keeps (checkpoints, stage1)."""
    folder = Path(path).parent.resolve()
    candidates = (folder, folder.parent) if folder.name in MODEL_FOLDER_NAMES else (folder,)
    return next((candidate for candidate in candidates
                 if any((candidate / name).is_file() for name in (saving.SIDECAR_FILE, RUN_MARKER))), None)


def check_result_file(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, a result file (`predict --csv`, `evaluate --json`) a command may not write.

    Never a file inside a model folder, even with `overwrite`: its sidecar vouches for its files, and a
    stray file would make `train --overwrite` refuse the folder. Otherwise `files.check_new_file`: not a
    folder, and not an existing file unless `overwrite`.
    """
    holder = model_folder_holding(path)
    if holder is not None:
        raise OutputExistsError(one_line(f"{path} would be written inside the model folder {holder}: choose a "
                                         "file outside it (nothing was written)."))
    return check_new_file(path, overwrite)


def _listing(folder: Path, names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return printable(f"{folder} holds {shown}")


def check_output(out_dir: Path, overwrite: bool = False) -> None:
    """Refuse, before any training, an OUT or OUT.partial this run may not write (FolderExistsError).

    The rules are in the module docstring: a run replaces only a model folder, and only with `overwrite`.
    """
    partial = partial_dir(out_dir)
    for path in (out_dir, partial):
        if path.exists() and not path.is_dir():
            raise FolderExistsError(printable(f"{path} is a file, not a model folder: choose another --out "
                                              "(nothing was changed)."))
    if partial.is_dir() and any(partial.iterdir()) and not (partial / RUN_MARKER).is_file():
        raise FolderExistsError(printable(f"{partial} exists and was not made by a training run: move it away or "
                                          "choose another --out (nothing was changed)."))
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    foreign = foreign_names(out_dir)
    if foreign or not is_model_folder(out_dir):
        what = _listing(out_dir, foreign) if foreign else printable(f"{out_dir} holds no model this program can read")
        raise FolderExistsError(f"{what}: it is not a model folder, so training will not replace it, even with "
                                "--overwrite. Choose another --out (nothing was changed).")
    if not overwrite:
        raise FolderExistsError(printable(f"{out_dir} already holds a trained model: choose another --out, or pass "
                                          "--overwrite to replace it once the new one is trained."))


def start_partial(out_dir: Path, settings: dict) -> Path:
    """Create (or reuse) OUT.partial with its marker, after `check_output` allowed it; return the folder."""
    partial = partial_dir(out_dir)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / RUN_MARKER, {"for": str(out_dir), "settings": settings})
    return partial


def finished_stage1(folder: Path, settings: dict):
    """The stage 1 an interrupted run with the same `settings` finished in `folder`: (model, history, seconds).

    None when there is none, or when it was trained with other settings (then stage 1 trains again).
    Under a distribution strategy, call it inside its scope, so the model is loaded onto every device.
    """
    if not ((folder / saving.SIDECAR_FILE).is_file() and (folder / HISTORY_FILE).is_file()):
        return None
    recorded = saving.read_metadata(folder).get("training", {})
    if recorded.get("settings") != settings:
        return None
    model, _ = saving.load_model(folder, verbose=False)  # saved in float32
    if settings["dtype_policy"] != "float32":
        from helpers import classifier  # Keras: imported only here, so checking an output path stays instant

        model = classifier.with_dtype_policy(model, settings["dtype_policy"])
    history = pd.read_csv(folder / HISTORY_FILE).drop(columns="global_epoch")
    history.attrs["stopped_by_time_budget"] = recorded["stopped_by_time_budget"]
    return model, history, recorded["stage1_seconds"]


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder `new` in `target`'s place; an old `target` goes only once `new` is there.

    `target` must be missing, empty, or a model folder the caller may replace (`check_output`). The old
    one is first renamed into a fresh folder that this call makes, so nothing else is ever touched.
    """
    (new / RUN_MARKER).unlink(missing_ok=True)
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists() and not is_model_folder(target):  # changed since `check_output` looked at it
        raise FolderExistsError(printable(f"{target} no longer holds only a model: not replaced; the new model "
                                          f"is in {new}."))
    if not target.exists():
        new.rename(target)
        return
    holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
    target.rename(holder / target.name)
    new.rename(target)
    shutil.rmtree(holder)


@contextlib.contextmanager
def kept_on_interrupt(final_dir: Path):
    """Ctrl-C (or a notebook's Stop button) becomes a KeyboardInterrupt that says what was kept.

    helpers.cli prints it as one line, and so does a lesson's kernel (`notebook.start`).
    """
    try:
        yield
    except KeyboardInterrupt:
        partial = partial_dir(final_dir)
        if partial.is_dir() and not any(path.is_file() and path.name != RUN_MARKER for path in partial.rglob("*")):
            shutil.rmtree(partial)  # only this run's marker and empty folders: nothing was trained yet
        kept = f"{final_dir} is as it was" if final_dir.exists() else f"no model was saved in {final_dir}"
        if partial.exists():
            kept += (f"; {partial.name} keeps the epochs finished so far, and training the same way again "
                     "resumes from there")
        raise KeyboardInterrupt(f"{kept}.") from None
