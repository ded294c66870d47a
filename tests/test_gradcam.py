"""Grad-CAM on our flat detector, on a nested backbone, and on a model trained on a planted cue."""
import keras
import numpy as np
import pytest

from helpers import backbones, gradcam, images
from helpers import classifier

SIZE = 96  # real Lite0 weights: small, but big enough for a 3 x 3 top activation


def tiny_model(split_softmax: bool = False) -> keras.Model:
    """64 px -> two strided convs -> `top_activation` (16 x 16) -> pooling -> two-way softmax.

    `split_softmax` puts the softmax in its own layer, so Grad-CAM cannot reach the logits.
    """
    inputs = keras.Input((64, 64, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv2")(x)
    x = keras.layers.Activation("relu", name="top_activation")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if split_softmax:
        x = keras.layers.Dense(2, name="logits")(x)
        return keras.Model(inputs, keras.layers.Activation("softmax", name="prediction")(x))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="prediction")(x))


def noise(count: int, seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def with_planted_cue(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dim noise; every second image ("fake", label 1) gets a bright 16 px square in the top-left corner."""
    pixels = np.random.default_rng(seed).uniform(0, 100, (count, 64, 64, 3)).astype("float32")
    labels = np.arange(count) % 2
    pixels[labels == 1, 2:18, 2:18] = 255
    return pixels, labels


def top_left_share(heatmaps: np.ndarray) -> np.ndarray:
    """Share of each map's heat that lies in its top-left quadrant."""
    half = heatmaps.shape[1] // 2
    return heatmaps[:, :half, :half].sum(axis=(1, 2)) / heatmaps.sum(axis=(1, 2))


def nest(backbone: keras.Model, image_size: int) -> keras.Model:
    """The Keras-tutorial layout: the whole backbone is one layer of the outer model."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(backbone(x))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="nested")


@pytest.fixture(scope="module")
def lite0():
    """Our flat detector with real ImageNet Lite0 weights (its head is untrained)."""
    keras.utils.set_random_seed(0)
    return classifier.build_classifier("efficientnet_lite0", SIZE)


@pytest.fixture(scope="module")
def faces(dfdc) -> np.ndarray:
    paths = sorted((dfdc / "Test" / "Real").glob("*.jpg"))[:4]
    return np.stack([images.load_resized(path, SIZE) for path in paths])


@pytest.fixture(scope="module")
def face(faces) -> np.ndarray:
    return faces[0]


# ----------------------------------------------------------------------------- real weights, flat and nested


def test_the_private_keras_api_gradcam_walks_is_still_there(lite0):
    operation, node_index, _ = lite0.outputs[0]._keras_history  # KerasTensor._keras_history
    node = operation._inbound_nodes[node_index]  # Operation._inbound_nodes
    assert node.input_tensors, f"Keras changed {gradcam.PRIVATE_KERAS_API}: gradcam._node_calling needs updating"


def test_heatmaps_on_real_faces_are_in_range_and_not_constant(lite0, faces):
    """With two classes the maps of "fake" and "real" are ReLU(S) and ReLU(-S) of one weighted sum S.

    So one of them may be all zeros (no positive evidence, likely with this untrained head), but
    never both.
    """
    fake_maps, real_maps = (gradcam.gradcam(lite0, faces, class_index) for class_index in (1, 0))
    for heatmaps in (fake_maps, real_maps):
        assert heatmaps.shape == (len(faces), SIZE, SIZE)
        assert heatmaps.dtype == np.float32
        assert heatmaps.min() >= 0
        assert np.isin(heatmaps.max(axis=(1, 2)), [0, 1]).all(), "each map is scaled to 0..1, or all zeros"
    structure = np.maximum(fake_maps.std(axis=(1, 2)), real_maps.std(axis=(1, 2)))
    assert structure.min() > 0.05, "a real face must give a map with structure"


def test_a_single_image_is_a_batch_of_one(lite0, face):
    np.testing.assert_array_equal(gradcam.gradcam(lite0, face), gradcam.gradcam(lite0, face[None]))


def test_augmentation_is_off(lite0, face):
    """The detector flips, rotates and zooms in training; Grad-CAM must see the image as it is."""
    first = gradcam.gradcam(lite0, face)
    np.testing.assert_array_equal(first, gradcam.gradcam(lite0, face))


def test_nested_backbone_gives_the_same_map_as_the_flat_detector(lite0, face):
    backbone = backbones.efficientnet_lite0(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(lite0.get_layer(layer.name).get_weights())
    nested = nest(backbone, SIZE)
    nested.layers[-1].set_weights(lite0.get_layer(classifier.OUTPUT_LAYER).get_weights())

    with pytest.raises(ValueError):  # the trap: the outer model only knows the backbone as one layer
        nested.get_layer(classifier.LAST_CONV_LAYER)
    assert gradcam.last_conv_layer_name(nested) == classifier.LAST_CONV_LAYER
    flat_map = gradcam.gradcam(lite0, face)
    nested_map = gradcam.gradcam(nested, face)
    assert nested_map.shape == flat_map.shape == (1, SIZE, SIZE)
    np.testing.assert_allclose(nested_map, flat_map, atol=1e-4)


def test_keras_efficientnet_b0_nested_in_a_functional_and_a_sequential_model():
    b0 = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(64, 64, 3))
    # Both wrap the same backbone object, so it is called twice: each model must find its own call.
    sequential = keras.Sequential([keras.Input((64, 64, 3)), b0, keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(2, activation="softmax")])
    for model in (nest(b0, 64), sequential):
        heatmaps = gradcam.gradcam(model, noise(2))
        assert heatmaps.shape == (2, 64, 64)
        assert np.isfinite(heatmaps).all() and heatmaps.min() >= 0 and heatmaps.max() <= 1


# ----------------------------------------------------------------------------- does it point at the evidence?


def test_heat_lies_on_a_planted_cue():
    """A small net learns "bright square top-left = fake"; its fake heatmaps must sit top-left."""
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    pixels, labels = with_planted_cue(512, seed=0)
    model.fit(pixels, labels, batch_size=32, epochs=4, verbose=0)

    test_pixels, test_labels = with_planted_cue(32, seed=1)
    assert (model.predict(test_pixels, verbose=0).argmax(axis=1) == test_labels).mean() > 0.95, "cue not learnt"
    share = top_left_share(gradcam.gradcam(model, test_pixels[test_labels == 1], class_index=1))
    assert share.min() > 0.6, f"heat share in the top-left quadrant: {np.round(share, 2)}"


def test_the_logit_map_equals_the_softmax_map_for_two_classes():
    """The docstring's claim: the centred logit and p(class) differ only by a positive factor per image."""
    keras.utils.set_random_seed(1)
    fused, split = tiny_model(), tiny_model(split_softmax=True)
    split.set_weights(fused.get_weights())
    pixels = noise(3)
    np.testing.assert_allclose(split.predict(pixels, verbose=0), fused.predict(pixels, verbose=0), atol=1e-6)
    for class_index in (0, 1):
        np.testing.assert_allclose(gradcam.gradcam(split, pixels, class_index),
                                   gradcam.gradcam(fused, pixels, class_index), atol=1e-4)


# ----------------------------------------------------------------------------- edge cases and errors


def test_zero_gradients_give_zeros_not_nan():
    model = tiny_model()
    dense = model.get_layer("prediction")
    dense.set_weights([np.zeros_like(weight) for weight in dense.get_weights()])
    heatmaps = gradcam.gradcam(model, noise(2))
    assert heatmaps.shape == (2, 64, 64)
    assert np.isfinite(heatmaps).all() and not heatmaps.any()


def test_a_fully_frozen_model_gives_the_same_map():
    """Our detectors reach Grad-CAM with a frozen backbone; freezing must not change the map."""
    model = tiny_model()
    pixels = noise(2)
    trainable_maps = [gradcam.gradcam(model, pixels, class_index) for class_index in (0, 1)]
    model.trainable = False
    for class_index, trainable_map in enumerate(trainable_maps):
        np.testing.assert_array_equal(gradcam.gradcam(model, pixels, class_index), trainable_map)
    assert np.any(trainable_maps), "one class's map (ReLU of S or of -S) cannot be blank"


def test_default_layer_is_the_last_conv_activation(lite0):
    assert gradcam.last_conv_layer_name(lite0) == classifier.LAST_CONV_LAYER
    assert gradcam.last_conv_layer_name(tiny_model()) == "top_activation"


def test_an_earlier_layer_can_be_chosen():
    heatmaps = gradcam.gradcam(tiny_model(), noise(1), layer_name="conv1")
    assert heatmaps.shape == (1, 64, 64) and np.isfinite(heatmaps).all()


def test_a_wrong_layer_name_lists_the_candidates():
    with pytest.raises(ValueError, match="top_activation") as error:
        gradcam.gradcam(tiny_model(), noise(1), layer_name="top_activaton")
    assert "conv1" in str(error.value)
    with pytest.raises(ValueError, match="4-D"):  # exists, but it is not a spatial activation
        gradcam.gradcam(tiny_model(), noise(1), layer_name="head_pool")


def test_a_class_index_out_of_range_is_refused():
    with pytest.raises(ValueError, match="class_index"):
        gradcam.gradcam(tiny_model(), noise(1), class_index=2)


# ----------------------------------------------------------------------------- overlay


def test_overlay_is_a_uint8_image_of_the_same_shape():
    image = noise(1, size=48)[0].astype(np.uint8)
    heatmap = np.linspace(0, 1, 12 * 12).reshape(12, 12)  # coarser than the image: resized to it
    blended = gradcam.overlay(image, heatmap)
    assert blended.dtype == np.uint8 and blended.shape == image.shape
    np.testing.assert_array_equal(gradcam.overlay(image, heatmap, alpha=0.0), image)
    assert not np.array_equal(blended, image)


def test_overlay_refuses_a_grey_image():
    with pytest.raises(ValueError, match="RGB"):
        gradcam.overlay(np.zeros((8, 8), np.uint8), np.zeros((8, 8)))
