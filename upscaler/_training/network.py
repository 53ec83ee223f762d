"""The ESPCN network (Shi et al. 2016), defined once in Keras 3.

Importing this module imports Keras; only the keras backend, training and export do.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

__all__ = ["DepthToSpace", "build_espcn", "load_model", "plain_copy"]


@keras.saving.register_keras_serializable(package="upscaler")
class DepthToSpace(layers.Layer):  # type: ignore[misc]
    """Sub-pixel shuffle: (B, H, W, s*s) -> (B, H*s, W*s, 1), TensorFlow's DCR order."""

    def __init__(self, factor: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x: Any) -> Any:
        s = self.factor
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.nn.depth_to_space(x, s)
        shape = ops.shape(x)
        h, w = shape[1], shape[2]
        x = ops.reshape(x, (-1, h, w, s, s))
        x = ops.transpose(x, (0, 1, 3, 2, 4))
        return ops.reshape(x, (-1, h * s, w * s, 1))

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        b, h, w, _ = input_shape
        s = self.factor
        return (b, None if h is None else h * s, None if w is None else w * s, 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def build_espcn(
    factor: int, hidden_dtype: str = "float32", branch_scale: float | None = None
) -> keras.Model:
    """ESPCN on the Y channel: conv 64x5x5, 32x3x3, 32x3x3 (tanh), factor²x3x3, shuffle.

    The last convolution's output is added to the input before the shuffle, so the network
    learns the difference from a nearest-neighbour enlargement (one addition per output pixel).
    `hidden_dtype` "mixed_bfloat16" computes the three tanh layers in bfloat16 (for training
    where the processor has bfloat16 arithmetic); the last convolution, the sum and the output
    stay float32. With `branch_scale`, each convolution is trained as a sum of linear branches
    (`ReparamConv2D`, with that scale); `plain_copy` merges them into this plain network.
    """
    conv = _conv if branch_scale is None else _reparam_conv(branch_scale)
    inputs = keras.Input(shape=(None, None, 1), name="y")
    x = conv(64, 5, 1, "tanh", hidden_dtype)(inputs)
    x = conv(32, 3, 64, "tanh", hidden_dtype)(x)
    x = conv(32, 3, 32, "tanh", hidden_dtype)(x)
    x = conv(factor * factor, 3, 32, None, "float32")(x)
    x = layers.Add(name="residual")([x, inputs])  # broadcasts y over the factor² channels
    outputs = DepthToSpace(factor, name="depth_to_space")(x)
    return keras.Model(inputs, outputs, name=f"espcn_x{factor}")


def _conv(
    filters: int, size: int, channels_in: int, activation: str | None, dtype: str
) -> layers.Conv2D:
    """A "same" convolution with PyTorch's default initialisation: U(±1/sqrt(fan_in))."""
    bound = (size * size * channels_in) ** -0.5
    return layers.Conv2D(
        filters,
        size,
        padding="same",
        activation=activation,
        kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        dtype=dtype,
    )


def _reparam_conv(branch_scale: float) -> Any:
    from .reparam import ReparamConv2D

    def conv(filters: int, size: int, _: int, activation: str | None, dtype: str) -> Any:
        return ReparamConv2D(filters, size, activation, branch_scale=branch_scale, dtype=dtype)

    return conv


def plain_copy(model: keras.Model, factor: int) -> keras.Model:
    """The plain float32 ESPCN with `model`'s weights, branches merged: the model to ship."""
    from .reparam import ReparamConv2D

    weights = []
    for layer in model.layers:
        if isinstance(layer, ReparamConv2D):
            weights += [ops.convert_to_numpy(w) for w in layer.merged()]
        else:
            weights += [ops.convert_to_numpy(w) for w in layer.weights]
    copy = build_espcn(factor)
    copy.set_weights(weights)
    return copy


def load_model(path: str) -> keras.Model:
    """Load a `.keras` ESPCN model for inference."""
    return keras.saving.load_model(path, compile=False)
