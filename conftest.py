"""Settings for every test run, the notebooks under nbval included (their kernels inherit them).

The suite runs in the `smoke` profile on the real face images in `../shared/data` (or wherever
$DEEPFAKE_TEST_DATA points), unless you set $DEEPFAKE_PROFILE / $DEEPFAKE_DATA yourself.
"""
import os
from pathlib import Path

TEST_DATA = Path(os.environ.get("DEEPFAKE_TEST_DATA", Path(__file__).parent.parent / "shared" / "data")).resolve()
os.environ["DEEPFAKE_TEST_DATA"] = str(TEST_DATA)  # tests/conftest.py reads it back

os.environ.setdefault("DEEPFAKE_PROFILE", "smoke")
if (TEST_DATA / "dfdc-faces").is_dir():
    os.environ.setdefault("DEEPFAKE_DATA", str(TEST_DATA / "dfdc-faces"))
if (TEST_DATA / "ffhq-stylegan2").is_dir():  # the second root of the cross-dataset checks (lessons 05, 07)
    os.environ.setdefault("DEEPFAKE_CROSS_DATA", str(TEST_DATA / "ffhq-stylegan2"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
