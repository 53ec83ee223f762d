"""Where the engine assembles an output: a numpy array, or a Pillow image.

A Pillow canvas lets an 8-bit output go straight to Pillow's encoders: Pillow stores RGB in
4 bytes per pixel, so a numpy output plus the Pillow copy that encoding makes would take
3 + 4 bytes per output pixel; assembling in Pillow takes 4.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["ArrayCanvas", "Canvas", "PillowCanvas", "new_canvas"]

_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


class Canvas(Protocol):
    """An (H, W, C) output being assembled block by block."""

    dtype: np.dtype[Any]
    shape: tuple[int, int, int]

    def read(self, y: int, x: int, h: int, w: int) -> NDArray[Any]:
        """The (h, w, C) block at (y, x)."""
        ...

    def write(self, y: int, x: int, block: NDArray[Any]) -> None:
        """Store an (h, w, C) block of `dtype` at (y, x)."""
        ...

    def output(self) -> NDArray[Any] | Image.Image:
        """The finished image: an array ((H, W) when C is 1) or the Pillow image."""
        ...


class ArrayCanvas:
    """A numpy output, (H, W, C) of any dtype."""

    def __init__(self, array: NDArray[Any]) -> None:
        self.array, self.dtype = array, array.dtype
        self.shape: tuple[int, int, int] = (array.shape[0], array.shape[1], array.shape[2])

    def read(self, y: int, x: int, h: int, w: int) -> NDArray[Any]:
        return self.array[y : y + h, x : x + w]

    def write(self, y: int, x: int, block: NDArray[Any]) -> None:
        self.array[y : y + block.shape[0], x : x + block.shape[1]] = block

    def output(self) -> NDArray[Any]:
        return self.array[:, :, 0] if self.shape[2] == 1 else self.array


class PillowCanvas:
    """An 8-bit output held as a Pillow image (L, LA, RGB or RGBA)."""

    dtype = np.dtype(np.uint8)

    def __init__(self, height: int, width: int, channels: int) -> None:
        self.image = Image.new(_MODES[channels], (width, height))
        self.shape = (height, width, channels)

    def read(self, y: int, x: int, h: int, w: int) -> NDArray[Any]:
        block = np.asarray(self.image.crop((x, y, x + w, y + h)))
        return block.reshape(h, w, self.shape[2])

    def write(self, y: int, x: int, block: NDArray[Any]) -> None:
        plane = block[:, :, 0] if block.shape[2] == 1 else block
        self.image.paste(Image.fromarray(np.ascontiguousarray(plane)), (x, y))

    def output(self) -> Image.Image:
        return self.image


def new_canvas(
    height: int, width: int, channels: int, dtype: np.dtype[Any], pillow: bool
) -> Canvas:
    """A zeroed canvas; a Pillow one when asked and the output is 8-bit."""
    if pillow and dtype == np.uint8:
        return PillowCanvas(height, width, channels)
    return ArrayCanvas(np.zeros((height, width, channels), dtype))
