"""The shipped ESPCN models: manifest, integrity checks, keras/onnx parity, the model itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SET5, run_cli
from upscaler._errors import BackendError
from upscaler._images.codec import decode
from upscaler._plugins.weights import manifest, shipped_models, shipped_weights, verify_file


def test_manifest_lists_every_factor_with_hashes_that_match() -> None:
    models = {m["factor"]: m for m in manifest()["models"]}
    assert set(models) == {2, 3, 4}
    for factor in models:
        for kind in ("onnx", "keras"):
            assert shipped_weights(factor, kind).suffix == f".{kind}"  # verified on load


def test_missing_or_corrupt_weights_are_refused_clearly(tmp_path: Path) -> None:
    entry = next(m for m in manifest()["models"] if m["factor"] == 3)
    copy = tmp_path / "espcn_x3.onnx"
    shutil.copy(shipped_weights(3, "onnx"), copy)
    verify_file(copy, entry["onnx"]["sha256"])
    copy.write_bytes(copy.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BackendError, match="espcn_x3.onnx are corrupt .*reinstall upscaler"):
        verify_file(copy, entry["onnx"]["sha256"])
    with pytest.raises(BackendError, match="missing"):
        verify_file(tmp_path / "gone.onnx", entry["onnx"]["sha256"])


def test_unknown_device_and_missing_cuda_are_clear(tmp_path: Path) -> None:
    lr = SET5 / "image_SRF_3" / "img_001_SRF_3_LR.png"
    result = run_cli("batch", lr, "-o", tmp_path, "--device", "tpu")
    assert result.returncode == 2 and "'tpu' is not one of 'cpu', 'cuda'" in result.stderr
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        result = run_cli("batch", lr, "-o", tmp_path, "--device", "cuda")
        assert result.returncode == 2 and "onnxruntime-gpu" in result.stderr


@pytest.mark.keras
@pytest.mark.slow
def test_keras_and_onnx_backends_agree_on_set5(shared: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    lrs = sorted((SET5 / "image_SRF_3").glob("*_LR.png"))
    for backend in ("onnx", "keras"):
        result = run_cli("batch", *lrs, "-o", tmp_path / backend, "--backend", backend, "-q")
        assert result.returncode == 0, result.stderr
    total = same = 0
    for lr in lrs:
        a = decode(tmp_path / "onnx" / lr.name).pixels.astype(int)
        b = decode(tmp_path / "keras" / lr.name).pixels.astype(int)
        assert np.abs(a - b).max() <= 1
        total, same = total + a.size, same + int((a == b).sum())
    assert same / total >= 0.999


@pytest.mark.keras
@pytest.mark.slow
def test_model_is_the_article_architecture() -> None:
    pytest.importorskip("tensorflow")
    from upscaler._training.network import build_espcn

    model = build_espcn(3)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size, c.activation.__name__) for c in convs] == [
        (64, (5, 5), "tanh"),
        (32, (3, 3), "tanh"),
        (32, (3, 3), "tanh"),
        (9, (3, 3), "linear"),
    ]
    # about 32k multiply-adds per input pixel at x3
    macs = sum(int(np.prod(c.kernel.shape)) for c in convs)
    assert 30_000 < macs < 33_000
    x = np.random.default_rng(0).random((2, 7, 5, 1), dtype=np.float32)
    out = np.asarray(model(x))
    assert out.shape == (2, 21, 15, 1)
    # The last convolution adds to a nearest-neighbour enlargement: zero it and that is left.
    convs[-1].set_weights([np.zeros_like(w) for w in convs[-1].get_weights()])
    nearest = x.repeat(3, axis=1).repeat(3, axis=2)
    np.testing.assert_array_equal(np.asarray(model(x)), nearest)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_shipped_onnx_models_cost_what_the_architecture_costs(factor: int) -> None:
    """Multiply-adds per input pixel from the ONNX graph's Conv weights (issue 16): retrained
    weights must keep 64x5x5, 32x3x3, 32x3x3 and factor^2 x 3x3, nothing more."""
    onnx = pytest.importorskip("onnx")
    assert shipped_models(factor) == ("clean", "jpeg", "jpeg-high")
    for model in shipped_models(factor):  # those for JPEG inputs cost the same
        graph = onnx.load(str(shipped_weights(factor, "onnx", model))).graph
        dims = {t.name: tuple(t.dims) for t in graph.initializer}
        convs = [dims[n.input[1]] for n in graph.node if n.op_type == "Conv"]
        assert convs == [(64, 1, 5, 5), (32, 64, 3, 3), (32, 32, 3, 3), (factor**2, 32, 3, 3)]
        assert sum(int(np.prod(c)) for c in convs) == {2: 30_400, 3: 31_840, 4: 33_856}[factor]


@pytest.mark.parametrize("model", ["clean", "jpeg", "jpeg-high"])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_each_unpadded_twin_gives_its_models_output_of_the_cores(factor: int, model: str) -> None:
    """The twin (scripts/unpadded_models.py) on a tile with 5 pixels of context around its
    core = the shipped model's output of the same tile, cropped to the core: on a photo's
    luma and on noise, through ONNX Runtime; and its weights are the model's own."""
    import onnxruntime as ort

    plain = ort.InferenceSession(str(shipped_weights(factor, "onnx", model)))
    twin_path = shipped_weights(factor, "onnx_unpadded", model)  # listed, sha256 checked
    twin = ort.InferenceSession(str(twin_path))
    photo = decode(SET5 / "image_SRF_3" / "img_003_SRF_3_LR.png").pixels
    luma = photo.astype(np.float32).mean(axis=2)[:47, :61] / 255.0
    noise = np.random.default_rng(factor).random((47, 61), np.float32)
    tiles = np.stack([luma, noise])[..., None]
    k = 5 * factor
    whole = plain.run(None, {"y": tiles})[0][:, k:-k, k:-k]
    cores = twin.run(None, {"y": tiles})[0]
    assert cores.shape == whole.shape == (2, 37 * factor, 51 * factor, 1)
    np.testing.assert_allclose(cores, whole, atol=1e-5)
    onnx = pytest.importorskip("onnx")
    weights = [
        {
            t.name: onnx.numpy_helper.to_array(t).tobytes()
            for t in onnx.load(str(p)).graph.initializer
        }
        for p in (shipped_weights(factor, "onnx", model), twin_path)
    ]
    assert weights[0].items() <= weights[1].items()  # the model's weights, all of them


