"""What the prose of lessons 04 and 08 says about committed results holds for the committed files.

Most readings are printed from the numbers by the lessons' cells; these are the few sentences of
markdown that quote a committed JSON (benchmarks/ladder, benchmarks/faces), each checked against it.
"""
import json

import pytest

from helpers import config, generalisation, ladder

NOTEBOOKS = config.REPO_ROOT / "notebooks"


def markdown(notebook: str) -> str:
    """Every markdown cell of a lesson, joined, with line breaks as spaces (sentences wrap across lines)."""
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    return " ".join(" ".join("".join(cell["source"]).split()) for cell in cells if cell["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def ladders() -> dict:
    return {result["data"]: result for result in ladder.load_results()}


def _blocks(unfrozen) -> list[str]:
    return [block for block in unfrozen if block != "top"]


def test_rung_4_fine_tunes_all_16_blocks_where_rung_2_tunes_three(ladders):
    assert "all 16 blocks instead of three" in markdown("04_fine_tuning.ipynb")
    for result in ladders.values():
        rungs = {rung["rung"]: rung for rung in result["rungs"]}
        assert len(_blocks(rungs[4]["unfrozen"])) == 16 and len(_blocks(rungs[2]["unfrozen"])) == 3, result["data"]


def test_rung_0_gives_every_test_face_one_label_and_rung_4_trains_longest(ladders):
    text = markdown("04_fine_tuning.ipynb")
    assert "at 0.5 the capstone's model gives every test face the same label on each set" in text
    assert "Rung 4 trains longest" in text
    for result in ladders.values():
        recall = {name: result["rungs"][0]["test"][f"recall_{name}"]["value"] for name in ("real", "fake")}
        assert sorted(recall.values()) == [0, 1], result["data"]
        seconds = {rung["rung"]: rung["seconds"]["total"] for rung in result["rungs"] if rung["trained"]}
        assert max(seconds, key=seconds.get) == 4, result["data"]


def test_dfdc_faces_intervals_resample_real_and_fake_pairs(ladders):
    assert "On `dfdc-faces` the test images come in pairs, a real frame and the fake made from the same source " \
           "video, so its intervals resample whole pairs" in markdown("04_fine_tuning.ipynb")
    result = ladders["dfdc-faces"]
    labels_by_group = {}
    for label, group in zip(result["test_labels"], result["test_groups"]):
        labels_by_group.setdefault(group, []).append(label)
    assert all(sorted(labels) == [0, 1] for labels in labels_by_group.values())
    assert "test_groups" not in ladders["ffhq-stylegan2"], "every ffhq-stylegan2 image stands alone"


def test_dfdc_faces_crops_are_as_tight_as_the_face_and_ffhq_keeps_a_margin():
    assert "on `dfdc-faces` the face fills about the whole crop, while the `ffhq-stylegan2` photographs keep a " \
           "margin around it" in markdown("08_generalisation.ipynb")
    scale = {name: json.loads((config.REPO_ROOT / "benchmarks" / "faces" / f"{name}.json").read_text())["crop_style"]["scale"]
             for name in ("dfdc-faces", "ffhq-stylegan2")}
    assert scale["dfdc-faces"] < 1.1 and scale["ffhq-stylegan2"] > 1.3


SEEDS = sorted(ladder.SEEDS_DIR.glob("*.json"))
GENERALISATION = sorted(generalisation.RESULTS_DIR.glob("*.json"))


@pytest.mark.parametrize("path", SEEDS, ids=lambda path: path.stem)
def test_each_committed_seeds_result_is_on_a_ladders_test_images(path, ladders):
    """Lesson 04 pairs each seeds result with the ladder scored on the same images, by source video on dfdc-faces."""
    seeds = json.loads(path.read_text())
    assert ladder.seeds_for(ladders[seeds["data"]], [seeds]) is seeds, "another profile or other test images"
    assert ("test_groups" in seeds) == (seeds["data"] == "dfdc-faces")
    assert "by source video on `dfdc-faces`" in markdown("04_fine_tuning.ipynb")


@pytest.mark.parametrize("path", GENERALISATION, ids=lambda path: path.stem)
def test_the_committed_generalisation_results_group_dfdc_faces_by_source_video(path):
    assert "resampling whole source videos on `dfdc-faces`" in markdown("08_generalisation.ipynb")
    result = json.loads(path.read_text())
    for name, images in result["test_sets"].items():
        assert ("test_groups" in images) == (name == "dfdc-faces"), name
