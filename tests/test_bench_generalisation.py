"""benchmarks/bench_generalisation.py: each mode trained once, scored on every test split, resumed where it stopped."""
import json
from types import SimpleNamespace

import pytest

from helpers import config, data, files, train


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(config.REPO_ROOT / "benchmarks"))
    import bench_generalisation

    return bench_generalisation


@pytest.fixture
def fakes(bench, monkeypatch) -> dict:
    """Training and scoring replaced by made-up models and scores (seconds, not minutes); records each call."""
    calls = {"trained": [], "scored": []}

    def fake_train(root, profile, out_dir, mode="real+fake", verbose=0):
        calls["trained"].append((root.name, mode))
        metadata = {"backbone": "efficientnet_lite0", "image_size": 96, "class_names": ["real", "fake"],
                    "threshold": 0.5, "profile": profile.name, "mode": mode, "data": {"root": str(root)},
                    "validation": {"roc_auc": 0.6}, "training": {"total_seconds": 12.0, "epochs": {"stage1": 1}},
                    "files": {"model.keras": "0" * 64, "model.weights.h5": "1" * 64}}  # as saving writes them
        files.write_json(out_dir / "model.json", metadata)
        return SimpleNamespace(metadata=metadata)

    def fake_evaluate(folder, root, split, profile, progress=False):
        calls["scored"].append((folder.name, root.name))
        test = data.load_frames(root, profile, verbose=False)["test"]
        scores = test.assign(p_fake=[(i % 7) / 7 for i in range(len(test))])
        return SimpleNamespace(scores=scores, metrics={"roc_auc": 0.5})

    monkeypatch.setattr(train, "train", fake_train)
    monkeypatch.setattr(bench, "evaluate", fake_evaluate)
    return calls


def test_every_mode_once_and_a_trained_model_is_reused(bench, fakes, dfdc, ffhq, tmp_path):
    arguments = ["--data", str(dfdc), "--data", str(ffhq), "--profile", "smoke", "--out", str(tmp_path / "out"),
                 "--models", str(tmp_path / "models"), "--modes", "real+fake", "real+sbi"]
    assert bench.main(arguments) == 0
    assert fakes["trained"] == [("dfdc-faces", "real+fake"), ("dfdc-faces", "real+sbi"),
                                ("ffhq-stylegan2", "real+fake"), ("ffhq-stylegan2", "real+sbi")]
    assert len(fakes["scored"]) == 8
    result = json.loads((tmp_path / "out" / "dfdc-faces.json").read_text())
    assert [model["mode"] for model in result["models"]] == ["real+fake", "real+sbi"]
    assert set(result["models"][0]["tested"]) == {"dfdc-faces", "ffhq-stylegan2"}
    images = result["test_sets"]["ffhq-stylegan2"]
    assert len(images["test_labels"]) == len(images["test_relpaths"]) == 48
    assert len(result["models"][1]["tested"]["ffhq-stylegan2"]["test_scores"]) == 48
    assert bench.main(arguments) == 0 and len(fakes["trained"]) == 4 and len(fakes["scored"]) == 8  # all done
    # A result lost after training: the model in its folder is scored again, not retrained.
    (tmp_path / "out" / "ffhq-stylegan2.json").unlink()
    assert bench.main(arguments) == 0
    assert len(fakes["trained"]) == 4 and len(fakes["scored"]) == 12


def test_a_model_or_a_file_from_elsewhere_is_refused(bench, fakes, dfdc, ffhq, tmp_path, capsys):
    arguments = ["--data", str(dfdc), "--profile", "smoke", "--out", str(tmp_path / "out"),
                 "--models", str(tmp_path / "models"), "--modes", "real+fake"]
    assert bench.main(arguments) == 0
    path = tmp_path / "out" / "dfdc-faces.json"
    result = json.loads(path.read_text())
    result["test_sets"]["dfdc-faces"]["test_relpaths"][0] = "elsewhere.jpg"
    result["models"] = []
    path.write_text(json.dumps(result))
    with pytest.raises(SystemExit) as stopped:
        bench.main(arguments)
    assert stopped.value.code == 2 and "other test images of dfdc-faces" in capsys.readouterr().err
    sidecar = tmp_path / "models" / "dfdc-faces-real-fake" / "model.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "profile": "cpu"}))
    with pytest.raises(SystemExit) as stopped:
        bench.main([*arguments, "--out", str(tmp_path / "other")])
    assert stopped.value.code == 2 and "give another --models folder" in capsys.readouterr().err
    assert fakes["trained"] == [("dfdc-faces", "real+fake")]
