"""The tf.data input pipeline: image files in, batches of (0-255 float32 images, labels) out.

Decoding, resizing, caching, shuffling and prefetching, the same way for training, validation and
scoring (`helpers.train.dataset` picks the profile's settings).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from helpers import config
from helpers.images import load_image, resize

def _tensorflow_decodes_alike(contents, image_size: int):
    """Whether TensorFlow's JPEG decoder gives `load_image`'s pixels, unresized, for this file (a tf bool).

    True for a JPEG of 1 or 3 channels, image_size pixels square, without an EXIF block (whose
    rotation `load_image` applies): libjpeg's accurate integer DCT, the one PIL uses, then gives PIL's
    pixels bit for bit. Anything else (PNG, CMYK, EXIF, another size) is decoded by `load_image`.
    """
    import tensorflow as tf

    def square_rgb_or_grey():
        height, width, channels = tf.unstack(tf.io.extract_jpeg_shape(contents))
        return (height == image_size) & (width == image_size) & ((channels == 1) | (channels == 3))

    is_jpeg = tf.strings.substr(contents, 0, 3) == b"\xff\xd8\xff"
    has_exif = tf.size(tf.strings.split(contents, sep=b"Exif\x00\x00")) > 1
    return tf.cond(is_jpeg & ~has_exif, square_rgb_or_grey, lambda: tf.constant(False))


def make_dataset(frame: pd.DataFrame, image_size: int, batch_size: int, shuffle: bool = False,
                 cache: bool = True, seed: int = config.SEED, transform=None):
    """A tf.data pipeline of (float32 images in 0..255, int labels): decode, resize, cache, batch, prefetch.

    Images stay 0-255: the backbones rescale inside the model (see lesson 03 on why that matters).
    Rows with a `transform_seed` >= 0 are synthetic: `transform(image, seed)` makes them from the
    decoded image before resizing (lesson 08's self-blended pseudo-fakes). Nothing is written to disk.
    Plain JPEGs already at `image_size` are decoded by TensorFlow, in parallel and without Python
    (the same pixels, see `_tensorflow_decodes_alike`); the rest by `load_image` in Python.
    """
    import tensorflow as tf

    seeds = frame["transform_seed"].to_numpy(np.int64) if "transform_seed" in frame else np.full(len(frame), -1)
    if transform is None and (seeds >= 0).any():
        raise ValueError("The frame has synthetic rows (transform_seed >= 0) but no transform was given.")

    def decode(contents, path, row_seed):
        image = load_image(contents, name=os.fsdecode(path))
        if row_seed >= 0:
            image = transform(image, int(row_seed))
        return resize(image, image_size)

    def load(path, row_seed, label):
        contents = tf.io.read_file(path)
        image = tf.cond((row_seed < 0) & _tensorflow_decodes_alike(contents, image_size),
                        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
                        lambda: tf.numpy_function(decode, [contents, path, row_seed], tf.uint8, stateful=False))
        image.set_shape((image_size, image_size, 3))
        return tf.cast(image, tf.float32), label

    paths = np.array([os.fsencode(path) for path in frame["path"]], dtype=bytes)  # any file name, as the OS has it
    data = tf.data.Dataset.from_tensor_slices((paths, seeds, frame["label"].to_numpy(np.int32)))
    if shuffle and not cache:  # shuffle file names, not decoded images (140,000 of them at 256 px: 110 GB)
        data = data.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        data = data.cache()
    if shuffle and cache:  # after the cache, so that every epoch is shuffled anew
        data = data.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

