"""Tiling: the maths alone, and tiled == untiled through the real engine."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upscaler._pixels.tiling import batches, plan_spans, plan_tiles
from upscaler._pixels.upscale import upscale_pixels
from upscaler._plugins.interface import BackendOptions
from upscaler._plugins.registry import load_backend
from upscaler._plugins.weights import shipped_weights
from upscaler.backends.bicubic import BicubicBackend


@given(length=st.integers(1, 400), tile=st.integers(1, 120), overlap=st.integers(0, 12))
def test_spans_cover_the_axis_once_with_context(length: int, tile: int, overlap: int) -> None:
    spans = plan_spans(length, tile, overlap)
    assert spans[0].start == 0 and spans[-1].stop == length
    sizes = {s.pad_stop - s.pad_start for s in spans}
    assert sizes == {min(length, tile + 2 * overlap)}  # one padded shape: one batch
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.stop == b.start
    for s in spans:
        assert 0 <= s.pad_start <= max(s.start - overlap, 0)
        assert min(s.stop + overlap, length) <= s.pad_stop <= length


def test_batches_group_equal_shapes_within_the_pixel_budget() -> None:
    tiles = plan_tiles(100, 100, 30, 5)
    groups = list(batches(tiles, max_pixels=3 * 40 * 40))
    assert [t for g in groups for t in g] == tiles
    assert all(len(g) <= 3 and len({t.padded_shape for t in g}) == 1 for g in groups)


def _image(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 1, (h, w, channels)), 0), 1)
    smooth = (smooth - smooth.min()) / max(np.ptp(smooth), 1e-6) * 200
    return np.clip(smooth + rng.normal(0, 8, smooth.shape) + 20, 0, 255).astype(np.uint8)


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
    assert diff.max() <= 1, f"tiles differ by {diff.max()} levels"
    # Pillow's float weights depend on where a tile starts by ~1e-16: a value sitting on a
    # rounding boundary may round the other way, about once in 10^4 (twice, on tiny images).
    differ = int((diff != 0).sum())
    assert differ <= max(2, diff.size // 10_000), f"{differ} of {diff.size} values differ"


sizes = st.one_of(
    st.tuples(st.integers(1, 3), st.integers(1, 90)),  # 1xN, 2xN, 3xN strips
    st.tuples(st.integers(1, 90), st.integers(1, 3)),
    st.tuples(st.integers(4, 90), st.integers(4, 90)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=sizes,
    tile=st.integers(8, 64),
    extra=st.integers(0, 4),
    channels=st.sampled_from([1, 2, 3, 4]),
    factor=st.sampled_from([2, 3, 4]),
    seed=st.integers(0, 1000),
)
def test_bicubic_tiled_equals_untiled(
    size: tuple[int, int], tile: int, extra: int, channels: int, factor: int, seed: int
) -> None:
    img = _image(*size, channels, seed)
    backend = BicubicBackend(factor)
    whole = upscale_pixels(img, backend, tile=max(size) + 1)
    _assert_same(upscale_pixels(img, backend, tile=tile, overlap=2 + extra), whole)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=sizes,
    tile=st.integers(8, 48),
    extra=st.integers(0, 3),
    channels=st.sampled_from([1, 3, 4]),
    seed=st.integers(0, 1000),
)
def test_espcn_tiled_equals_untiled(
    size: tuple[int, int], tile: int, extra: int, channels: int, seed: int
) -> None:
    img = _image(*size, channels, seed)
    backend = load_backend("onnx", 3)
    whole = upscale_pixels(img, backend, tile=max(size) + 1)
    tiled = upscale_pixels(img, backend, tile=tile, overlap=backend.halo + extra)  # type: ignore[operator]
    _assert_same(tiled, whole)


def test_tiles_inside_the_image_compute_only_their_cores() -> None:
    """Tiles with the halo of image around them on every side go to the unpadded twin
    (`upscale_core`: the network never computes the context's output); those at the edges
    to the model, whole; the pixels are the same as with the model alone."""
    img = _image(70, 150, 3, 4)
    backend = load_backend("onnx", 3)
    assert backend.upscale_core is not None
    shapes: dict[str, list[tuple[int, ...]]] = {"core": [], "whole": []}

    def counted(name: str, method: Any) -> Any:
        def call(tiles: np.ndarray) -> np.ndarray:
            shapes[name].append(tiles.shape)
            return method(tiles)

        return call

    plain = copy.copy(backend)  # the loaded backend is cached: changed in copies only
    plain.upscale_core = None
    backend = copy.copy(backend)
    backend.upscale_core = counted("core", backend.upscale_core)
    backend.upscale = counted("whole", backend.upscale)  # type: ignore[method-assign]
    out = upscale_pixels(img, backend, tile=20)  # 4 x 8 tiles: 2 x 6 inside
    _assert_same(out, upscale_pixels(img, plain, tile=20))
    assert sum(s[0] for s in shapes["core"]) == 2 * 6
    assert {s[1:3] for s in shapes["core"]} == {(30, 30)}  # core 20 + 2 x 5 halo
    assert sum(s[0] for s in shapes["whole"]) == 4 * 8 - 2 * 6
    own = load_backend("onnx", 3, BackendOptions(weights=shipped_weights(3, "onnx")))
    assert own.upscale_core is None  # a user's own weights (--weights) have no twin
    _assert_same(upscale_pixels(img, own, tile=20), out)


def test_images_smaller_than_one_tile_and_16_bit() -> None:
    img = _image(5, 7, 3, 1).astype(np.uint16) * 257
    out = upscale_pixels(img, BicubicBackend(2), tile=512)
    assert out.shape == (10, 14, 3) and out.dtype == np.uint16
    assert len(np.unique(out)) > 256  # really 16-bit values, not 8-bit ones scaled


def test_too_little_overlap_shows_seams_so_the_property_test_can_fail() -> None:
    img = _image(60, 60, 1, 3)
    backend = load_backend("onnx", 3)
    whole = upscale_pixels(img, backend, tile=100)
    tiled = upscale_pixels(img, backend, tile=10, overlap=2)  # overlap < halo (5)
    with pytest.raises(AssertionError):
        _assert_same(tiled, whole)


@pytest.mark.parametrize("factor", [2, 3])
def test_feathered_blend_for_backends_without_halo(factor: int) -> None:
    unbounded = dataclasses.replace(BicubicBackend(factor), halo=None)
    flat = np.full((41, 53, 3), 137, np.uint8)
    assert (upscale_pixels(flat, unbounded, tile=16, overlap=4) == 137).all()
    img = _image(41, 53, 3, 5)
    whole = upscale_pixels(img, BicubicBackend(factor), tile=100).astype(int)
    blended = upscale_pixels(img, unbounded, tile=16, overlap=4).astype(int)
    assert np.abs(blended - whole).mean() < 0.5


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_pillow_canvas_gives_the_same_pixels_as_an_array(channels: int) -> None:
    from upscaler._pixels.canvas import ArrayCanvas, PillowCanvas
    from upscaler._pixels.upscale import upscale_into

    img = _image(37, 29, channels, 11)
    for backend in (BicubicBackend(2), dataclasses.replace(BicubicBackend(2), halo=None)):
        array = ArrayCanvas(np.zeros((74, 58, channels), np.uint8))
        pillow = PillowCanvas(74, 58, channels)
        upscale_into(array, img, backend, tile=12, overlap=3)
        upscale_into(pillow, img, backend, tile=12, overlap=3)
        as_array = np.asarray(pillow.output()).reshape(74, 58, channels)
        assert np.array_equal(as_array, array.array)
