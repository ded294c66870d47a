"""Fixtures shared by the tests: the real face data and small synthetic image folders."""
import os
import socket
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Set by the conftest.py at the repository root when the shared face sets are found, or by you; unset otherwise.
TEST_DATA = os.environ.get("DEEPFAKE_TEST_DATA") or None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding the shared face sets (dfdc-faces, ffhq-stylegan2).

    Without them the tests that need real faces are skipped. In CI, a $DEEPFAKE_TEST_DATA that names a
    folder without them fails instead; leaving it unset (a fresh clone, on the stand-in set) skips.
    """
    if TEST_DATA is None:
        pytest.skip("needs the shared face sets: none beside the checkout (../shared/data); set "
                    "DEEPFAKE_TEST_DATA to the folder holding dfdc-faces/ and ffhq-stylegan2/")
    if not (Path(TEST_DATA) / "dfdc-faces").is_dir():
        message = (f"no face data at {TEST_DATA}: set DEEPFAKE_TEST_DATA to the folder holding "
                   "dfdc-faces/ and ffhq-stylegan2/")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(TEST_DATA)


@pytest.fixture(scope="session")
def dfdc(shared_data) -> Path:
    return shared_data / "dfdc-faces"


@pytest.fixture(scope="session")
def ffhq(shared_data) -> Path:
    return shared_data / "ffhq-stylegan2"


def write_jpeg(path: Path, seed: int, size: int = 32, quality: int = 90) -> Path:
    """A small random-noise JPEG (a stand-in image for layout tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=quality)
    return path


@pytest.fixture
def flat_root(tmp_path) -> Path:
    """A flat real/ + fake/ folder with 40 small images per class."""
    for label in ("real", "fake"):
        for i in range(40):
            write_jpeg(tmp_path / "flat" / label / f"{label}_{i:03d}.jpg", seed=zlib.crc32(f"{label}{i}".encode()))
    return tmp_path / "flat"


# ----------------------------------------------------------------------------- a trained model (predict, evaluate)
@pytest.fixture(scope="session")
def trained_model_dir(dfdc, tmp_path_factory) -> Path:
    """A smoke-profile efficientnet_lite0 model folder, trained once per session on dfdc-faces (about 20 s).

    Shared by every test that needs one: copy it before damaging it.
    """
    from helpers import train

    out_dir = tmp_path_factory.mktemp("trained") / "smoke-dfdc"
    train.train(dfdc, "smoke", out_dir, backbone="efficientnet_lite0", verbose=0)
    return out_dir


@pytest.fixture(scope="session")
def trained_ffhq_model_dir(ffhq, tmp_path_factory) -> Path:
    """The same on ffhq-stylegan2, whose faces are cropped loosely and aligned (about 20 s)."""
    from helpers import train

    out_dir = tmp_path_factory.mktemp("trained") / "smoke-ffhq"
    train.train(ffhq, "smoke", out_dir, backbone="efficientnet_lite0", verbose=0)
    return out_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
