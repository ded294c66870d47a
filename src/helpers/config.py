"""Paths, run profiles and seeds: the one place every lesson and helper reads its settings from.

It also names, once, the labels (CLASS_NAMES), the splits (SPLITS) and every environment variable
the helpers read. Nothing here imports TensorFlow, so reading the configuration is instant.

`resolve` reads the settings a user can choose (profile, data roots, backbone, runtime): from its
arguments, else the environment, else the defaults, once, where a lesson or command starts; the
helpers below take the values it returns. Importing this module changes nothing outside it: it only
finds the repository and the storage folder ($DEEPFAKE_STORAGE). One call does change module state
on purpose: `use_storage` (Colab: Google Drive) moves DATA_DIR, MODELS_DIR, FIGURES_DIR and CACHE_DIR
for the rest of the session, and every helper reads them when it runs, not when it is imported.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path


from helpers.errors import BadArgumentError

# Environment variables a learner (or CI) sets to steer the lessons.
PROFILE_ENV = "DEEPFAKE_PROFILE"  # smoke | cpu | full
DATA_ENV = "DEEPFAKE_DATA"  # the dataset root
CROSS_DATA_ENV = "DEEPFAKE_CROSS_DATA"  # a second data root, for cross-dataset checks (lessons 07, 08)
BACKBONE_ENV = "DEEPFAKE_BACKBONE"  # auto | efficientnet_b0 | efficientnet_lite0
RUNTIME_ENV = "DEEPFAKE_RUNTIME"  # what runs the model in helpers.detector: auto | keras | litert
HOME_ENV = "DEEPFAKE_HOME"  # the repository root, when the package is installed elsewhere
STORAGE_ENV = "DEEPFAKE_STORAGE"  # where data/, figures/, models/ and .cache/ live (default: the repository)
TF_LOGS_ENV = "DEEPFAKE_TF_LOGS"  # 1: show TensorFlow's start-up lines, which helpers.tensorflow_logs filters out
MODEL_DIR_ENV = "DEEPFAKE_MODEL_DIR"  # the model folder the web app serves on a Space (default: model)
MODEL_REPO_ENV = "DEEPFAKE_MODEL_REPO"  # or a Hugging Face model repo to download it from
FLAG_DIR_ENV = "DEEPFAKE_FLAG_DIR"  # where the web app saves flagged uploads (default: data/flagged)
LESSON_SETS_URL_ENV = "DEEPFAKE_LESSON_SETS_URL"  # where `download lesson-sets` fetches sources (default: GitHub's raw files)
# Environment variables of other tools that the helpers read or set.
KAGGLE_ENV = ("KAGGLE_USERNAME", "KAGGLE_KEY")  # a Kaggle API token, for downloading the dataset
KERAS_HOME_ENV = "KERAS_HOME"  # where Keras keeps downloaded weights (default: ~/.keras)
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow's C++ log level: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR
GRADIO_ANALYTICS_ENV = "GRADIO_ANALYTICS_ENABLED"  # helpers.web_app sets it to False: no telemetry
HF_TELEMETRY_ENV = "HF_HUB_DISABLE_TELEMETRY"  # and this to 1, for huggingface_hub (a Space's model download)

CLASS_NAMES = ("real", "fake")  # index = label: 0 = real, 1 = fake
SPLITS = ("train", "validation", "test")
GROUP_COLUMN = "group"  # a data frame's column naming each image's group (its source video), where it is known

SEED = 42
MAX_NATIVE_SIZE = 384  # larger images are resized to the profile's size: the cost grows with the square
REPO_SLUG = "deepfake-lessons/deepfake-lessons"  # owner/name on GitHub, used for Colab links


def _find_repo_root() -> Path:
    """The repository root: $DEEPFAKE_HOME, else the checkout this file lives in, else the cwd."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd().resolve()


REPO_ROOT = _find_repo_root()


def use_storage(folder: str | os.PathLike) -> Path:
    """Keep data/, figures/, models/ and .cache/ in `folder` from now on (on Colab: a Google Drive folder).

    Also sets $DEEPFAKE_STORAGE, so commands started from the notebook (`!deepfake-lessons ...`) agree.
    """
    _set_storage(folder)
    os.environ[STORAGE_ENV] = str(STORAGE_ROOT)
    return STORAGE_ROOT


def _set_storage(folder: str | os.PathLike) -> None:
    global STORAGE_ROOT, DATA_DIR, FIGURES_DIR, MODELS_DIR, CACHE_DIR
    STORAGE_ROOT = Path(folder).expanduser().resolve()
    DATA_DIR = STORAGE_ROOT / "data"
    FIGURES_DIR = STORAGE_ROOT / "figures"
    MODELS_DIR = STORAGE_ROOT / "models"
    CACHE_DIR = STORAGE_ROOT / ".cache"  # feature caches and other things that are safe to delete


_set_storage(os.environ.get(STORAGE_ENV) or REPO_ROOT)


