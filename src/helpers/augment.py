"""Data augmentation for training: the Keras layers the model applies to each batch while it trains.

`augmentation_layers` builds them: the original project's recipe (flip, rotation, zoom) and two
optional layers, `RandomJpeg` and `RandomBlur`. They change nothing at inference. `layer_table`
measures how much fine detail each one keeps, with `helpers.spectrum`. The perturbations lesson 06
tests a detector against (plain NumPy / PIL, no TensorFlow) are in `helpers.robustness`.

Images are float32 in 0..255 inside the model and uint8 everywhere else; nothing is rescaled to
0..1 here, because the backbones rescale their own input.
"""
from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from helpers import config, spectrum

RECIPE = {"flip": "horizontal", "rotation": 0.1, "zoom": 0.1}  # the original project's recipe

# ----------------------------------------------------------------------------- training layers


@keras.saving.register_keras_serializable(package="helpers")
class RandomJpeg(keras.layers.Layer):
    """Re-compress a random share of images as JPEG at a random quality, during training only.

    Teaches a detector that JPEG block artefacts are not evidence either way: real and fake faces
    alike are re-compressed when they are shared online.
    """

    def __init__(self, quality_range=(50, 95), probability=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.quality_range = tuple(int(q) for q in quality_range)
        self.probability = float(probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # JPEG coding is a CPU op that XLA cannot compile

    def call(self, images, training=None):
        if not training:
            return images
        count = tf.shape(images)[0]
        qualities = keras.random.randint((count,), self.quality_range[0], self.quality_range[1] + 1,
                                         seed=self.seed_generator)
        chosen = keras.random.uniform((count,), seed=self.seed_generator) < self.probability

        def recompress(item):
            image, quality, apply = item
            return tf.cond(apply, lambda: _jpeg_tf(image, quality), lambda: image)

        return tf.map_fn(recompress, (images, qualities, chosen), fn_output_signature=images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "quality_range": self.quality_range,
                "probability": self.probability, "seed": self.seed}


def _jpeg_tf(image, quality):
    """One 0..255 float image through a JPEG encoder and decoder, in TensorFlow ops."""
    # Handing the encoder uint8 pixels avoids its float convention (0..1) altogether.
    pixels = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.cast(tf.image.adjust_jpeg_quality(pixels, quality), image.dtype)


@keras.saving.register_keras_serializable(package="helpers")
class RandomBlur(keras.layers.Layer):
    """Gaussian-blur a random share of images with a random sigma each, during training only.

    Unlike `keras.layers.RandomGaussianBlur` (one sigma per batch, at most 1), every image draws
    its own sigma from 0..max_sigma.
    """

    def __init__(self, max_sigma=1.5, probability=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_sigma = float(max_sigma)
        self.probability = float(probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        count = tf.shape(images)[0]
        sigmas = keras.random.uniform((count,), 0.0, self.max_sigma, seed=self.seed_generator)
        chosen = keras.random.uniform((count,), seed=self.seed_generator) < self.probability
        sigmas = tf.where(chosen, sigmas, 0.0)  # sigma 0 is a one-tap kernel: the image unchanged
        return _blur_each(images, sigmas, radius=int(np.ceil(3 * self.max_sigma)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_sigma": self.max_sigma,
                "probability": self.probability, "seed": self.seed}


def _gaussian_kernels(sigmas, radius):
    """(batch,) sigmas -> (batch, 2 * radius + 1) normalised 1-D Gaussian kernels."""
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    sigmas = tf.maximum(tf.cast(sigmas, tf.float32), 1e-3)[:, None]
    kernels = tf.exp(-0.5 * tf.square(taps[None, :] / sigmas))
    return kernels / tf.reduce_sum(kernels, axis=1, keepdims=True)


def _blur_each(images, sigmas, radius):
    """Blur image i with sigma i, separably, with mirrored borders (no dark frame)."""
    dtype = images.dtype
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    # Stack the batch into the channel axis so one depthwise convolution gives every image its own kernel.
    stacked = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, height, width, batch * channels])
    stacked = tf.pad(stacked, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    kernels = tf.repeat(_gaussian_kernels(sigmas, radius), channels, axis=0)  # (batch * channels, taps)
    taps = 2 * radius + 1
    along_rows = tf.reshape(tf.transpose(kernels), [1, taps, -1, 1])
    along_columns = tf.reshape(tf.transpose(kernels), [taps, 1, -1, 1])
    stacked = tf.nn.depthwise_conv2d(stacked, along_rows, [1, 1, 1, 1], "VALID")
    stacked = tf.nn.depthwise_conv2d(stacked, along_columns, [1, 1, 1, 1], "VALID")
    blurred = tf.transpose(tf.reshape(stacked, [height, width, batch, channels]), [2, 0, 1, 3])
    return tf.cast(blurred, dtype)


EXTRA_LAYERS = {"jpeg": RandomJpeg, "blur": RandomBlur}


def augmentation_layers(seed: int = config.SEED, extra: tuple[str, ...] = (),
                        recipe: tuple[str, ...] = tuple(RECIPE)) -> list[keras.layers.Layer]:
    """The model's augmentation layers, in the order it applies them.

    `recipe` picks from the original recipe ("flip", "rotation", "zoom"; all three by default) and
    `extra` adds "jpeg" and/or "blur". Each layer gets its own seed (seed, seed + 1, ...) so their
    random draws are not correlated.
    """
    unknown = (set(extra) - set(EXTRA_LAYERS)) | (set(recipe) - set(RECIPE))
    if unknown:
        raise ValueError(f"Unknown augmentation(s) {sorted(unknown)}: choose from "
                         f"{list(RECIPE)} and the extras {list(EXTRA_LAYERS)}.")
    recipe_layers = {
        "flip": lambda s: keras.layers.RandomFlip(RECIPE["flip"], seed=s, name="augment_flip"),
        "rotation": lambda s: keras.layers.RandomRotation(RECIPE["rotation"], fill_mode="reflect", seed=s,
                                                          name="augment_rotation"),
        "zoom": lambda s: keras.layers.RandomZoom(RECIPE["zoom"], fill_mode="reflect", seed=s, name="augment_zoom"),
    }
    layers = [recipe_layers[name](seed + offset) for offset, name in enumerate(RECIPE) if name in recipe]
    for offset, name in enumerate(extra, start=len(RECIPE)):
        layers.append(EXTRA_LAYERS[name](seed=seed + offset, name=f"augment_{name}"))
    return layers


def apply_layers(images, layers, training: bool) -> np.ndarray:
    """Run a batch of 0..255 images through `layers` one after another, as the model does."""
    batch = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    for layer in layers:
        batch = layer(batch, training=training)
    return batch.numpy()


def augment_preview(images, layers, draws: int = 4) -> np.ndarray:
    """`draws` training-time augmentations of each image: (images, draws, H, W, 3) float32 in 0..255.

    Built layers keep drawing new random numbers, so fresh layers from `augmentation_layers(seed)`
    give the same previews on every run.
    """
    augmented = [apply_layers(images, layers, training=True) for _ in range(draws)]
    return np.stack(augmented, axis=1)


def preview_gallery(images, layers, draws: int = 4) -> tuple[list[np.ndarray], list[str]]:
    """Each image followed by `draws` augmentations of it, with titles: one row each in `plots.image_grid`."""
    augmented = augment_preview(images, layers, draws)
    gallery, titles = [], []
    for image, versions in zip(images, augmented):
        gallery += [image, *versions]
        titles += ["original"] + [f"draw {n}" for n in range(1, draws + 1)]
    return gallery, titles


# ----------------------------------------------------------------------------- what the layers keep


def layer_table(images, layers, cutoff: float = spectrum.HIGH_FREQUENCY_CUTOFF) -> pd.DataFrame:
    """High-frequency energy each training layer keeps on its own (training=True), one row per layer.

    Only energy is compared: a flipped or rotated image no longer lines up with the original, so a
    correlation would measure the geometry, not the detail.
    """
    rows = []
    for layer in layers:
        changed = np.clip(np.round(apply_layers(images, [layer], training=True)), 0, 255)
        kept = [spectrum.high_frequency_kept(a, b, cutoff) for a, b in zip(np.asarray(images), changed)]
        rows.append({"layer": layer.name, "hf_energy_kept": float(np.mean(kept))})
    return pd.DataFrame(rows)
