"""`upscaler train` with real TensorFlow on a few BSDS500 photos (the keras extra)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BSDS, run_cli, upscaler_command
from upscaler._training.train import TrainConfig, make_pair, sample_batch

#: Checked without importing TensorFlow (seconds): collection stays fast for `-m "not slow"`.
pytestmark = [
    pytest.mark.keras,
    pytest.mark.skipif(find_spec("tensorflow") is None, reason="needs the keras extra"),
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for src in sorted((BSDS / "train").glob("*.jpg"))[:5]:
        shutil.copy(src, folder)
    return folder


def _args(photos: Path, out: Path, steps: int = 20) -> list[object]:
    return [
        "train",
        photos,
        "--factor",
        2,
        "-o",
        out,
        "--steps",
        steps,
        "--steps-per-epoch",
        10,
        "--batch",
        16,
        "--val-images",
        1,
        "--seed",
        7,
    ]


def _upscale_with(photos: Path, model: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`upscaler batch` at x2 with the trained ONNX `model`."""
    return run_cli("batch", photos, "-o", out, "--factor", 2, "--weights", model, "-q")


def _weights(path: Path) -> list[np.ndarray]:
    from upscaler._training.network import load_model

    return [np.asarray(w) for w in load_model(str(path)).get_weights()]


def test_sampling_is_a_function_of_seed_and_step(photos: Path) -> None:
    cfg = TrainConfig(factor=3, batch=8, seed=1)
    pairs = [make_pair(p, 3) for p in sorted(photos.glob("*.jpg"))]
    a, b = sample_batch(pairs, cfg, 5), sample_batch(pairs, cfg, 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], sample_batch(pairs, cfg, 6)[0])
    lr, hr = a
    assert lr.shape == (8, 17, 17, 1) and hr.shape == (8, 51, 51, 1)
    assert abs(hr.reshape(8, 17, 3, 17, 3).mean(axis=(2, 4)) - lr[..., 0]).mean() < 0.02  # aligned


