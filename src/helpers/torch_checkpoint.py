"""Read legacy (non-zip) PyTorch checkpoints into numpy arrays, without torch.

A legacy checkpoint (``torch.save(..., _use_new_zipfile_serialization=False)``)
is a series of records in one file:

1. pickle: the magic number ``0x1950a86a20f9469cfc6c``
2. pickle: the protocol version (1001)
3. pickle: a sys_info dict (byte order, C type sizes)
4. pickle: the object itself, here a state dict. Each tensor is a call to
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
   whose storage is a *persistent id*
   ``("storage", storage_type, key, location, numel, view_metadata)``.
5. pickle: the list of storage keys, in the order their data follows
6. for each key: an int64 little-endian element count, then the raw data.

Unpickling runs whatever callables a file names, so the reader only resolves
the few globals tensors need, each mapped to a harmless stand-in, and refuses
everything else with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import NamedTuple

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"

# torch storage class name -> numpy element type.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(ValueError):
    """The checkpoint names a global that rebuilding tensors does not need."""


# The stand-ins below are NamedTuples: immutable, so a pickle's BUILD opcode
# cannot rewrite them, and not callable, so REDUCE cannot call them.


class _StorageType(NamedTuple):
    """Stand-in for a class such as ``torch.FloatStorage``."""

    name: str
    dtype: type


class _StorageRef(NamedTuple):
    """Stand-in for a storage: ``numel`` elements of storage ``key`` from ``offset``."""

    key: str
    offset: int
    numel: int


class _TensorRef(NamedTuple):
    """A tensor waiting for its storage data, which follows the main pickle."""

    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: record the view only."""
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    return data


_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor-related globals and records storages."""

    def __init__(self, stream, source):
        super().__init__(stream)
        self.source = source
        self.storages = {}  # key -> (dtype, numel) of every storage referenced

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[module, name]
        if module == "torch" and name.endswith("Storage"):
            if name not in STORAGE_DTYPES:
                raise ValueError(f"unsupported storage type torch.{name}")
            return _StorageType(name, STORAGE_DTYPES[name])
        raise UnsafeCheckpointError(
            f"{self.source}: refusing to load global '{module}.{name}': only the "
            "globals needed to rebuild tensors are allowed in a checkpoint"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ValueError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not (isinstance(storage_type, _StorageType) and isinstance(key, str)
                and _is_count(numel)):
            raise ValueError(f"malformed storage record {pid!r}")
        known = self.storages.setdefault(key, (storage_type.dtype, numel))
        if known != (storage_type.dtype, numel):
            raise ValueError(f"storage {key!r} is described twice differently")
        if view_metadata is None:
            return _StorageRef(key, 0, numel)
        # Very old checkpoints could hold views into a storage: (key, offset, size).
        _view_key, view_offset, view_numel = view_metadata
        if not (_is_count(view_offset) and _is_count(view_numel)):
            raise ValueError(f"malformed storage view {view_metadata!r}")
        return _StorageRef(key, view_offset, view_numel)


def _is_count(value):
    """True for a non-negative Python int (bools excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load_legacy_state_dict(path) -> dict[str, np.ndarray]:
    """Load a legacy PyTorch state dict as ``{name: numpy array}``.

    Raises :class:`UnsafeCheckpointError` when the file names any global
    other than those needed for tensors, and ``ValueError`` (naming the file)
    when it is a zip-format checkpoint or is truncated or malformed.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(_ZIP_SIGNATURE):
        raise ValueError(
            f"{path}: this is the new zip-based PyTorch checkpoint format, which is "
            "not supported here; re-save it with "
            "torch.save(obj, f, _use_new_zipfile_serialization=False)"
        )
    try:
        return _parse(raw, path)
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # any failure while parsing means a bad file
        raise ValueError(
            f"{path}: not a readable legacy PyTorch checkpoint ({exc})"
        ) from exc


def _parse(raw, source):
    """Parse the checkpoint bytes; see the module docstring for the layout."""
    stream = io.BytesIO(raw)
    magic, protocol, sys_info = (_RestrictedUnpickler(stream, source).load()
                                 for _ in range(3))
    if magic != MAGIC_NUMBER:
        raise ValueError("bad magic number")
    if protocol != PROTOCOL_VERSION:
        raise ValueError(f"unsupported protocol version {protocol!r}")
    byte_order = "<" if sys_info.get("little_endian", True) else ">"

    main = _RestrictedUnpickler(stream, source)
    state = main.load()
    keys = _RestrictedUnpickler(stream, source).load()
    if not isinstance(state, dict):
        raise ValueError(f"expected a state dict, got {type(state).__name__}")
    if not (isinstance(keys, list) and set(keys) == set(main.storages)):
        raise ValueError("the storage key list does not match the tensors")

    storages = _read_storages(raw, stream.tell(), keys, main.storages, byte_order)
    return {name: _materialize(name, tensor, storages)
            for name, tensor in state.items()}


def _read_storages(raw, position, keys, specs, byte_order):
    """Read each storage's data, in file order, as 1-D numpy arrays (no copy)."""
    storages = {}
    for key in keys:
        dtype, numel = specs[key]
        dtype = np.dtype(dtype).newbyteorder(byte_order)
        header = raw[position:position + 8]
        if len(header) < 8:
            raise ValueError(f"file ends before the data of storage {key!r}")
        count = int.from_bytes(header, "little", signed=True)
        if count != numel:
            raise ValueError(f"storage {key!r} holds {count} elements, expected {numel}")
        position += 8
        end = position + numel * dtype.itemsize
        if end > len(raw):
            raise ValueError(f"file ends inside the data of storage {key!r}")
        storages[key] = np.frombuffer(raw, dtype, count=numel, offset=position)
        position = end
    return storages


def _materialize(name, tensor, storages):
    """Copy one tensor out of its storage, honouring offset, size and stride."""
    if not isinstance(name, str) or not isinstance(tensor, _TensorRef):
        raise ValueError(f"entry {name!r} is not a tensor")
    storage, offset, size, stride = tensor
    base = storages[storage.key][storage.offset:storage.offset + storage.numel]
    if not (_is_count(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(map(_is_count, size + stride))):
        raise ValueError(f"tensor {name!r} has a malformed view {tensor[1:]}")
    if len(base) < storage.numel:
        raise ValueError(f"tensor {name!r} lies outside its storage")
    native = base.dtype.newbyteorder("=")
    if 0 in size:
        return np.zeros(size, native)
    # as_strided does no bounds checking: make sure the last element is inside.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(base):
        raise ValueError(f"tensor {name!r} lies outside its storage")
    view = np.lib.stride_tricks.as_strided(
        base[offset:], shape=size, strides=[s * base.itemsize for s in stride])
    return np.array(view, dtype=native, order="C")
