"""TensorFlow's start-up lines stay off stderr, everything else it writes gets through, and they can come back."""
import os
import subprocess
import sys

import pytest

from helpers import config, tensorflow_logs

CAPTURED = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796182490.091712   13589 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796182490.092170   13589 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796182490.159404   13589 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796182493.618532   13589 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
W0000 00:00:1796182493.700000   13589 something.cc:12] a warning nobody expected
"""


def test_only_the_start_up_lines_are_dropped():
    assert tensorflow_logs.without_start_up_lines(CAPTURED) == (
        "W0000 00:00:1796182493.700000   13589 something.cc:12] a warning nobody expected\n")
    with_a_driver = "\n".join(line for line in CAPTURED.splitlines() if "cuda drivers" not in line)
    assert "failed call to cuInit" in tensorflow_logs.without_start_up_lines(with_a_driver), \
        "where a CUDA driver exists, a failed cuInit is a real error and is kept"


def test_the_filter_writes_back_what_is_not_start_up_noise(capfd):
    with tensorflow_logs.stderr_filtered():
        os.write(2, CAPTURED.encode())
    assert capfd.readouterr().err == "W0000 00:00:1796182493.700000   13589 something.cc:12] a warning nobody expected\n"


def test_a_failure_inside_the_filter_writes_back_everything(capfd):
    with pytest.raises(ImportError), tensorflow_logs.stderr_filtered():
        os.write(2, CAPTURED.encode())
        raise ImportError("a broken install")
    assert capfd.readouterr().err == CAPTURED


def _stderr(command: list[str], **env) -> str:
    environment = {name: value for name, value in os.environ.items()
                   if name not in (config.TF_LOGS_ENV, config.TF_LOG_LEVEL_ENV)}
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300,
                          env={**environment, **env})
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_command_starts_quietly_and_the_lines_come_back_when_asked():
    loud = _stderr(["-c", "import helpers, tensorflow"], **{config.TF_LOGS_ENV: "1"})
    shown = [known for known in tensorflow_logs.START_UP_LINES if known in loud]
    if not shown:
        pytest.skip("this TensorFlow writes none of the known start-up lines here: nothing to hide")
    quiet = _stderr(["-m", "helpers", "train", "--help"])  # imports Keras, hence TensorFlow, at the top
    assert not [known for known in tensorflow_logs.START_UP_LINES if known in quiet], quiet
