"""benchmarks/bench_seeds.py: every (rung, seed) once, written after each run, resumed where it stopped."""
import json

import numpy as np
import pytest

from helpers import config, ladder


@pytest.fixture
def bench_seeds(monkeypatch):
    monkeypatch.syspath_prepend(str(config.REPO_ROOT / "benchmarks"))
    import bench_seeds

    return bench_seeds


@pytest.fixture
def trainings(monkeypatch) -> list:
    """Replace training by made-up scores (seconds, not minutes); records each (rung, seed) trained."""
    trained = []

    def fake(rung, frames, profile, backbone, out_dir, verbose=0, seed=config.SEED):
        if (rung.number, seed) == (4, 5):
            raise KeyboardInterrupt  # an interrupted run
        trained.append((rung.number, seed))
        rng = np.random.default_rng([rung.number, seed])
        return {"val_scores": rng.random(len(frames["validation"])), "test_scores": rng.random(len(frames["test"])),
                "seconds": {"stage1": 1.0, "total": 2.0}, "epochs": {"stage1": 1, "stage2": 1}}

    monkeypatch.setattr(ladder, "train_and_score", fake)
    return trained


def test_each_rung_and_seed_once_and_resumed(bench_seeds, trainings, ffhq, tmp_path):
    arguments = ["--data", str(ffhq), "--profile", "smoke", "--out", str(tmp_path), "--rungs", "1", "4"]
    assert bench_seeds.main([*arguments, "--seeds", "1", "2"]) == 0
    assert trainings == [(1, 1), (1, 2), (4, 1), (4, 2)]
    result = json.loads((tmp_path / "ffhq-stylegan2.json").read_text())
    assert [(run["rung"], run["seed"]) for run in result["runs"]] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert result["summary"]["4"]["seeds"] == [1, 2] and result["profile"] == "smoke"
    assert len(result["test_relpaths"]) == len(result["test_labels"]) == len(result["runs"][0]["test_scores"]) == 48
    assert bench_seeds.main([*arguments, "--seeds", "1", "2", "3"]) == 0
    assert trainings[4:] == [(1, 3), (4, 3)], "only the new seed is trained"
    with pytest.raises(KeyboardInterrupt):  # rung 4 with seed 5 is interrupted ...
        bench_seeds.main([*arguments, "--seeds", "5"])
    result = json.loads((tmp_path / "ffhq-stylegan2.json").read_text())
    assert (1, 5) in [(run["rung"], run["seed"]) for run in result["runs"]], "... and rung 1's run was kept"
    assert result["summary"]["1"]["seeds"] == [1, 2, 3, 5]


def test_a_file_from_other_images_and_a_rung_without_a_model_are_refused(bench_seeds, trainings, ffhq, tmp_path,
                                                                          capsys):
    path = tmp_path / "ffhq-stylegan2.json"
    arguments = ["--data", str(ffhq), "--profile", "smoke", "--out", str(tmp_path), "--seeds", "1"]
    assert bench_seeds.main([*arguments, "--rungs", "1"]) == 0
    result = json.loads(path.read_text())
    path.write_text(json.dumps({**result, "test_relpaths": result["test_relpaths"][::-1]}))
    with pytest.raises(SystemExit) as stopped:
        bench_seeds.main([*arguments, "--rungs", "4"])
    assert stopped.value.code == 2 and "another test relpaths" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        bench_seeds.main([*arguments, "--rungs", "3"])
    assert stopped.value.code == 2 and "rung 3 trains no model of its own" in capsys.readouterr().err
    assert trainings == [(1, 1)]
