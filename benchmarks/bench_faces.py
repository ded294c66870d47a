"""Face finding (helpers.faces) measured: does it keep face crops as they are, and does it rescue whole photos?

    python benchmarks/bench_faces.py --data ROOT --model MODEL_DIR [--data ROOT2 --model MODEL_DIR2 ...]

For each data root and the model trained on it, on every image of the test split:
- `crops`: the test images as they are (face crops), scored as given and with face finding;
- `photos`: the same faces placed in a 672x504 photo (a scene from scikit-image, the face a third of
  the photo's height, at a seeded random place), scored squashed whole and with face finding.
ROC-AUC with a 95% bootstrap interval for each, and the paired difference with face finding minus
without (resampling whole groups of test images where the data names groups, such as the real and
the fake of one source video). Every image's p(fake) is kept, in the order of the stored test labels,
relpaths and groups, so the intervals can be computed again. Also: the crop style the model records
(or, for a model trained before face finding, the one measured here on its training images), and
seconds per photo to find faces. Writes benchmarks/faces/<data folder>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from bench_model import machine_info  # same folder
from PIL import Image

from helpers import data, faces, images, ladder, metrics, predict
from helpers.detector import Detector, Prediction

PHOTO_SIZE = (672, 504)  # width, height: a small phone photo
FACE_SHARE = 1 / 3  # the face crop's side as a share of the photo's height
OUT_DIR = Path(__file__).parent / "faces"


def scenes() -> list[np.ndarray]:
    """Backgrounds without people, from the pictures scikit-image ships."""
    import skimage.data

    return [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize(PHOTO_SIZE))
            for name in ("coffee", "chelsea", "rocket", "hubble_deep_field")]


def compose_photo(crop: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop pasted, as a third of the photo's height, at a random place in a copy of the background."""
    side = round(PHOTO_SIZE[1] * FACE_SHARE)
    face = images.resize(crop, side)
    photo = background.copy()
    left, top = rng.integers(0, PHOTO_SIZE[0] - side), rng.integers(0, PHOTO_SIZE[1] - side)
    photo[top:top + side, left:left + side] = face
    return photo


def per_image(predictions: list[Prediction], names: list[str]) -> tuple[np.ndarray, dict]:
    """One p(fake) per image, from its largest face (the subject); and how many images had 0, 1, 2+ faces."""
    def area(p: Prediction) -> int:
        return p.box[2] * p.box[3] if p.box else 0

    best: dict[str, Prediction] = {}
    for p in predictions:
        if p.source not in best or area(p) > area(best[p.source]):
            best[p.source] = p
    found = [best[name].faces_found or 0 for name in names]
    counts = {"no face": sum(n == 0 for n in found), "one face": sum(n == 1 for n in found),
              "several faces": sum(n > 1 for n in found)}
    return np.array([best[name].p_fake for name in names]), counts


def auc_with_interval(labels, scores, groups=None) -> dict:
    low, high = metrics.bootstrap_interval(labels, scores, metrics.roc_auc, groups=groups)
    return {"roc_auc": round(metrics.roc_auc(labels, scores), 4), "interval": [round(low, 4), round(high, 4)]}


def compare(labels, without: np.ndarray, with_faces: np.ndarray, groups=None) -> dict:
    """Both ROC-AUCs with their intervals, the paired difference, and every image's two scores."""
    low, high = metrics.paired_difference_interval(labels, with_faces, without, metrics.roc_auc, groups=groups)
    difference = metrics.roc_auc(labels, with_faces) - metrics.roc_auc(labels, without)
    return {"without_faces": auc_with_interval(labels, without, groups),
            "with_faces": auc_with_interval(labels, with_faces, groups),
            "difference": round(difference, 4), "difference_interval": [round(low, 4), round(high, 4)],
            "test_scores": {"without_faces": [float(value) for value in without],
                            "with_faces": [float(value) for value in with_faces]}}


def seconds_per_photo(photo: np.ndarray, repeats: int = 5) -> float:
    faces.find_faces(photo)  # the first call builds the networks
    started = time.perf_counter()
    for _ in range(repeats):
        faces.find_faces(photo)
    return round((time.perf_counter() - started) / repeats, 4)


def measure(root: Path, model_dir: Path) -> dict:
    detector = Detector.load(model_dir, verbose=False)
    frames = data.by_split(data.index_dataset(root))
    style_source = "the model's model.json"
    if detector.crop_style is None:  # a model trained before face finding: measure it as train would
        detector.crop_style = faces.crop_style_of(frames["train"]["path"])
        style_source = "measured by this benchmark on the training split (the model records none)"
    test = frames["test"]
    labels, names, groups = test["label"].to_numpy(), test["path"].tolist(), metrics.groups_of(test)
    as_given = predict.predict_files(detector, names, progress=False, faces="off")
    started = time.perf_counter()
    found = predict.predict_files(detector, names, progress=False, faces="auto")
    crop_seconds = (time.perf_counter() - started) / len(names)
    crop_scores, crop_counts = per_image(found, names)

    rng = np.random.default_rng(0)
    backgrounds = scenes()
    photos = [compose_photo(images.load_image(name), backgrounds[i % len(backgrounds)], rng)
              for i, name in enumerate(names)]
    photo_names = [f"photo-{i}" for i in range(len(photos))]
    squashed = [detector.predict_photo(photo, name, faces="off")[0].p_fake for photo, name in zip(photos, photo_names)]
    photo_found = [p for photo, name in zip(photos, photo_names) for p in detector.predict_photo(photo, name)]
    photo_scores, photo_counts = per_image(photo_found, photo_names)
    big = np.asarray(Image.fromarray(photos[0]).resize((4032, 3024), Image.BICUBIC))
    return {
        "data": root.name, "model": "/".join(model_dir.parts[-2:]), "test_images": len(names),
        "crop_style": {**detector.crop_style.as_dict(), "source": style_source},
        **ladder.test_images(test),
        "crops": {**compare(labels, np.array([p.p_fake for p in as_given]), crop_scores, groups), "faces": crop_counts,
                  "seconds_per_image_with_faces": round(crop_seconds, 4)},
        "photos": {**compare(labels, np.array(squashed), photo_scores, groups), "faces": photo_counts,
                   "size": list(PHOTO_SIZE), "face_share_of_height": round(FACE_SHARE, 3)},
        "seconds_to_find_faces": {"672x504 photo": seconds_per_photo(photos[0]),
                                  "4032x3024 photo": seconds_per_photo(big)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="a data root; repeat for several")
    parser.add_argument("--model", type=Path, action="append", required=True, help="the model trained on it, in order")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    if len(args.data) != len(args.model):
        parser.error("give one --model for each --data")
    args.out.mkdir(parents=True, exist_ok=True)
    for root, model_dir in zip(args.data, args.model):
        started = time.perf_counter()
        result = measure(root, model_dir)
        result.update(command=f"python benchmarks/bench_faces.py --data {root.name} --model {result['model']}",
                      seconds=round(time.perf_counter() - started, 1),
                      machine={key: value for key, value in machine_info().items() if key != "host"})
        path = args.out / f"{root.name}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        shown = {key: result[key] for key in ("crop_style", "crops", "photos", "seconds_to_find_faces")}
        for part in ("crops", "photos"):
            shown[part] = {key: value for key, value in shown[part].items() if key != "test_scores"}
        print(json.dumps(shown, indent=1))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