@dataclass(frozen=True)
class Profile:
    """How big a run is: how many images, at what size, for how many epochs."""

    name: str
    image_size: int  # pixels per side the model sees
    native_size: bool  # use the data's own size instead, when every image has the same square size
    max_per_class: int | None  # per split and class; None means every image
    balance_classes: bool  # draw the same number of each class (else keep the data's own ratio)
    batch_size: int  # per device: training on several GPUs multiplies it (helpers.train.global_batch_size)
    stage1_epochs: int
    stage2_epochs: int
    unfreeze_blocks: int  # whole blocks unfrozen from the top in stage 2
    stage1_lr: float
    stage2_lr: float
    feature_cache: bool  # stage 1 trains the head on precomputed backbone features
    augmentations: tuple[str, ...]  # from the original recipe: flip, rotation, zoom (lesson 02)
    cache_images: bool  # keep decoded images in memory between epochs
    mixed_precision: bool  # on a GPU, compute in float16 (Keras "mixed_float16"); float32 on a CPU
    time_budget_s: float | None  # seconds from the start of `train`; it stops after the epoch that ends past them
    description: str

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile(
        name="smoke", image_size=96, native_size=False, max_per_class=24, balance_classes=True, batch_size=16,
        stage1_epochs=1, stage2_epochs=1, unfreeze_blocks=1, stage1_lr=1e-3, stage2_lr=1e-4,
        feature_cache=True, cache_images=True, augmentations=("flip", "rotation", "zoom"),
        mixed_precision=False, time_budget_s=None,
        description="CI: a balanced few dozen images per class and split at 96 px, one short epoch per stage.",
    ),
    "cpu": Profile(
        name="cpu", image_size=224, native_size=True, max_per_class=2000, balance_classes=False, batch_size=32,
        stage1_epochs=30, stage2_epochs=20, unfreeze_blocks=16, stage1_lr=3e-3, stage2_lr=1e-4,
        feature_cache=True, cache_images=True, augmentations=("flip",),
        mixed_precision=False, time_budget_s=None,
        description="A laptop run: up to 2,000 images per class and split at their own size (else 224 px), minutes on a CPU.",
    ),
    "full": Profile(
        name="full", image_size=224, native_size=True, max_per_class=None, balance_classes=False, batch_size=64,
        stage1_epochs=8, stage2_epochs=20, unfreeze_blocks=6, stage1_lr=1e-3, stage2_lr=1e-4,
        feature_cache=False, cache_images=False, augmentations=("flip", "rotation", "zoom"),
        mixed_precision=True, time_budget_s=None,
        description="The whole dataset on a GPU (Colab), with augmentation in both stages.",
    ),
}
DEFAULT_PROFILE = "cpu"


def get_profile(profile: Profile | str | None = None) -> Profile:
    """The profile given or named, else the one in $DEEPFAKE_PROFILE, else the default (`cpu`)."""
    if isinstance(profile, Profile):
        return profile
    name = (profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE).strip().lower()
    if name not in PROFILES:
        raise BadArgumentError(f"Unknown profile {name!r}: choose one of {', '.join(PROFILES)} "
                               f"(set ${PROFILE_ENV} or pass profile=...).")
    return PROFILES[name]


def data_root(path: str | os.PathLike | None = None) -> Path:
    """The dataset root: the argument, else $DEEPFAKE_DATA, else `data/` in the repository."""
    chosen = path or os.environ.get(DATA_ENV) or DATA_DIR
    return Path(chosen).expanduser().resolve()


def backbone_name(name: str | None = None) -> str:
    """The backbone asked for: the argument, else $DEEPFAKE_BACKBONE, else `auto`."""
    return (name or os.environ.get(BACKBONE_ENV) or "auto").strip().lower()


RUNTIMES = ("auto", "keras", "litert")  # what scores images in helpers.detector (auto: LiteRT when fresh)


def resolve_runtime(runtime: str | None = None) -> str:
    """The runtime asked for: the argument, else $DEEPFAKE_RUNTIME, else `auto`."""
    runtime = (runtime or os.environ.get(RUNTIME_ENV) or "auto").strip().lower()
    if runtime not in RUNTIMES:
        raise BadArgumentError(f"Unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)} "
                               f"(set ${RUNTIME_ENV} or pass runtime=...).")
    return runtime


def set_seeds(seed: int = SEED) -> int:
    """Seed Python, NumPy, Keras and TensorFlow in one call (`keras.utils.set_random_seed` does all four)."""
    import keras  # imported here so that reading the configuration stays instant

    keras.utils.set_random_seed(seed)
    return seed


@dataclass(frozen=True)
class Settings:
    """What a lesson or a command runs with: resolved once, where the user comes in (`resolve`)."""

    profile: Profile
    data_root: Path
    cross_data_root: Path | None  # a second data set for the cross-dataset lessons, when there is one
    backbone: str  # auto | efficientnet_b0 | efficientnet_lite0, as asked (helpers.backbones settles auto)
    runtime: str  # auto | keras | litert

    def describe(self) -> str:
        """One line for the top of every notebook: which profile, data root and backbone are in use."""
        return (f"profile={self.profile.name} ({self.profile.description}) | data root={self.data_root} | "
                f"backbone={self.backbone}")


def resolve(profile: Profile | str | None = None, data: str | os.PathLike | None = None,
            cross_data: str | os.PathLike | None = None, backbone: str | None = None,
            runtime: str | None = None) -> Settings:
    """Every setting from its argument, else its environment variable, else its default: the one place they are read."""
    cross = cross_data or os.environ.get(CROSS_DATA_ENV)
    return Settings(get_profile(profile), data_root(data), Path(cross).expanduser().resolve() if cross else None,
                    backbone_name(backbone), resolve_runtime(runtime))
