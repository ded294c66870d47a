"""The environment files agree, and every notebook is committed clean and opens in Colab."""
import json

import pytest
import yaml
from packaging.version import Version

from helpers import config
from tests.conftest import environment_pins, pyproject_requirements

ROOT = config.REPO_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_environment_yml_and_pyproject_agree():
    requirements, pins = pyproject_requirements(), environment_pins()
    assert set(requirements) - {"pip"} <= set(pins), f"missing from environment.yml: {set(requirements) - set(pins)}"
    for name, version in pins.items():
        if name in ("python", "pip"):
            continue
        assert name in requirements, f"{name} is in environment.yml but not in pyproject.toml"
        assert Version(version) in requirements[name].specifier or \
            Version(version + ".0") in requirements[name].specifier, \
            f"environment.yml pins {name} {version}, outside pyproject's {requirements[name].specifier}"


def test_environment_installs_this_package_through_pip():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    assert "-e ." in pip_section


def test_tensorflow_requirement_keeps_colabs_gpu_build():
    tensorflow = pyproject_requirements()["tensorflow"]
    assert tensorflow.name == "tensorflow"  # not tensorflow-cpu, which would sit beside Colab's GPU build
    assert Version("2.18") in tensorflow.specifier


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_clean_with_a_colab_badge(path):
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(not cell["outputs"] and cell["execution_count"] is None for cell in code), "clear the outputs"
    first = notebook["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")
    badge = f"https://colab.research.google.com/github/{config.REPO_SLUG}/blob/main/notebooks/{path.name}"
    assert badge in "".join(first["source"])
    assert "google.colab" in "".join(code[0]["source"]), "the first code cell sets the notebook up for Colab"


def test_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