@pytest.mark.slow
def test_precision_is_forced_or_refused_clearly(tmp_path: Path) -> None:
    lr = SET5 / "image_SRF_3" / "img_001_SRF_3_LR.png"
    refused = run_cli("batch", lr, "-o", tmp_path / "a", "--backend", "onnx", "--precision", "bf16")
    assert refused.returncode == 2
    assert "the onnx backend runs fp32 only, not bf16 (bf16: --backend openvino)" in refused.stderr
    assert not (tmp_path / "a" / lr.name).exists()
    forced = run_cli(
        "batch", lr, "-o", tmp_path / "b", "--backend", "openvino", "--precision", "fp32"
    )
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.strip().splitlines()[-1].endswith("backend openvino (fp32)")
    onnx = run_cli("batch", lr, "-o", tmp_path / "c", "--backend", "onnx")
    assert onnx.stderr.strip().splitlines()[-1].endswith("backend onnx (fp32)")
    same = (
        decode(tmp_path / "b" / lr.name).pixels.astype(int)
        - decode(tmp_path / "c" / lr.name).pixels
    )
    assert np.abs(same).max() <= 1  # OpenVINO in float32 is ONNX Runtime's result, up to rounding


def test_openvino_refuses_a_model_of_another_factor(tmp_path: Path) -> None:
    lr = SET5 / "image_SRF_3" / "img_001_SRF_3_LR.png"
    ran = run_cli(
        "batch",
        lr,
        "-o",
        tmp_path,
        "--backend",
        "openvino",
        "--factor",
        3,
        "--weights",
        shipped_weights(2, "onnx"),
    )
    assert ran.returncode == 2 and "upscales by 2, not 3" in ran.stderr, ran.stderr


@pytest.mark.slow
def test_openvino_loads_without_its_converter_and_keeps_it_usable() -> None:
    """The backend skips OpenVINO's eager import of its model converter (start-up time); a
    program that uses the converter after loading the backend still finds it."""
    script = """
import sys
import numpy as np
import upscaler
out = upscaler.upscale_array(np.zeros((8, 8, 3), np.uint8), 2, backend="openvino")
assert out.shape == (16, 16, 3)
assert "openvino.tools.ovc" not in sys.modules, "the converter was imported"
from openvino import convert_model
import openvino
assert openvino.convert_model is convert_model and callable(convert_model)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.slow
def test_openvino_keeps_compiled_models_in_a_cache_and_runs_without_one(tmp_path: Path) -> None:
    """Issue 30: the second run loads the compiled model from the cache folder (start-up);
    a cache folder that cannot be made costs the cache, not the run."""
    lr = SET5 / "image_SRF_3" / "img_001_SRF_3_LR.png"
    outputs = []
    for i, cache in enumerate(["cache", "cache", "file/cannot-be-a-folder", ""]):
        (tmp_path / "file").touch()
        env = {**os.environ, "UPSCALER_CACHE_DIR": str(tmp_path / cache) if cache else ""}
        out = tmp_path / f"o{i}"
        ran = run_cli("batch", lr, "-o", out, "--backend", "openvino", "-q", env=env)
        assert ran.returncode == 0, ran.stderr
        outputs.append((out / lr.name).read_bytes())
        if i == 0:
            assert [p.suffix for p in (tmp_path / "cache" / "openvino").iterdir()] == [".blob"]
    assert len(set(outputs)) == 1  # the same pixels with or without the cache
