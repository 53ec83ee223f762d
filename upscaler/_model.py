"""The ESPCN network (Shi et al. 2016), defined once in Keras 3.

Importing this module imports Keras; only the keras backend, training and export do.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

__all__ = ["DepthToSpace", "build_espcn", "load_model"]


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


def build_espcn(factor: int) -> keras.Model:
    """ESPCN on the Y channel: conv 64x5x5, 32x3x3, 32x3x3 (tanh), factor²x3x3, shuffle."""
    inputs = keras.Input(shape=(None, None, 1), name="y")
    x = layers.Conv2D(64, 5, padding="same", activation="tanh")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="tanh")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="tanh")(x)
    x = layers.Conv2D(factor * factor, 3, padding="same")(x)
    outputs = DepthToSpace(factor, name="depth_to_space")(x)
    return keras.Model(inputs, outputs, name=f"espcn_x{factor}")


def load_model(path: str) -> keras.Model:
    """Load a `.keras` ESPCN model for inference."""
    return keras.saving.load_model(path, compile=False)