@pytest.mark.slow
def test_train_writes_keras_onnx_and_facts_reproducibly(photos: Path, tmp_path: Path) -> None:
    """...in place of links planted at their names (replaced, their targets untouched)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "a").mkdir()
    for suffix in (".keras", ".onnx", ".json"):
        (tmp_path / "a" / f"m{suffix}").symlink_to(victim)
    first = run_cli(*_args(photos, tmp_path / "a" / "m.keras"))
    assert first.returncode == 0, first.stderr
    for suffix in (".keras", ".onnx", ".json"):
        path = tmp_path / "a" / f"m{suffix}"
        assert path.is_file() and not path.is_symlink()
    assert victim.read_text() == "precious"
    assert "val_psnr" in first.stdout + first.stderr
    assert run_cli(*_args(photos, tmp_path / "b" / "m.keras")).returncode == 0
    for x, y in zip(
        _weights(tmp_path / "a" / "m.keras"), _weights(tmp_path / "b" / "m.keras"), strict=True
    ):
        assert np.array_equal(x, y)
    batch = _upscale_with(photos, tmp_path / "a" / "m.onnx", tmp_path / "up")
    assert batch.returncode == 0, batch.stderr
    wrong = run_cli(
        "batch",
        photos,
        "-o",
        tmp_path / "up3",
        "--factor",
        3,
        "--weights",
        tmp_path / "a" / "m.onnx",
    )
    assert wrong.returncode == 2 and "upscales by 2, not 3" in wrong.stderr


@pytest.mark.slow
def test_bfloat16_training_saves_a_float32_model(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    args = [*_args(photos, out, steps=10), "--bfloat16", "--no-export"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    from upscaler._training.network import load_model

    model = load_model(str(out))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert not out.with_suffix(".onnx").exists()
    facts = json.loads(out.with_suffix(".json").read_text())
    assert facts["config"]["bfloat16"] is True and np.isfinite(facts["val_psnr"])


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(photos: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight" / "m.keras"
    assert run_cli(*_args(photos, straight, steps=40)).returncode == 0
    out = tmp_path / "resumed" / "m.keras"
    proc = subprocess.Popen(
        [*upscaler_command(), *map(str, _args(photos, out, steps=40))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = out.with_name("m.keras.ckpt") / "training_metadata.json"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "training finished before it could be interrupted"
    resumed = run_cli(*_args(photos, out, steps=40))
    assert resumed.returncode == 0, resumed.stderr
    log = resumed.stdout + resumed.stderr
    assert "Epoch 1/4" not in log and "Epoch 4/4" in log  # it went on from the checkpoint
    # Same batches, restored optimizer state: the same weights up to float reordering, which
    # a few Adam steps can turn into 1e-3 here and there.
    for x, y in zip(_weights(straight), _weights(out), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=2e-3)
        assert np.abs(x - y).mean() < 1e-4


def _explicit_branches(layer: object, x: np.ndarray) -> np.ndarray:
    """ReparamConv2D computed branch by branch, as ECB runs it before merging."""
    import keras
    from keras import ops

    from upscaler._training.reparam import edge_filters

    def conv(inp: object, kernel: object) -> object:
        return ops.conv(inp, kernel, padding="same")

    w = {v.path.split("/")[-1]: ops.convert_to_numpy(v) for v in layer.weights}  # type: ignore[attr-defined]
    k, scale = layer.size, layer.branch_scale  # type: ignore[attr-defined]
    out = conv(x, w["kernel"])
    out += scale * conv(conv(x, w["expand_1x1"][None, None]), w["expand_kxk"])
    filters = edge_filters(k)
    for e in range(3):
        mapped = conv(x, w["edge_1x1"][e][None, None]) * w["edge_scale"][e]
        depthwise = np.zeros((k, k, mapped.shape[-1], mapped.shape[-1]), np.float32)
        for c in range(mapped.shape[-1]):
            depthwise[:, :, c, c] = filters[e]
        out += scale * conv(mapped, depthwise)
    if "identity_scale" in w:
        out += scale * x * w["identity_scale"]
    act = keras.activations.get(layer.activation)  # type: ignore[attr-defined]
    return np.asarray(act(out + w["bias"]))


def test_branches_merge_exactly_into_the_plain_network() -> None:
    """In the fast tier: the one test there that loads TensorFlow (the network and its
    re-parameterisation). Each re-parameterised layer equals its branches run one by one, and the exported plain
    model (merged kernels) gives the multi-branch model's outputs."""
    from upscaler._training.network import build_espcn, plain_copy
    from upscaler._training.reparam import ReparamConv2D

    rng = np.random.default_rng(3)
    model = build_espcn(3, branch_scale=0.5)
    for w in model.weights:  # every branch away from its zero start
        w.assign(rng.normal(0, 0.1, w.shape).astype(np.float32))
    x = rng.random((2, 19, 23, 1), dtype=np.float32)
    h = x
    for layer in model.layers:
        if isinstance(layer, ReparamConv2D):
            expected = _explicit_branches(layer, h)
            h = np.asarray(layer(h))
            assert np.abs(h - expected).max() <= 1e-5, layer.name
    plain = plain_copy(model, 3)
    assert not any(isinstance(layer, ReparamConv2D) for layer in plain.layers)
    assert [w.shape for w in plain.weights] == [w.shape for w in build_espcn(3).weights]
    assert np.abs(np.asarray(model(x)) - np.asarray(plain(x))).max() <= 1e-5


@pytest.mark.slow
def test_a_trained_multi_branch_model_merges_into_the_plain_one(photos: Path) -> None:
    """Issue 16's check: a small multi-branch model trained for real (Adam, MSE, patches of
    real photos, from the zero start of its branches) gives, merged into the plain network,
    the same outputs on random input (max abs difference <= 1e-5)."""
    from upscaler._training.network import build_espcn, plain_copy
    from upscaler._training.train import _compile, list_images, load_pairs

    cfg = TrainConfig(
        factor=2, steps=30, steps_per_epoch=30, batch=16, val_images=1, branch_scale=1
    )
    pairs, _ = load_pairs(list_images([photos]), cfg)
    model = build_espcn(2, branch_scale=1.0)
    _compile(model, cfg)
    start = [np.asarray(w).copy() for w in model.weights]
    for step in range(cfg.steps):
        model.train_on_batch(*sample_batch(pairs, cfg, step))
    moved = [
        not np.array_equal(a, np.asarray(b)) for a, b in zip(start, model.weights, strict=True)
    ]
    assert all(moved)  # every branch left its start, the zero-initialised ones too
    x = np.random.default_rng(5).random((2, 21, 17, 1), dtype=np.float32)
    plain = plain_copy(model, 2)
    assert np.abs(np.asarray(model(x)) - np.asarray(plain(x))).max() <= 1e-5


