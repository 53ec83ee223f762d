"""Set5 through the real CLI, scored with the shared PSNR protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SET5, run_cli
from upscaler._images.codec import decode
from upscaler._pixels.metrics import psnr_y
from upscaler._plugins.weights import manifest

PUBLISHED_BICUBIC = {2: 33.66, 3: 30.39, 4: 28.42}
OPENCV_ESPCN = {2: 34.76, 3: 30.53, 4: 28.38}  # the peer, dnn_superres' ESPCN models
ONNX_BARS = {2: 36.98, 3: 33.05, 4: 30.77}  # issue 16's targets (issue 3's: 36.50/32.55/30.35)
#: Factors whose shipped weights are below ONNX_BARS (none since the weights of issue 16).
#: Strict: a factor listed here whose weights pass fails until it is removed.
BELOW_BAR: set[int] = set()


def set5_psnr(backend: str, factor: int, out: Path, *extra: str) -> float:
    """Mean Y-PSNR of `upscaler batch` on the Set5 LR images against the HR ones."""
    folder = SET5 / f"image_SRF_{factor}"
    lrs = sorted(folder.glob("*_LR.png"))
    assert len(lrs) == 5
    result = run_cli(
        "batch", *lrs, "-o", out, "--backend", backend, "--factor", factor, "-q", *extra
    )
    assert result.returncode == 0, result.stderr
    scores = []
    for lr in lrs:
        sr = decode(out / lr.name).pixels
        hr = decode(folder / lr.name.replace("_LR", "_HR")).pixels
        scores.append(psnr_y(sr, hr, crop=factor))
    return float(np.mean(scores))


@pytest.mark.parametrize(
    "factor", [pytest.param(2, marks=pytest.mark.slow), 3, pytest.param(4, marks=pytest.mark.slow)]
)
def test_bicubic_reproduces_published_set5_psnr(shared: Path, tmp_path: Path, factor: int) -> None:
    assert set5_psnr("bicubic", factor, tmp_path) == pytest.approx(
        PUBLISHED_BICUBIC[factor], abs=0.05
    )


@pytest.mark.parametrize(
    "factor", [pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow), 4]
)
def test_onnx_backend_gives_the_manifest_psnr_and_beats_the_peer(
    shared: Path, tmp_path: Path, factor: int
) -> None:
    psnr = set5_psnr("onnx", factor, tmp_path)
    listed = next(m for m in manifest()["models"] if m["factor"] == factor)["set5_psnr_y"]
    assert psnr == pytest.approx(listed, abs=0.005)
    assert psnr >= OPENCV_ESPCN[factor] + 0.5
    assert psnr >= PUBLISHED_BICUBIC[factor] + 1.0


@pytest.mark.parametrize(
    "factor",
    [
        pytest.param(f, marks=pytest.mark.xfail(f in BELOW_BAR, reason="below bar", strict=True))
        for f in (2, 3, 4)
    ],
)
@pytest.mark.slow
def test_onnx_backend_reaches_the_quality_bar(shared: Path, tmp_path: Path, factor: int) -> None:
    assert set5_psnr("onnx", factor, tmp_path) >= ONNX_BARS[factor]


def test_psnr_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    ya = 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255
    yb = 16 + (65.481 * b[..., 0] + 128.553 * b[..., 1] + 24.966 * b[..., 2]) / 255
    mse = np.mean((ya[2:-2, 2:-2] - yb[2:-2, 2:-2]) ** 2)
    assert psnr_y(a, b, crop=2) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    assert psnr_y(a, a, crop=2) == float("inf")


def _bf16_or_skip() -> None:
    from upscaler._plugins.precision import native_bf16

    if not native_bf16():
        pytest.skip("this CPU has no native bfloat16 (AVX512-BF16 or AMX): auto runs fp32 here")


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.slow
def test_bf16_matches_fp32_on_set5(shared: Path, tmp_path: Path, factor: int) -> None:
    """The reduced precision users get by default: within 0.03 dB, 99.8% within 1 grey level.

    99.8%, not the 99.9% of the first weights: the re-parameterised ones (issue 16) have a
    first layer about 10x larger, which amplifies the input's rounding to bfloat16 (8
    significant bits: half a grey level near white); measured 99.965 / 99.941 / 99.854%."""
    _bf16_or_skip()
    fp32 = set5_psnr("onnx", factor, tmp_path / "fp32", "--precision", "fp32")
    bf16 = set5_psnr("openvino", factor, tmp_path / "bf16", "--precision", "bf16")
    assert abs(bf16 - fp32) <= 0.03, (bf16, fp32)
    diffs = []
    for out in sorted((tmp_path / "fp32").glob("*.png")):
        a = decode(out).pixels.astype(np.int16)
        diffs.append(np.abs(a - decode(tmp_path / "bf16" / out.name).pixels).ravel())
    every = np.concatenate(diffs)
    assert np.mean(every <= 1) >= 0.998, np.mean(every <= 1)
    assert np.any(every > 0)  # bf16 really ran: it does not round exactly as fp32 does


@pytest.mark.slow
def test_default_backend_runs_bf16_where_the_cpu_has_it(shared: Path, tmp_path: Path) -> None:
    _bf16_or_skip()
    lr = SET5 / "image_SRF_3" / "img_001_SRF_3_LR.png"
    result = run_cli("batch", lr, "-o", tmp_path, "--factor", 3)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("backend openvino (bf16)")
    listed = run_cli("backends").stdout
    assert any(
        line.startswith("openvino") and " bf16 " in line and line.endswith("(default)")
        for line in listed.splitlines()
    ), listed
