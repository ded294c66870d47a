"""The detector: raw RGB in, augmentation (training only), an ImageNet backbone, a small head out.

One flat functional graph, so every layer can be reached by name (Grad-CAM, freezing, summaries):

    image (0-255 RGB) -> augment_flip -> augment_rotation -> augment_zoom    (active only in training)
      -> backbone: rescaling ... stem_* ... block1a_* ... block7a_* ... top_conv, top_bn, top_activation
      -> head_pool (GlobalAveragePooling2D) -> head_dropout (Dropout 0.5) -> prediction (Dense 2, softmax)

`prediction[:, 1]` is p(fake). `top_activation` is the last convolutional activation, Grad-CAM's target.
There is no 1/255 rescaling at the input: both backbones rescale their own input.

Built with `mixed_precision=True` (the `full` profile on a GPU), every layer computes in float16 and
keeps its weights in float32 (Keras' "mixed_float16" policy), except `prediction`, which computes in
float32 so that the softmax and the loss stay accurate; p(fake) comes out as float32 either way.
"""
from __future__ import annotations

import contextlib

import keras

from helpers import augment, backbones, config
from helpers.errors import BadArgumentError

INPUT_NAME = "image"
LAST_CONV_LAYER = "top_activation"
POOL_LAYER = "head_pool"
DROPOUT_LAYER = "head_dropout"
OUTPUT_LAYER = "prediction"
HEAD_LAYERS = (POOL_LAYER, DROPOUT_LAYER, OUTPUT_LAYER)
INPUT_RESCALING_LAYER = "input_rescaling"  # only in a model built with pixel_scale != 1
MIXED_PRECISION = "mixed_float16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Create layers under the Keras dtype policy `name`; the global policy is put back afterwards.

    A layer keeps the policy it was created with, so the model stays mixed while everything built
    later (other models, a notebook's next cells, the tests) gets the usual float32.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="helpers")
class FakeAUC(keras.metrics.AUC):
    """ROC-AUC of p(fake) = the second softmax column, against integer labels (0 real, 1 fake)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(keras.ops.reshape(y_true, (-1,)), y_pred[:, 1], sample_weight)


def build_classifier(backbone: str = "auto", image_size: int = 224, weights: str | None = "imagenet",
                     augmentations: tuple[str, ...] = tuple(augment.RECIPE),
                     extra_augmentations: tuple[str, ...] = (), dropout: float = 0.5,
                     pixel_scale: float = 1.0, mixed_precision: bool = False) -> keras.Model:
    """Build the two-class detector with its backbone frozen (ready for stage 1).

    `backbone` is "auto" or a name from `backbones.BACKBONES`; the model is named `detector_<backbone>`.
    A `pixel_scale` other than 1 adds a `Rescaling(pixel_scale)` layer before the backbone: 1/255
    rebuilds the original project's double rescaling (lesson 04's ladder). Leave it at 1.
    `mixed_precision` builds it under "mixed_float16" (fast on a GPU's tensor cores, slow on a CPU).
    """
    with dtype_policy(MIXED_PRECISION if mixed_precision else "float32"):
        name, _ = backbones.resolve_backbone(backbone)
        inputs = keras.Input(shape=(image_size, image_size, 3), name=INPUT_NAME)
        x = inputs
        for layer in augment.augmentation_layers(config.SEED, tuple(extra_augmentations), tuple(augmentations)):
            x = layer(x)
        if pixel_scale != 1.0:
            x = keras.layers.Rescaling(pixel_scale, name=INPUT_RESCALING_LAYER)(x)
        base = backbones.build_backbone(name, input_tensor=x, weights=weights)
        x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(base.output)
        x = keras.layers.Dropout(dropout, name=DROPOUT_LAYER)(x)
        head_init = keras.initializers.GlorotUniform(seed=config.SEED)  # the seed alone, whatever drew numbers before
        outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer=head_init, dtype="float32",
                                     name=OUTPUT_LAYER)(x)  # float32 under mixed precision too
        model = keras.Model(inputs, outputs, name=f"detector_{name}")
    freeze_backbone(model)
    return model


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The backbone's layers: everything between the augmentation and the head."""
    return [layer for layer in model.layers
            if layer.name not in HEAD_LAYERS and layer.name != INPUT_NAME
            and not layer.name.startswith("augment_")]


def freeze_backbone(model: keras.Model) -> None:
    """Stage 1: only the head learns."""
    for layer in backbone_layers(model):
        layer.trainable = False


def unfreeze_top_blocks(model: keras.Model, n_blocks: int) -> list[str]:
    """Stage 2: unfreeze the head convolution and the top `n_blocks` whole blocks; BatchNorm stays frozen.

    A block (e.g. `block6d`) is unfrozen whole or not at all: the original project's "top 30 layers"
    cut `block6c` after its expansion convolution, which stayed frozen while the rest of the block
    trained (lesson 04 prints the cut, `ladder.capstone_cut`). BatchNormalization
    stays frozen so its running statistics, learnt on ImageNet, are not overwritten by small batches.
    Returns the names of the blocks now trainable, top first.
    """
    blocks = backbones.block_names(model)
    if not 0 <= n_blocks <= len(blocks):
        raise BadArgumentError(f"n_blocks must be between 0 and {len(blocks)} for this backbone, got {n_blocks}.")
    chosen = ["top"] + blocks[::-1][:n_blocks]
    freeze_backbone(model)
    for layer in backbone_layers(model):
        in_chosen = any(layer.name.startswith(f"{block}_") for block in chosen)
        if in_chosen and not isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
    return chosen


def unfreeze_top_layers(model: keras.Model, n_layers: int) -> list[str]:
    """The original project's stage 2: the last `n_layers` backbone layers trainable, BatchNorm included.

    Kept to reproduce that recipe (lesson 04's ladder); `unfreeze_top_blocks` is the fix. Returns the
    names of the layers now trainable, top first.
    """
    layers = backbone_layers(model)
    if not 0 <= n_layers <= len(layers):
        raise BadArgumentError(f"n_layers must be between 0 and {len(layers)} for this backbone, got {n_layers}.")
    freeze_backbone(model)
    chosen = layers[len(layers) - n_layers:]
    for layer in chosen:
        layer.trainable = True
    return [layer.name for layer in chosen[::-1]]


def top_layers_cut(model: keras.Model, n_layers: int) -> dict:
    """What "unfreeze the last n layers" would do: which blocks it cuts in half, how many BatchNorms it frees."""
    chosen = backbone_layers(model)[-n_layers:]
    blocks = {name.split("_")[0] for name in (layer.name for layer in chosen)}
    cut = sorted(block for block in blocks
                 if not all(layer in chosen for layer in backbone_layers(model) if layer.name.startswith(f"{block}_")))
    return {"blocks touched": sorted(blocks), "blocks cut in half": cut,
            "BatchNormalization layers unfrozen": sum(isinstance(layer, keras.layers.BatchNormalization)
                                                      for layer in chosen)}


def compile_model(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam, cross-entropy on integer labels, accuracy and ROC-AUC of p(fake).

    When layers compute in float16, Adam goes in a LossScaleOptimizer: the loss is scaled up before
    the backward pass so that small gradients do not round to zero in float16, and scaled back after.
    Keras does this by itself only when the model's own policy is mixed, which a model loaded from
    model.keras no longer is (its layers still are), so we decide from the layers.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    if is_mixed_precision(model):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer,
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", FakeAUC(name="auc")])
    return model


def is_mixed_precision(model: keras.Model) -> bool:
    """Whether any layer of `model` computes in float16 under the mixed_float16 policy."""
    return any(layer.dtype_policy.name == MIXED_PRECISION for layer in model.layers)


def with_dtype_policy(model: keras.Model, policy: str) -> keras.Model:
    """A copy of `model` whose layers compute under `policy` (`prediction` stays float32), same weights.

    Names, settings, trainable flags and weights are the detector's. `helpers.train` saves a
    mixed-precision detector as its float32 copy, so everything after training (prediction on a CPU,
    Grad-CAM, the TFLite export, lesson 04's own compile) gets an ordinary model; a run that resumes
    from it turns it back into mixed precision.
    """
    def clone(layer):
        settings = layer.get_config()
        settings["dtype"] = "float32" if layer.name == OUTPUT_LAYER else policy
        return layer.__class__.from_config(settings)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def inference_function(model: keras.Model):
    """`model` in inference mode as one tf.function with a free batch dimension: images in, outputs out.

    Traced once, whatever the batch sizes. `model.predict` traces its loop again for a last, smaller
    batch, and anew for every model, so that a training run scoring three models in a row makes
    TensorFlow warn about retracing; this one function per model does not.
    """
    import tensorflow as tf

    signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    return tf.function(lambda images: model(images, training=False), input_signature=[signature])


def feature_extractor(model: keras.Model) -> keras.Model:
    """image -> pooled backbone features (the input of the head). Augmentation is off at inference."""
    return keras.Model(model.input, model.get_layer(POOL_LAYER).output, name="features")


def head_model(model: keras.Model) -> keras.Model:
    """pooled features -> p(real), p(fake), sharing the detector's head layers (training it trains them)."""
    features = keras.Input(shape=model.get_layer(POOL_LAYER).output.shape[1:], name="features")
    x = model.get_layer(DROPOUT_LAYER)(features)
    return keras.Model(features, model.get_layer(OUTPUT_LAYER)(x), name="head")


def trainable_summary(model: keras.Model) -> dict[str, int]:
    """Counts of trainable and frozen parameters."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    frozen = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}