@pytest.mark.slow
def test_branch_training_exports_the_plain_network(photos: Path, tmp_path: Path) -> None:
    """Trained with branches, the ONNX export has the shipped model's convolutions (same
    multiply-adds per pixel) and upscales through `upscaler batch`."""
    import onnx

    from upscaler.plugin import shipped_weights

    out = tmp_path / "m.keras"
    trained = run_cli(*_args(photos, out, steps=10), "--branch-scale", 0.5)
    assert trained.returncode == 0, trained.stderr

    def conv_shapes(path: Path) -> list[tuple[int, ...]]:
        graph = onnx.load(str(path)).graph
        weights = {t.name: tuple(t.dims) for t in graph.initializer}
        return [weights[n.input[1]] for n in graph.node if n.op_type == "Conv"]

    assert conv_shapes(out.with_suffix(".onnx")) == conv_shapes(shipped_weights(2, "onnx"))
    assert json.loads(out.with_suffix(".json").read_text())["config"]["branch_scale"] == 0.5
    batch = _upscale_with(photos, out.with_suffix(".onnx"), tmp_path / "up")
    assert batch.returncode == 0, batch.stderr


@pytest.mark.slow
def test_keep_best_writes_the_epoch_with_the_best_whole_image_score(
    photos: Path, tmp_path: Path
) -> None:
    import re

    from upscaler._training.network import load_model
    from upscaler._training.train import whole_image_psnr

    held = tmp_path / "held"
    held.mkdir()
    for src in sorted((BSDS / "test").glob("*.jpg"))[:2]:
        shutil.copy(src, held)
    out = tmp_path / "m.keras"
    args = [*_args(photos, out, steps=40), "--val-dir", held, "--keep-best", "--no-export"]
    done = run_cli(*args, "--learning-rate", 0.01)
    assert done.returncode == 0, done.stderr
    scores = [float(s) for s in re.findall(r"whole-image validation PSNR ([\d.]+)", done.stdout)]
    assert len(scores) == 4
    facts = json.loads(out.with_suffix(".json").read_text())
    assert facts["best_epoch"] == 1 + int(np.argmax(scores))
    assert f"epoch {facts['best_epoch']}, whole-image PSNR" in done.stdout
    pairs = [make_pair(p, 2) for p in sorted(held.glob("*.jpg"))]
    assert whole_image_psnr(load_model(str(out)), pairs, 2) == pytest.approx(max(scores), abs=2e-3)
    assert not out.with_name("m.keras.best").exists()


@pytest.mark.slow
def test_best_keeper_restores_an_earlier_better_epoch(tmp_path: Path) -> None:
    from upscaler._training.network import build_espcn
    from upscaler._training.train import _best_keeper

    pairs = [make_pair(p, 2) for p in sorted((BSDS / "test").glob("*.jpg"))[:2]]
    model, out = build_espcn(2), tmp_path / "m.keras"
    keeper = _best_keeper(pairs, 2, out)
    keeper.set_model(model)
    keeper.on_epoch_end(0)
    good = [np.asarray(w) for w in model.get_weights()]
    model.set_weights([w + 0.5 for w in good])  # a collapse: far worse
    keeper.on_epoch_end(1)
    assert keeper.restore_best()["best_epoch"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), good, strict=True))
    keeper.clean_up()
    assert not out.with_name("m.keras.best").exists()


