"""`upscaler train` and `upscaler export` (the keras extra)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .options import require_keras

__all__ = ["export", "train"]


@click.command(short_help="Train ESPCN on photos (keras extra).")
@click.argument(
    "data_dirs",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--factor", type=click.Choice(["2", "3", "4"]), required=True, help="Upscaling factor."
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model to write (.keras); its ONNX export goes beside it.",
)
@click.option(
    "--steps",
    default=60_000,
    show_default=True,
    help="Optimiser steps (a multiple of --steps-per-epoch).",
)
@click.option(
    "--steps-per-epoch",
    default=1_000,
    show_default=True,
    help="Steps between validation and checkpoint.",
)
@click.option("--batch", default=128, show_default=True, help="Patches per step.")
@click.option("--patch", default=17, show_default=True, help="Patch side in low-resolution pixels.")
@click.option(
    "--learning-rate",
    default=1e-3,
    show_default=True,
    help="Adam's initial rate (cosine decay to 0).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed for weights, validation pick and sampling."
)
@click.option(
    "--val-images", default=8, show_default=True, help="Photos held out for validation PSNR."
)
@click.option(
    "--bfloat16/--float32",
    default=False,
    show_default=True,
    help="Compute the three hidden layers in bfloat16 (1.6x faster on a Xeon with AMX; use "
    "it where the CPU or GPU has bfloat16 arithmetic). The saved model is float32 either way.",
)
@click.option(
    "--branch-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Train each convolution as a sum of linear branches (ECB: 1x1 expansion then kxk, "
    "Sobel and Laplacian edges, identity) that merge into one kernel, with this scale on the "
    "branches; the saved model is the plain network, same layers and cost. Default: plain "
    "(the shipped weights: 1.0, at x3 with --learning-rate 5e-4).",
)
@click.option(
    "--val-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Validate on the photos of this folder (never trained on) instead of a seeded pick "
    "of --val-images from DATA_DIRS.",
)
@click.option(
    "--keep-best",
    is_flag=True,
    help="Score whole validation photos after every epoch and write the best epoch's model, "
    "not the last one's.",
)
@click.option(
    "--rescale",
    "rescales",
    type=click.FloatRange(0.2, 1.0),
    multiple=True,
    help="Also train on each photo resized by this scale (antialiased bicubic) before the "
    "pairs are made; repeat for several (e.g. --rescale 0.8 --rescale 0.6). Default: as is.",
)
@click.option(
    "--jpeg-quality",
    type=str,
    default=None,
    metavar="LO-HI",
    help="Train for JPEG inputs: each low-resolution photo is also saved as JPEG at "
    "--jpeg-variants qualities drawn from LO-HI (e.g. 50-95), whole, as real files are, and "
    "the validation photos likewise. Default: clean inputs.",
)
@click.option(
    "--jpeg-variants",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="JPEG qualities per training photo with --jpeg-quality.",
)
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Start from this .keras model's weights (fine-tuning; with --branch-scale the added "
    "branches start at zero), e.g. the shipped weights/espcn_x3.keras.",
)
@click.option(
    "--export/--no-export",
    default=True,
    show_default=True,
    help="Also write OUT's ONNX export (needs the TensorFlow backend).",
)
def train(
    data_dirs: tuple[Path, ...],
    factor: str,
    out: Path,
    export: bool,
    **options: int | float | bool | None,
) -> None:
    """Train ESPCN on the photos in DATA_DIRS (needs `pip install upscaler[keras]`).

    Checkpoints go to OUT.ckpt/ after every epoch; running the same command again after an
    interruption resumes from there. Writes OUT (.keras), OUT with .onnx and a .json of facts.
    """
    require_keras()
    from .._training.train import TrainConfig
    from .._training.train import train as run_training

    rescales = options.pop("rescales") or ()
    jpeg = options.pop("jpeg_quality")
    try:
        cfg = TrainConfig(
            factor=int(factor),
            rescales=(1.0, *sorted(set(rescales) - {1.0}, reverse=True)),  # type: ignore[arg-type]
            jpeg_quality=None if jpeg is None else _quality_range(str(jpeg)),
            **options,  # type: ignore[arg-type]
        )
        facts = run_training(data_dirs, out, cfg, export=export)
    except ValueError as exc:  # bad settings or too few usable photos
        raise click.UsageError(str(exc)) from exc
    if "best_epoch" in facts:
        score = f"epoch {facts['best_epoch']}, whole-image PSNR {facts['best_val_whole_psnr']:.2f}"
    else:
        score = f"validation PSNR {facts['val_psnr']:.2f}"
    click.echo(f"wrote {out} ({score} dB, {facts['train_seconds']:.0f} s)")


def _quality_range(text: str) -> tuple[int, int]:
    """'LO-HI' (or one quality) as two ints; ValueError otherwise."""
    match = re.fullmatch(r"([0-9]{1,3})(?:-([0-9]{1,3}))?", text.strip())
    if not match:
        raise ValueError(f"--jpeg-quality must be LO-HI (e.g. 50-95), not {text!r}")
    lo = int(match.group(1))
    return lo, int(match.group(2) or lo)


@click.command(short_help="Export a trained .keras model to ONNX (keras extra).")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ONNX file to write [default: MODEL with .onnx].",
)
def export(model: Path, out: Path | None) -> None:
    """Export a trained .keras MODEL to ONNX (needs the keras extra)."""
    require_keras()
    from .._training.train import export_onnx

    target = out or model.with_suffix(".onnx")
    export_onnx(model, target)
    click.echo(f"wrote {target}")
