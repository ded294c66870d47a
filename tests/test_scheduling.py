"""The suite's two pytest-xdist workers keep each notebook whole, and lessons 03-09 together and in order.

conftest.py's scheduler hook subclasses a private method of pytest-xdist (`_split_scope`), whose
version is bounded in pyproject.toml. If a new xdist changes that method, these tests fail before a
notebook is split between two kernels (nbval runs a notebook's cells as tests of one kernel).
"""
import types

import pytest

import conftest

xdist = pytest.importorskip("xdist", reason="pytest-xdist is not installed: the suite runs in one process")


@pytest.fixture(scope="module")
def scheduler():
    two_workers = types.SimpleNamespace(getvalue=lambda name: ["2*popen"] if name == "tx" else None)
    return conftest.pytest_xdist_make_scheduler(two_workers, None)


def test_the_scheduler_is_xdists_own_with_our_scopes(scheduler):
    from xdist.scheduler import LoadScopeScheduling

    assert isinstance(scheduler, LoadScopeScheduling) and scheduler.numnodes == 2
    assert "_split_scope" in vars(type(scheduler)), "the hook overrides the method xdist calls to group tests"
    assert "_split_scope" in vars(LoadScopeScheduling), "xdist no longer has the method the hook overrides"


def test_a_notebook_before_lesson_03_is_one_scope_of_its_own(scheduler):
    cells = [f"notebooks/01_eda_and_audit.ipynb::Cell {number}" for number in (0, 7, 40)]
    assert {scheduler._split_scope(cell) for cell in cells} == {"notebooks/01_eda_and_audit.ipynb"}
    assert scheduler._split_scope("notebooks/00_setup.ipynb::Cell 2") == "notebooks/00_setup.ipynb"


def test_lessons_that_read_models_share_one_scope(scheduler):
    scopes = {scheduler._split_scope(f"notebooks/{name}.ipynb::Cell 5") for name in
              ("03_frozen_head_training", "04_fine_tuning", "05_evaluation", "07_upload_demo", "09_deployment")}
    assert scopes == {"lessons with models"}


def test_test_modules_keep_xdists_scopes(scheduler):
    """A module's functions go to one worker (their module-scoped fixtures are built once); a class is its own scope."""
    assert scheduler._split_scope("tests/test_data.py::test_scan") == "tests/test_data.py"
    assert scheduler._split_scope("tests/test_data.py::TestX::test_y") == "tests/test_data.py::TestX"
