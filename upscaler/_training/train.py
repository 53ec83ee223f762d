"""`upscaler train`: fit ESPCN on high-resolution photos (needs the keras extra).

Training pairs: each photo is cropped to a multiple of the factor, its low-resolution twin
made with Pillow's antialiased BICUBIC (the MATLAB `imresize` kernel that benchmark LR
images use), both reduced to luma in [0, 1]. Random patches with the 8 flips/transposes,
MSE, Adam with cosine decay; optionally the hidden layers in bfloat16 (the saved model is
float32 either way). Sampling is a pure function of (seed, step), so a resumed run
draws the same batches an uninterrupted one would.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._pixels.color import rgb_to_y
from .._run.plan import image_files

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
    #: Validation photos (whole images, never trained on); None: a seeded pick of the data.
    val_dir: str | None = None
    #: Write the epoch with the best whole-image validation PSNR instead of the last one.
    keep_best: bool = False
    #: Each training photo also at these scales (rescale augmentation); 1.0: as it is.
    rescales: tuple[float, ...] = (1.0,)
    #: (lo, hi): the low-resolution photos are saved as JPEG at qualities drawn from lo..hi
    #: (whole photos, so blocks align as in real files); None: clean (lossless) inputs.
    jpeg_quality: tuple[int, int] | None = None
    #: JPEG qualities drawn per training photo (each a pair of its own) with `jpeg_quality`.
    jpeg_variants: int = 4
    #: Start from this `.keras` model's weights (fine-tuning) instead of a random start.
    init: str | None = None

    def __post_init__(self) -> None:
        if self.factor not in (2, 3, 4):
            raise ValueError(f"factor must be 2, 3 or 4, not {self.factor}")
        if self.steps % self.steps_per_epoch:
            raise ValueError("steps must be a multiple of steps_per_epoch")
        if self.jpeg_quality is not None:
            lo, hi = self.jpeg_quality
            if not 1 <= lo <= hi <= 100:
                raise ValueError(f"JPEG qualities must be 1 <= LO <= HI <= 100, not {lo}-{hi}")


@dataclass(frozen=True)
class Pair:
    lr: Float
    hr: Float


def list_images(dirs: Sequence[Path]) -> list[Path]:
    """Image files below `dirs`, in order, hidden ones skipped (as `upscaler batch` finds them)."""
    return [p for d in dirs for p in image_files(Path(d))]


def make_pair(path: Path, factor: int, scale: float = 1.0, jpeg: int | None = None) -> Pair:
    """Load one photo as (LR luma, HR luma), HR cropped to a multiple of `factor`; with
    `scale`, the photo is first resized by it (antialiased bicubic): a rescale augmentation;
    with `jpeg`, the low-resolution photo is saved as a JPEG of that quality (Pillow's
    defaults otherwise: 4:2:0, as most stored photos) and read back before its luma is taken."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    if scale != 1.0:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    w, h = (rgb.width // factor) * factor, (rgb.height // factor) * factor
    hr = rgb.crop((0, 0, w, h))
    lr = hr.resize((w // factor, h // factor), Image.Resampling.BICUBIC)
    if jpeg is not None:
        lr = jpeg_round_trip(lr, jpeg)
    return Pair(_luma(lr), _luma(hr))


def jpeg_round_trip(im: Image.Image, quality: int) -> Image.Image:
    """`im` saved as a JPEG of `quality` (Pillow's defaults otherwise) and decoded again."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return decoded.convert("RGB")


def jpeg_qualities(cfg: TrainConfig, index: int, count: int, stream: int = 0) -> list[int | None]:
    """The JPEG qualities of photo number `index`: `count` seeded draws from the configured
    range (a pure function of seed, stream and index; stream 0 for training photos, 1 for
    validation ones), or [None] for clean training."""
    if cfg.jpeg_quality is None:
        return [None]
    lo, hi = cfg.jpeg_quality
    rng = np.random.default_rng([cfg.seed, 7919 + stream, index])
    return [int(q) for q in rng.integers(lo, hi + 1, size=count)]


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
    """(training pairs, validation pairs): the photos of `cfg.val_dir` if given (any that
    are also among `paths` are not trained on), else a seeded pick of `cfg.val_images`.
    Training photos give a pair at each of `cfg.rescales` and JPEG quality; validation photos
    are whole, each degraded at one seeded quality of the range with `cfg.jpeg_quality`."""
    train_paths, val_paths = _split(paths, cfg)
    val = [
        make_pair(p, cfg.factor, jpeg=jpeg_qualities(cfg, i, 1, stream=1)[0])
        for i, p in enumerate(val_paths)
    ]
    val = _usable(val, max(cfg.patch, 64))
    pairs = [
        make_pair(p, cfg.factor, s, q)
        for i, p in enumerate(train_paths)
        for s in cfg.rescales
        for q in jpeg_qualities(cfg, i, cfg.jpeg_variants)
    ]
    train = _usable(pairs, cfg.patch)
    if not val or not train:
        raise ValueError("need usable photos for training and for validation")
    return train, val


def _split(paths: Sequence[Path], cfg: TrainConfig) -> tuple[list[Path], list[Path]]:
    """(training photos, validation photos)."""
    if cfg.val_dir is not None:
        held = list_images([Path(cfg.val_dir)])
        names = {p.resolve() for p in held}
        return [p for p in paths if p.resolve() not in names], held
    if len(paths) <= cfg.val_images:
        raise ValueError(f"need more than {cfg.val_images} photos, found {len(paths)}")
    order = np.random.default_rng(cfg.seed).permutation(len(paths))
    return [paths[i] for i in order[cfg.val_images :]], [paths[i] for i in order[: cfg.val_images]]


def _usable(pairs: list[Pair], side: int) -> list[Pair]:
    """Pairs whose low-resolution side is at least `side`: a patch for training, the 64x64
    centre crop for validation."""
    return [p for p in pairs if min(p.lr.shape) >= side]


def whole_image_psnr(model: Any, pairs: Sequence[Pair], factor: int) -> float:
    """Mean luma PSNR of `model` on whole validation photos, border crop = factor."""
    scores = []
    for pair in pairs:
        sr = np.asarray(model(pair.lr[None, ..., None], training=False), np.float32)[0, ..., 0]
        a, b = np.clip(sr, 0.0, 1.0), pair.hr
        diff = (a - b)[factor:-factor, factor:-factor]
        scores.append(-10.0 * np.log10(max(float(np.mean(diff * diff)), 1e-10)))
    return float(np.mean(scores))


def train(
    data_dirs: Sequence[Path], out: Path, cfg: TrainConfig, export: bool = True
) -> dict[str, Any]:
    """Train, write `out` (.keras) and, with `export`, its ONNX twin; return run facts."""
    import keras

    from .network import build_espcn

    keras.utils.set_random_seed(cfg.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    paths = list_images(data_dirs)
    train_pairs, val_pairs = load_pairs(paths, cfg)
    model = build_espcn(
        cfg.factor, "mixed_bfloat16" if cfg.bfloat16 else "float32", cfg.branch_scale
    )
    if cfg.init is not None:
        _start_from(model, Path(cfg.init), cfg.factor)
    _compile(model, cfg)
    data, epoch_setter = _patch_sequence(train_pairs, cfg)
    ckpt = out.with_name(out.name + ".ckpt")
    resumed_from = _checkpoint_epoch(ckpt)
    callbacks = [keras.callbacks.BackupAndRestore(str(ckpt)), epoch_setter]
    best = _best_keeper(val_pairs, cfg.factor, out) if cfg.keep_best else None
    if best is not None and resumed_from == 0:
        best.clean_up()  # left by an earlier run that did not finish
    started = time.monotonic()
    history = model.fit(
        data,
        epochs=cfg.steps // cfg.steps_per_epoch,
        validation_data=validation_set(val_pairs, cfg.factor),
        callbacks=callbacks + ([best] if best else []),
        verbose=1 if os.isatty(2) else 2,
    )
    seconds = time.monotonic() - started
    facts = {
        "config": asdict(cfg),
        "photos": len(paths),
        "training_pairs": len(train_pairs),  # one per training photo and rescale
        "validation_photos": len(val_pairs),
        "resumed_from_epoch": resumed_from,
        "train_seconds": round(seconds, 1),  # of this invocation only
        "keras_backend": keras.backend.backend(),
        "val_psnr": float(history.history["val_psnr"][-1]),
    }
    if best is not None:
        facts.update(best.restore_best())
    out.parent.mkdir(parents=True, exist_ok=True)
    copy = _inference_copy(model, cfg.factor)
    _replaced(out, lambda tmp: copy.save(tmp))
    if best is not None:
        best.clean_up()
    if export:
        _replaced(out.with_suffix(".onnx"), lambda tmp: export_onnx(out, tmp))
    text = json.dumps(facts, indent=2) + "\n"
    _replaced(out.with_suffix(".json"), lambda tmp: tmp.write_text(text))
    return facts


def _replaced(path: Path, write: Any) -> None:
    """`write(tmp)` to a new file of a random name beside `path`, then renamed over `path`:
    a file or a planted symbolic link at `path` is replaced, never written through."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _best_keeper(pairs: Sequence[Pair], factor: int, out: Path) -> Any:
    """A callback that scores whole validation photos after every epoch and keeps the best
    epoch's weights in OUT.best/ (which survives an interruption, as the checkpoint does)."""
    import keras

    folder = out.with_name(out.name + ".best")

    class BestKeeper(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            score, state = whole_image_psnr(self.model, pairs, factor), self._state()
            if score > state.get("best_val_whole_psnr", -np.inf):
                folder.mkdir(parents=True, exist_ok=True)
                self.model.save_weights(str(folder / "tmp.weights.h5"))
                os.replace(folder / "tmp.weights.h5", folder / "best.weights.h5")
                state = {"best_epoch": epoch + 1, "best_val_whole_psnr": round(score, 4)}
                text = json.dumps(state) + "\n"
                _replaced(folder / "best.json", lambda tmp: tmp.write_text(text))
            print(
                f"epoch {epoch + 1}: whole-image validation PSNR {score:.3f} dB "
                f"(best {state['best_val_whole_psnr']:.3f}, epoch {state['best_epoch']})",
                flush=True,
            )

        def _state(self) -> dict[str, Any]:
            try:
                return dict(json.loads((folder / "best.json").read_text()))
            except (OSError, ValueError):
                return {}

        def restore_best(self) -> dict[str, Any]:
            """Load the best epoch's weights into the model; return its facts."""
            self.model.load_weights(str(folder / "best.weights.h5"))
            return self._state()

        def clean_up(self) -> None:
            for name in ("best.weights.h5", "best.json", "tmp.weights.h5"):
                (folder / name).unlink(missing_ok=True)
            if folder.is_dir():
                folder.rmdir()

    return BestKeeper()


def _start_from(model: Any, path: Path, factor: int) -> None:
    """Give `model` the weights of the plain ESPCN at `path` (fine-tuning); in a branched
    model the plain kernels take them and the added branches stay at zero, so the network
    starts as exactly that model."""
    from .network import load_model
    from .reparam import ReparamConv2D

    source = load_model(str(path))

    def plain(layer: Any) -> list[Any]:
        return [layer.kernel, layer.bias] if isinstance(layer, ReparamConv2D) else layer.weights

    pairs = list(zip(model.layers, source.layers, strict=False))
    shapes = [[tuple(w.shape) for w in plain(mine)] for mine, _ in pairs]
    theirs = [[tuple(w.shape) for w in layer.get_weights()] for _, layer in pairs]
    if len(source.layers) != len(model.layers) or shapes != theirs:
        raise ValueError(f"--init {path} is not an ESPCN x{factor} model")
    for mine, other in pairs:
        for variable, value in zip(plain(mine), other.get_weights(), strict=True):
            variable.assign(value)


def _inference_copy(model: Any, factor: int) -> Any:
    """The plain network with the trained weights (branches merged), uncompiled: the saved
    file carries no optimizer state."""
    from .network import plain_copy

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

    from .network import load_model

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
