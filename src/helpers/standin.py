"""A stand-in face set for a first run without any face data: it proves the code runs, not that a detector works.

The real faces are the 100 face crops that ship inside scikit-image (`skimage.data.lfw_subset()`:
25x25 greyscale crops of faces picked at random from Labeled Faces in the Wild; LFW holds many
photos of a few public figures, so a person can appear twice). Each face is upscaled to 128 px and
saved as an RGB JPEG at quality 90, like the shared face sets. The fakes are made from those faces
by real manipulations, never drawn shapes:

    lfw-standin-sbi/    the Kaggle layout (Train|Validation|Test x Real|Fake), 24 faces per split;
                        each fake is the self-blended image (`helpers.sbi`) of the real of the same name
    lfw-standin-swaps/  a flat real/ + fake/ layout, the 28 other faces (for $DEEPFAKE_CROSS_DATA);
                        each fake is a crude face swap: the inner face of another person of the same
                        split, colour-matched and blended onto the crop of the real of the same name

No face crop is used in two splits or in both folders (the subset has no names, so two photos of one
person could still land apart). The same files come out byte for byte on every run of one install.
Each folder carries a marker file, STAND-IN.md, that says what it is (see `is_standin`).

Command line: `deepfake-lessons standin OUT_DIR` (or `python -m helpers standin OUT_DIR`) writes both
folders and prints how to use them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from helpers import config
from helpers.errors import FolderExistsError

MARKER_FILE = "STAND-IN.md"
LABEL = ("a stand-in set built from pictures bundled with scikit-image: "
         "it proves the code runs, not that a detector works")
SPLITS_ROOT = "lfw-standin-sbi"  # folder names no real data set uses, so model folders never collide
FLAT_ROOT = "lfw-standin-swaps"
IMAGE_SIZE = 128
JPEG_QUALITY = 90
FACES_PER_SPLIT = 24  # the smoke profile's count per class and split
KAGGLE_FOLDERS = {"train": "Train", "validation": "Validation", "test": "Test"}
LFW_FACES = 100  # lfw_subset(): the first 100 images are faces, the other 100 are not


def is_standin(root) -> bool:
    """True when `root` is a folder this module wrote (it holds the marker file)."""
    return (Path(root) / MARKER_FILE).is_file()


def face_name(index: int) -> str:
    """The file name of one face, after its position in scikit-image's LFW subset."""
    return f"lfw-{index:03d}.jpg"


def bundled_faces() -> list[np.ndarray]:
    """scikit-image's 100 LFW face crops as (IMAGE_SIZE, IMAGE_SIZE, 3) uint8 RGB arrays."""
    from skimage import data as skimage_data

    from helpers.images import load_image, resize

    return [resize(load_image(face), IMAGE_SIZE) for face in skimage_data.lfw_subset()[:LFW_FACES]]


def assign_faces(seed: int = config.SEED) -> tuple[dict[str, list[int]], list[int]]:
    """Which faces go where: {split: face indices} for the Kaggle layout, and the rest for the flat one."""
    order = np.random.default_rng(seed).permutation(LFW_FACES).tolist()
    splits = {split: sorted(order[i * FACES_PER_SPLIT:(i + 1) * FACES_PER_SPLIT])
              for i, split in enumerate(KAGGLE_FOLDERS)}
    return splits, sorted(order[len(KAGGLE_FOLDERS) * FACES_PER_SPLIT:])


def swap_donors(indices: list[int], seed: int = config.SEED) -> dict[int, int]:
    """{base face: donor face} for the flat layout: the donor is another face of the base's split.

    Real and fake share file names, so the data layer's name-based 70/15/15 split puts each real and
    its fake in the same split; the donor is the next face of that split.
    """
    from helpers import data

    names = [face_name(index) for index in indices]
    split_of = dict(zip(indices, data._flat_split(names, seed)))  # the data layer's own split rule
    donors = {}
    for split in config.SPLITS:
        members = [index for index in indices if split_of[index] == split]
        donors.update({base: members[(i + 1) % len(members)] for i, base in enumerate(members)})
    return donors