def test_rescale_augmentation_adds_smaller_copies_of_the_training_photos(photos: Path) -> None:
    from upscaler._training.train import list_images, load_pairs

    paths = list_images([photos])
    plain_train, plain_val = load_pairs(paths, TrainConfig(factor=4, val_images=1))
    train, val = load_pairs(paths, TrainConfig(factor=4, val_images=1, rescales=(1.0, 0.5)))
    # at x4 a half-size BSDS500 photo is about 60x40 low-resolution pixels: patches fit
    assert len(plain_train) == 4 and len(train) == 8 and len(val) == len(plain_val) == 1
    for full, half in zip(train[::2], train[1::2], strict=True):
        h, w = full.lr.shape
        assert abs(half.lr.shape[0] - h / 2) <= 1 and abs(half.lr.shape[1] - w / 2) <= 1
    assert all(np.array_equal(a.lr, b.lr) for a, b in zip(plain_train, train[::2], strict=True))


@pytest.mark.slow
def test_rescale_option_is_recorded(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    done = run_cli(*_args(photos, out, steps=10), "--rescale", 0.7, "--no-export")
    assert done.returncode == 0, done.stderr
    facts = json.loads(out.with_suffix(".json").read_text())
    assert facts["config"]["rescales"] == [1.0, 0.7]
    trained_on = facts["photos"] - facts["validation_photos"]
    assert facts["training_pairs"] == 2 * trained_on > 0


def test_jpeg_degraded_pairs_are_whole_photos_saved_as_jpeg(photos: Path) -> None:
    """--jpeg-quality: the low-resolution photo is saved whole as a JPEG of the drawn quality
    (blocks aligned as in real files) and read back; the qualities are seeded and in range."""
    import io

    from upscaler._pixels.color import rgb_to_y
    from upscaler._training.train import jpeg_qualities

    path = sorted(photos.glob("*.jpg"))[0]
    clean, degraded = make_pair(path, 3), make_pair(path, 3, jpeg=60)
    assert np.array_equal(clean.hr, degraded.hr) and not np.array_equal(clean.lr, degraded.lr)
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    w, h = rgb.width // 3 * 3, rgb.height // 3 * 3
    lr = rgb.crop((0, 0, w, h)).resize((w // 3, h // 3), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    lr.save(buf, "JPEG", quality=60)
    expected = rgb_to_y(np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255)
    assert np.array_equal(degraded.lr, expected)
    cfg = TrainConfig(factor=3, jpeg_quality=(50, 95), seed=4)
    drawn = [q for i in range(50) for q in jpeg_qualities(cfg, i, 4)]
    assert drawn == [q for i in range(50) for q in jpeg_qualities(cfg, i, 4)]
    assert all(50 <= q <= 95 for q in drawn) and len(set(drawn)) > 20  # type: ignore[operator]
    assert jpeg_qualities(TrainConfig(factor=3), 0, 4) == [None]


@pytest.mark.slow
def test_init_starts_a_branched_model_as_the_given_model(tmp_path: Path) -> None:
    """--init with --branch-scale: the plain kernels take the model's weights and the added
    branches start at zero, so before any step the network is exactly that model."""
    from upscaler._training.network import build_espcn, plain_copy
    from upscaler._training.train import _start_from

    rng = np.random.default_rng(0)
    source = build_espcn(2)
    source.set_weights(
        [rng.normal(0, 0.1, w.shape).astype(np.float32) for w in source.get_weights()]
    )
    source.save(tmp_path / "init.keras")
    branched = build_espcn(2, branch_scale=1.0)
    _start_from(branched, tmp_path / "init.keras", 2)
    x = rng.random((1, 20, 24, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(branched(x)), np.asarray(source(x)), atol=1e-5)
    for a, b in zip(plain_copy(branched, 2).get_weights(), source.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    wrong = build_espcn(3, branch_scale=1.0)
    with pytest.raises(ValueError, match="not an ESPCN x3"):
        _start_from(wrong, tmp_path / "init.keras", 3)


@pytest.mark.slow
def test_train_refuses_a_bad_jpeg_quality_range(photos: Path, tmp_path: Path) -> None:
    for bad in ("90-50", "0-50", "50-101", "high"):
        ran = run_cli(*_args(photos, tmp_path / "m.keras"), "--jpeg-quality", bad)
        assert ran.returncode == 2, (bad, ran.stderr)
        assert "--jpeg-quality" in ran.stderr or "JPEG qualities" in ran.stderr, bad
        assert not (tmp_path / "m.keras").exists()
