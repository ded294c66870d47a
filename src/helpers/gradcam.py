"""Grad-CAM: which parts of an image pushed the detector towards a class (Selvaraju et al., 2017).

For the last convolutional activation A (height x width x channels), each channel k gets a weight
alpha_k = the spatial mean of d score / d A_k; the map is ReLU(sum_k alpha_k A_k), upsampled
bilinearly to the image and scaled to 0..1 per image. Lesson 06 writes these steps by hand with
`tf.GradientTape` for our flat detector; tests/test_lesson_code_05_06.py checks that its maps are
this module's. What this module adds: it finds the layer, also inside a nested backbone (below), it
reads any softmax Dense output's centred logit, and it runs long lists of images in batches.

The nested-backbone trap. Keras tutorials often wrap the backbone as one layer
(`inputs -> base_model(x) -> pooling -> Dense`), and then `model.get_layer("top_activation")` fails:
the outer model only knows a layer called `efficientnetb0`. Asking the backbone instead,
`base_model.get_layer("top_activation").output`, gives a tensor of the backbone's own graph, not of
its call inside the outer model, so a model built from it is "not connected" (Keras 2 said
"graph disconnected"). The way out, used here: run the outer layers before the backbone, then the
backbone's own graph returning both the activation and its output, then the outer layers after it.
(`helpers.classifier.build_classifier` builds one flat graph, where none of this is needed.)
"""
from __future__ import annotations

import difflib

import keras
import matplotlib
import numpy as np
import tensorflow as tf

SHOWN_CANDIDATES = 10


def gradcam(model: keras.Model, images, class_index: int = 1, layer_name: str | None = None, *,
            batch_size: int = 32) -> np.ndarray:
    """Grad-CAM heatmaps (N, H, W), float32 in 0..1, at the input's resolution, for class `class_index`.

    `images` are raw 0-255 RGB, (N, H, W, 3) or a single (H, W, 3) image (then N = 1).
    `layer_name` defaults to the last layer with a 4-D output (`top_activation` for our detectors),
    looked for inside a nested backbone too. The model runs in inference mode: augmentation and
    dropout are off. A map without any spatial variation comes back as zeros: all gradients zero,
    or no positive evidence for the class anywhere (the ReLU removes evidence against it).

    The score differentiated is the class's pre-softmax logit, centred: z_c - mean(z), whenever the
    output layer is a softmax Dense (our detectors' `prediction`). Two reasons. The softmax
    probability's gradient is the logit gradient times p(1 - p), which vanishes on confident
    predictions and blanks the map. And softmax ignores any amount added to every logit, so the
    part of z_c shared by all classes is no evidence for class c; centring removes it. With two
    classes the centred logit is half the log-odds of p_c, so its map equals the probability's map
    wherever that one has not vanished. For any other output layer the model's output for the
    class (e.g. a probability) is used.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    name = layer_name or last_conv_layer_name(model)
    _check_conv_layer(model, name)
    head, score = _class_score(model, class_index)
    forward = _conv_and_heads(model, name, [head])
    maps = [_heatmaps(forward, score, images[start:start + batch_size])
            for start in range(0, len(images), batch_size)]
    return np.concatenate(maps)


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4,
            colormap: str = "jet") -> np.ndarray:
    """The image with the heatmap blended over it in `colormap`: a uint8 RGB image of the image's shape.

    A heatmap at another resolution is resized to the image first.
    """
    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"overlay needs an (H, W, 3) RGB image, got shape {image.shape}")
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"overlay needs a 2-D heatmap, got shape {heat.shape}")
    if heat.shape != image.shape[:2]:
        heat = _resize(heat[None], image.shape[:2])[0]
    colours = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3] * 255
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def last_conv_layer_name(model: keras.Model) -> str:
    """The last layer with a 4-D (batch, height, width, channels) output, inside nested models too."""
    candidates = _spatial_layer_names(model)
    if not candidates:
        raise ValueError(f"model {model.name!r} has no layer with a 4-D output for Grad-CAM to look at")
    return candidates[-1]


# ----------------------------------------------------------------------------- finding the layer


def _spatial_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers with a 4-D output, in graph order; nested models are opened, not listed."""
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            names.extend(_spatial_layer_names(layer))
        elif not isinstance(layer, keras.layers.InputLayer) and len(getattr(layer.output, "shape", ())) == 4:
            names.append(layer.name)
    return names