def match_colours(donor: np.ndarray, base: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The donor with each channel's mean and spread inside the mask moved to the base's (Reinhard-style)."""
    inside = mask > 0.5
    donor, base = donor.astype(np.float32), base.astype(np.float32)
    matched = np.empty_like(donor)
    for channel in range(3):
        d, b = donor[..., channel], base[..., channel]
        scale = b[inside].std() / max(d[inside].std(), 1.0)
        matched[..., channel] = (d - d[inside].mean()) * scale + b[inside].mean()
    return np.clip(np.rint(matched), 0, 255).astype(np.uint8)


def face_swap(donor: np.ndarray, base: np.ndarray, seed: int) -> np.ndarray:
    """A crude face swap: the donor's inner face, colour-matched, blended onto the base through a soft mask."""
    from helpers import sbi

    mask = sbi.face_mask(base.shape[:2], np.random.default_rng(seed))
    return sbi.blend(match_colours(donor, base, mask), base, mask)


def save_jpeg(pixels: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=JPEG_QUALITY)


def write_marker(root: Path, layout: str, fakes: str, counts: str) -> None:
    """STAND-IN.md: what this folder is and how it was made (the data layer only reads class folders)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER_FILE).write_text(
        f"# {root.name}: a stand-in face set\n\n"
        f"This is {LABEL}.\n\n"
        f"- Layout: {layout}; {counts}; {IMAGE_SIZE}x{IMAGE_SIZE} RGB JPEG, quality {JPEG_QUALITY}.\n"
        "- Real: 25x25 greyscale face crops from Labeled Faces in the Wild, as bundled with scikit-image\n"
        "  (`skimage.data.lfw_subset()`), upscaled.\n"
        f"- Fake: {fakes}\n"
        "- Each fake is made from faces of its own split only.\n"
        "- Rebuild it with `deepfake-lessons standin OUT_DIR`.\n")


def write_splits_root(root: Path, faces: list[np.ndarray], splits: dict[str, list[int]]) -> None:
    """The Kaggle layout: each real face and its self-blended image, under the same name."""
    from helpers import sbi

    for split, indices in splits.items():
        folder = root / KAGGLE_FOLDERS[split]
        for index in indices:
            save_jpeg(faces[index], folder / "Real" / face_name(index))
            save_jpeg(sbi.pseudo_fake(faces[index], seed=index), folder / "Fake" / face_name(index))
    per_split = ", ".join(f"{KAGGLE_FOLDERS[s]} {len(i)}" for s, i in splits.items())
    write_marker(root, "Train|Validation|Test x Real|Fake", "self-blended images (`helpers.sbi`), "
                 "each made from the real face of the same name.", f"real and fake per split: {per_split}")


def write_flat_root(root: Path, faces: list[np.ndarray], indices: list[int]) -> None:
    """The flat layout: each real face, and under the same name a swap of another face onto it."""
    for base, donor in swap_donors(indices).items():
        save_jpeg(faces[base], root / "real" / face_name(base))
        save_jpeg(face_swap(faces[donor], faces[base], seed=base), root / "fake" / face_name(base))
    write_marker(root, "flat real/ + fake/ (split 70/15/15 by the data layer)",
                 "crude face swaps: the inner face of another person of the same split, colour-matched "
                 "and blended onto the crop of the real face of the same name.", f"{len(indices)} real, "
                 f"{len(indices)} fake")


def write_standin_sets(out_dir) -> dict[str, Path]:
    """Write both stand-in folders into `out_dir` (new or empty); return {environment variable: folder}."""
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FolderExistsError(f"{out_dir} already exists and is not an empty folder: choose a new one.")
    faces = bundled_faces()
    splits, flat = assign_faces()
    write_splits_root(out_dir / SPLITS_ROOT, faces, splits)
    write_flat_root(out_dir / FLAT_ROOT, faces, flat)
    return {config.DATA_ENV: out_dir / SPLITS_ROOT, config.CROSS_DATA_ENV: out_dir / FLAT_ROOT}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (helpers.cli runs it)."""
    parser.add_argument("out_dir", help="a new (or empty) folder to write the two stand-in folders into")


def run(args: argparse.Namespace) -> None:
    roots = write_standin_sets(args.out_dir)
    print(f"Wrote {LABEL}. Use it with:")
    for variable, root in roots.items():
        print(f"  {variable}={root}")
