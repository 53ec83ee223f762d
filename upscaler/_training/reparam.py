"""Re-parameterised convolutions for training: many linear branches, one kxk kernel.

Each convolution of ESPCN is trained as a sum of linear branches, after ECB (Zhang, Zeng and
Zhang, "Edge-oriented Convolution Block", ACM MM 2021): the kxk kernel itself; a 1x1
expansion to `expand` x the output channels followed by a kxk convolution; three 1x1
convolutions followed by fixed Sobel-x, Sobel-y and Laplacian filters with learned per-channel
scales; and, where input and output channels match, the identity with learned per-channel
scales. Every branch is linear, so their sum is one kxk kernel: it is computed from the branch
weights in every forward pass and the input is convolved once (the activations of the branches
are never formed), which costs about what the plain convolution costs. The exported model is
the plain network with the merged kernels: same layers, shapes and cost.

The branches start at zero (one factor of each product is zero-initialised), so the network
starts where the plain one starts; `branch_scale` multiplies every branch, which under Adam
scales how fast the branches move (Adam's steps do not depend on the gradient's size).

Importing this module imports Keras; only training does.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops
from numpy.typing import NDArray

__all__ = ["ReparamConv2D", "edge_filters"]


def edge_filters(size: int) -> NDArray[np.float32]:
    """(3, size, size): Sobel-x, Sobel-y and the Laplacian, centred in a size x size kernel."""
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    out = np.zeros((3, size, size), np.float32)
    c = size // 2
    for i, f in enumerate((sobel_x, sobel_x.T, laplacian)):
        out[i, c - 1 : c + 2, c - 1 : c + 2] = f
    return out


@keras.saving.register_keras_serializable(package="upscaler")
class ReparamConv2D(layers.Layer):  # type: ignore[misc]
    """A "same" kxk convolution trained as a sum of linear branches, merged per forward pass."""

    def __init__(
        self,
        filters: int,
        size: int,
        activation: str | None = None,
        expand: int = 2,
        branch_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters, self.size, self.expand = filters, size, expand
        self.branch_scale = branch_scale
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        k, cin, out = self.size, int(input_shape[-1]), self.filters
        self._identity = cin == out
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, cin, out), initializer=_uniform(k * k * cin)
        )
        self.bias = self.add_weight(name="bias", shape=(out,), initializer=_uniform(k * k * cin))
        mid = self.expand * out
        self.expand_1x1 = self.add_weight(
            name="expand_1x1", shape=(cin, mid), initializer=_uniform(cin)
        )
        self.expand_kxk = self.add_weight(
            name="expand_kxk", shape=(k, k, mid, out), initializer="zeros"
        )
        self.edge_1x1 = self.add_weight(
            name="edge_1x1", shape=(3, cin, out), initializer=_uniform(cin)
        )
        self.edge_scale = self.add_weight(name="edge_scale", shape=(3, out), initializer="zeros")
        if self._identity:
            self.identity_scale = self.add_weight(
                name="identity_scale", shape=(out,), initializer="zeros"
            )
        self._edges = edge_filters(k)

    def merged(self) -> tuple[Any, Any]:
        """(kernel, bias) of the one convolution that the branches add up to."""
        c = self.size // 2
        branches = ops.einsum("cm,ijmo->ijco", self.expand_1x1, self.expand_kxk)
        edges = ops.einsum("eco,eo->eco", self.edge_1x1, self.edge_scale)
        branches = branches + ops.einsum("eij,eco->ijco", ops.cast(self._edges, edges.dtype), edges)
        if self._identity:
            centre = np.zeros((self.size, self.size, 1, 1), np.float32)
            centre[c, c] = 1.0
            eye = ops.cast(centre, branches.dtype) * ops.diag(self.identity_scale)[None, None]
            branches = branches + eye
        return self.kernel + self.branch_scale * branches, self.bias

    def call(self, x: Any) -> Any:
        kernel, bias = self.merged()
        return self.activation(ops.conv(x, kernel, padding="same") + bias)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "size": self.size,
            "activation": keras.activations.serialize(self.activation),
            "expand": self.expand,
            "branch_scale": self.branch_scale,
        }


def _uniform(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default initialisation, U(±1/sqrt(fan_in)), as the plain network's."""
    bound = fan_in**-0.5
    return keras.initializers.RandomUniform(-bound, bound)