def _check_conv_layer(model: keras.Model, name: str) -> None:
    """A plain error naming the candidates when `name` is not a 4-D layer of `model`."""
    candidates = _spatial_layer_names(model)
    if name in candidates:
        return
    close = difflib.get_close_matches(name, candidates, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    shown = candidates[-SHOWN_CANDIDATES:]
    raise ValueError(
        f"{name!r} is not a layer with a 4-D output in model {model.name!r}.{hint} "
        f"Candidates (the last {len(shown)} of {len(candidates)}, nearest the output last): {', '.join(shown)}")


def _holds_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name or (isinstance(layer, keras.Model) and _holds_layer(layer, name))
               for layer in model.layers)


# ----------------------------------------------------------------------------- the gradient model


def _conv_and_heads(model: keras.Model, conv_name: str, heads: list):
    """A function: images -> (the conv activation, the tensors `heads`), one differentiable pass.

    `heads` are tensors of `model`'s graph downstream of the conv layer. Outputs are flattened
    because a one-output Keras model returns a tensor, not a list of one.
    """
    if any(layer.name == conv_name for layer in model.layers):
        flat = keras.Model(model.inputs, [model.get_layer(conv_name).output, *heads])

        def forward_flat(x):
            conv, *head_values = keras.tree.flatten(flat(x, training=False))
            return conv, head_values
        return forward_flat
    nested = next(layer for layer in model.layers
                  if isinstance(layer, keras.Model) and _holds_layer(layer, conv_name))
    call = _node_calling(model, nested)
    before = keras.Model(model.inputs, call.input_tensors)
    inner = _conv_and_heads(nested, conv_name, nested.outputs)
    after = keras.Model(call.output_tensors, heads)

    def forward_nested(x):
        conv, nested_outputs = inner(before(x, training=False))
        return conv, keras.tree.flatten(after(nested_outputs, training=False))
    return forward_nested


# Private Keras API, on purpose: Keras has no public way to find the call of a nested model inside
# another, or the input of a model's output layer. `_keras_history` and `_inbound_nodes` are how
# Keras 3 itself walks a functional graph; tests/test_gradcam.py checks them first, by name, so that
# a Keras release that renames them fails with that message rather than a puzzling error here.
PRIVATE_KERAS_API = ("KerasTensor._keras_history", "Operation._inbound_nodes", "Node.input_tensors")


def _node_calling(model: keras.Model, nested: keras.Model):
    """The call of `nested` inside `model`'s graph (a model reused elsewhere has one node per call)."""
    stack, seen = list(model.outputs), set()
    while stack:
        operation, node_index, _ = stack.pop()._keras_history
        if operation is nested:
            return nested._inbound_nodes[node_index]
        if (id(operation), node_index) not in seen:
            seen.add((id(operation), node_index))
            stack.extend(operation._inbound_nodes[node_index].input_tensors)
    raise ValueError(f"model {model.name!r} does not call {nested.name!r} on the way to its output")


def _class_score(model: keras.Model, class_index: int):
    """(tensor to read, function of it giving each image's score for the class): see `gradcam`."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError("Grad-CAM here needs a model with one (batch, classes) output")
    classes = model.outputs[0].shape[-1]
    if not 0 <= class_index < classes:
        raise ValueError(f"class_index must be between 0 and {classes - 1}, got {class_index}")
    layer, node_index, _ = model.outputs[0]._keras_history
    if isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.softmax:
        def centred_logit(features):
            logits = keras.ops.matmul(features, layer.kernel)
            if layer.use_bias:
                logits = logits + layer.bias
            return logits[:, class_index] - keras.ops.mean(logits, axis=-1)
        return layer._inbound_nodes[node_index].input_tensors[0], centred_logit
    return model.outputs[0], lambda outputs: outputs[:, class_index]


# ----------------------------------------------------------------------------- the maps


def _heatmaps(forward, score, images: np.ndarray) -> np.ndarray:
    """Grad-CAM for one batch, at the images' resolution, scaled to 0..1 per image."""
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        # The tape records only ops fed by a watched tensor or a trainable variable; watching the
        # input records the whole pass, so the result never depends on what is frozen.
        tape.watch(x)
        conv, heads = forward(x)
        scores = score(heads[0])
    gradients = tape.gradient(scores, conv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2))
    cams = tf.nn.relu(tf.einsum("nhwc,nc->nhw", conv, channel_weights))
    return _scale_each(_resize(cams, images.shape[1:3]))


def _resize(maps, size) -> np.ndarray:
    """(N, h, w) maps resized bilinearly to (N, *size)."""
    return tf.image.resize(tf.convert_to_tensor(maps)[..., None], size, method="bilinear")[..., 0].numpy()


def _scale_each(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each map to 0..1; a flat map (no spatial evidence) becomes zeros, never NaN."""
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    span = high - low
    varies = span > 1e-6 * high  # relative, so round-off on a flat map does not count as variation
    scaled = (maps - low) / np.where(varies, span, 1)
    return np.where(varies, scaled, 0).astype(np.float32)
