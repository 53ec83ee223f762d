"""`upscaler train`: fit ESPCN on high-resolution photos (needs the keras extra).

Training pairs: each photo is cropped to a multiple of the factor, its low-resolution twin
made with Pillow's antialiased BICUBIC (the MATLAB `imresize` kernel that benchmark LR
images use), both reduced to luma in [0, 1]. Random patches with the 8 flips/transposes,
MSE, Adam with cosine decay; optionally the hidden layers in bfloat16 (the saved model is
float32 either way). Sampling is a pure function of (seed, step), so a resumed run
draws the same batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ._color import rgb_to_y
from ._plan import image_files

Float = NDArray[np.float32]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    factor: int
    steps: int = 60_000
    batch: int = 128
    patch: int = 17
    learning_rate: float = 1e-3
    seed: int = 0
    val_images: int = 8
    steps_per_epoch: int = 1_000
    bfloat16: bool = False
    #: Train each convolution as a sum of linear branches with this scale (None: plain).
    branch_scale: float | None = None

    def __post_init__(self) -> None:
        if self.factor not in (2, 3, 4):
            raise ValueError(f"factor must be 2, 3 or 4, not {self.factor}")
        if self.steps % self.steps_per_epoch:
            raise ValueError("steps must be a multiple of steps_per_epoch")


@dataclass(frozen=True)
class Pair:
    lr: Float
    hr: Float


def list_images(dirs: Sequence[Path]) -> list[Path]:
    """Image files below `dirs`, in order, hidden ones skipped (as `upscaler batch` finds them)."""
    return [p for d in dirs for p in image_files(Path(d))]


def make_pair(path: Path, factor: int) -> Pair:
    """Load one photo as (LR luma, HR luma), HR cropped to a multiple of `factor`."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    w, h = (rgb.width // factor) * factor, (rgb.height // factor) * factor
    hr = rgb.crop((0, 0, w, h))
    lr = hr.resize((w // factor, h // factor), Image.Resampling.BICUBIC)
    return Pair(_luma(lr), _luma(hr))


def _luma(im: Image.Image) -> Float:
    return rgb_to_y(np.asarray(im, dtype=np.float32) / 255.0)


def sample_batch(pairs: Sequence[Pair], cfg: TrainConfig, step: int) -> tuple[Float, Float]:
    """The training batch for global step `step`: random patches, random dihedral flips."""
    rng = np.random.default_rng([cfg.seed, step])
    p, s = cfg.patch, cfg.factor
    lr = np.empty((cfg.batch, p, p), np.float32)
    hr = np.empty((cfg.batch, p * s, p * s), np.float32)
    for i, k in enumerate(rng.integers(len(pairs), size=cfg.batch)):
        img = pairs[k]
        y = int(rng.integers(img.lr.shape[0] - p + 1))
        x = int(rng.integers(img.lr.shape[1] - p + 1))
        lr[i] = img.lr[y : y + p, x : x + p]
        hr[i] = img.hr[y * s : (y + p) * s, x * s : (x + p) * s]
    for axes in ((1,), (2,), None):  # vertical flip, horizontal flip, transpose
        flip = rng.random(cfg.batch) < 0.5
        lr[flip], hr[flip] = _dihedral(lr[flip], axes), _dihedral(hr[flip], axes)
    return lr[..., None], hr[..., None]


def _dihedral(a: Float, axes: tuple[int, ...] | None) -> Float:
    return np.flip(a, axes) if axes else a.transpose(0, 2, 1)


def validation_set(pairs: Sequence[Pair], factor: int, size: int = 64) -> tuple[Float, Float]:
    """Centre crops (size x size low-resolution pixels) of the held-out photos."""
    lrs, hrs = [], []
    for img in pairs:
        h, w = img.lr.shape
        y, x = (h - size) // 2, (w - size) // 2
        lrs.append(img.lr[y : y + size, x : x + size])
        hrs.append(img.hr[y * factor : (y + size) * factor, x * factor : (x + size) * factor])
    return np.stack(lrs)[..., None], np.stack(hrs)[..., None]


def load_pairs(paths: Sequence[Path], cfg: TrainConfig) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, validation pairs); the validation photos are a seeded pick."""
    pairs = [make_pair(p, cfg.factor) for p in paths]
    pairs = [p for p in pairs if min(p.lr.shape) >= max(cfg.patch, 64)]
    if len(pairs) <= cfg.val_images:
        raise ValueError(f"need more than {cfg.val_images} usable photos, found {len(pairs)}")
    order = np.random.default_rng(cfg.seed).permutation(len(pairs))
    val = [pairs[i] for i in order[: cfg.val_images]]
    return [pairs[i] for i in order[cfg.val_images :]], val


def train(
    data_dirs: Sequence[Path], out: Path, cfg: TrainConfig, export: bool = True
) -> dict[str, Any]:
    """Train, write `out` (.keras) and, with `export`, its ONNX twin; return run facts."""
    import keras

    from ._model import build_espcn

    keras.utils.set_random_seed(cfg.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    paths = list_images(data_dirs)
    train_pairs, val_pairs = load_pairs(paths, cfg)
    model = build_espcn(
        cfg.factor, "mixed_bfloat16" if cfg.bfloat16 else "float32", cfg.branch_scale
    )
    _compile(model, cfg)
    data, epoch_setter = _patch_sequence(train_pairs, cfg)
    ckpt = out.with_name(out.name + ".ckpt")
    resumed_from = _checkpoint_epoch(ckpt)
    started = time.monotonic()
    history = model.fit(
        data,
        epochs=cfg.steps // cfg.steps_per_epoch,
        validation_data=validation_set(val_pairs, cfg.factor),
        callbacks=[keras.callbacks.BackupAndRestore(str(ckpt)), epoch_setter],
        verbose=1 if os.isatty(2) else 2,
    )
    seconds = time.monotonic() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    _inference_copy(model, cfg.factor).save(out)
    facts = {
        "config": asdict(cfg),
        "photos": len(paths),
        "resumed_from_epoch": resumed_from,
        "train_seconds": round(seconds, 1),  # of this invocation only
        "keras_backend": keras.backend.backend(),
        "val_psnr": float(history.history["val_psnr"][-1]),
    }
    if export:
        export_onnx(out, out.with_suffix(".onnx"))
    out.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _inference_copy(model: Any, factor: int) -> Any:
    """The plain network with the trained weights (branches merged), uncompiled: the saved
    file carries no optimizer state."""
    from ._model import plain_copy

    return plain_copy(model, factor)


def _checkpoint_epoch(ckpt: Path) -> int:
    """Epochs already done according to an interrupted run's checkpoint (0 if none)."""
    try:
        return int(json.loads((ckpt / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def export_onnx(model_path: Path, onnx_path: Path) -> None:
    """Write the ONNX export of a `.keras` model (TensorFlow backend, tf2onnx)."""
    import keras

    from ._model import load_model

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"ONNX export needs KERAS_BACKEND=tensorflow (now {keras.backend.backend()}); "
            f"run `upscaler export {model_path}` there"
        )
    model = load_model(str(model_path))
    model(np.zeros((1, 8, 8, 1), np.float32))
    model.export(str(onnx_path), format="onnx", verbose=False)


def _compile(model: Any, cfg: TrainConfig) -> None:
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, cfg.steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", metrics=[_psnr_metric()])


def _psnr_metric() -> Any:
    from keras import ops

    def psnr(y_true: Any, y_pred: Any) -> Any:
        mse = ops.mean(ops.square(y_true - ops.clip(y_pred, 0.0, 1.0)), axis=(1, 2, 3))
        return -10.0 * ops.log10(ops.maximum(mse, 1e-10))

    return psnr


def _patch_sequence(pairs: Sequence[Pair], cfg: TrainConfig) -> tuple[Any, Any]:
    """A Keras dataset of training batches and the callback that tells it the epoch."""
    import keras

    class PatchSequence(keras.utils.PyDataset):  # type: ignore[misc]
        epoch = 0

        def __len__(self) -> int:
            return cfg.steps_per_epoch

        def __getitem__(self, index: int) -> tuple[Float, Float]:
            return sample_batch(pairs, cfg, self.epoch * cfg.steps_per_epoch + index)

    class EpochSetter(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            data.epoch = epoch

    # One worker: batches are then drawn only after EpochSetter has run, so each step's
    # batch depends on (seed, step) alone; prefetching threads would race the epoch.
    data = PatchSequence(workers=1, use_multiprocessing=False)
    return data, EpochSetter()
