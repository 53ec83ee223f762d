"""The `upscaler` command line. Heavy modules are imported inside the commands."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import __version__
from .._defaults import (
    DEFAULT_ENGINE,
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUALITY,
    ENGINES,
)
from .._pixels.size import OutputSize
from .._plugins.precision import PRECISIONS

FORMAT_CHOICES = ["same", "png", "jpg", "webp", "tiff", "jxl", "gif"]


class Location(click.ParamType):  # type: ignore[type-arg]
    """A local path (as Path, checked like `base`) or a URL such as s3://bucket/prefix (str)."""

    name = "path_or_url"

    def __init__(self, base: click.Path) -> None:
        self.base = base

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> object:
        if isinstance(value, str) and "://" in value:
            return value
        return self.base.convert(value, param, ctx)  # type: ignore[arg-type]


class BoxType(click.ParamType):  # type: ignore[type-arg]
    """WxH, two positive integers (e.g. 3840x2160)."""

    name = "WxH"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"([0-9]{1,9})[xX]([0-9]{1,9})", str(value))  # ASCII digits only
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            self.fail(f"{value!r} is not WxH with two positive integers (e.g. 3840x2160)")
        return int(match[1]), int(match[2])


def _output_size(options: dict[str, Any]) -> OutputSize:
    """The one output size that --factor, --scale, --width, --height, --fit and --shrink ask
    for (a UsageError for sizes that do not go together; --weights only with --factor)."""
    ctx = click.get_current_context()
    scale, width, height = options.pop("scale"), options.pop("width"), options.pop("height")
    fit, shrink, factor = options.pop("fit"), options.pop("shrink"), options.pop("factor")
    given = {"scale": scale, "width": width, "height": height, "fit": fit}
    sizes = [f"--{k}" for k, v in given.items() if v is not None]
    if ctx.get_parameter_source("factor") == click.core.ParameterSource.COMMANDLINE:
        sizes.insert(0, "--factor")
    if len(sizes) > 1:
        raise click.UsageError(f"{' and '.join(sizes)} do not go together: give one size")
    if options["weights"] and sizes and sizes != ["--factor"]:
        raise click.UsageError(f"{sizes[0]} needs the shipped models; --weights is for --factor")
    if shrink and not (width or height or fit):
        raise click.UsageError("--shrink is for --width, --height or --fit")
    if scale is None and not (width or height or fit):
        return OutputSize(factor=int(factor))
    return OutputSize(None, scale, width, height, fit, bool(shrink))


def _default_backend(device: str) -> str:
    """The backend that runs when --backend is not given (the plugins rank themselves)."""
    from .._errors import BackendError
    from .._plugins.registry import default_backend

    try:
        return default_backend(device)
    except BackendError as exc:
        raise click.UsageError(str(exc)) from exc


def engine_options(command: Any) -> Any:
    """--engine, --scheduler and --workers, shared by `batch` and `compare`."""
    for option in reversed(_ENGINE_OPTIONS):
        command = option(command)
    return command


factor_option = click.option(
    "--factor",
    type=click.Choice(["2", "3", "4"]),
    default="3",
    show_default=True,
    help="Upscaling factor.",
)


_ENGINE_OPTIONS = [
    click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="Where images are processed: here, or on a Dask cluster "
        "(`pip install upscaler[dask]`).",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="With --engine dask: join the cluster of this scheduler, e.g. tls://HOST:8786 "
        "with --tls-ca/--tls-cert/--tls-key [default: start a local cluster].",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="With --engine dask and no --scheduler: local worker processes [default: cores].",
    ),
    click.option(
        "--tls-ca",
        metavar="FILE",
        help="With a tls:// --scheduler: the cluster's CA certificate (PEM) "
        "[default: Dask's distributed.comm.tls.ca-file].",
    ),
    click.option(
        "--tls-cert",
        metavar="FILE",
        help="With a tls:// --scheduler: this client's certificate, signed by that CA "
        "[default: Dask's distributed.comm.tls.client.cert].",
    ),
    click.option(
        "--tls-key",
        metavar="FILE",
        help="With a tls:// --scheduler: the private key of --tls-cert "
        "[default: Dask's distributed.comm.tls.client.key].",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Join a plain tcp:// scheduler on another host without the warning that anyone "
        "who can reach it can run code on its workers.",
    ),
]


def _tls(options: dict[str, Any]) -> Any:
    """Take --tls-ca/--tls-cert/--tls-key out of `options`, as a `Tls`."""
    from .._run.engines.security import Tls

    return Tls(options.pop("tls_ca"), options.pop("tls_cert"), options.pop("tls_key"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="upscaler")
def cli() -> None:
    """Make photos larger with ESPCN, a sub-pixel convolutional network."""


@cli.command(short_help="Upscale the images of folders, files or URLs.")
@click.argument("inputs", nargs=-1, required=True, type=Location(click.Path(path_type=Path)))
@click.option(
    "-o",
    "--output",
    "out",
    type=Location(click.Path(file_okay=False, path_type=Path)),
    help="Output folder or URL [default: <input>-x<factor> (or -x<scale>, -w<width>, "
    "-h<height>, -fit<W>x<H>) beside each input folder].",
)
@factor_option
@click.option(
    "--scale",
    type=click.FloatRange(1, 8),
    help="Any scale from 1 to 8 (e.g. 1.5, 2.5, 6) instead of --factor: the network at the "
    "factor that serves it, then an antialiased resize to the exact size.",
)
@click.option(
    "--width", type=click.IntRange(min=1), help="Output width (as shown); height in proportion."
)
@click.option("--height", type=click.IntRange(min=1), help="Output height; width in proportion.")
@click.option(
    "--fit",
    metavar="WxH",
    type=BoxType(),
    help="The largest size that fits in W x H, aspect ratio kept (e.g. 3840x2160).",
)
@click.option(
    "--shrink",
    is_flag=True,
    help="With --width, --height or --fit: shrink images already larger than the target "
    "[default: leave them at their size].",
)
@click.option(
    "--backend",
    help="Backend name (see `upscaler backends`) [default: openvino where the CPU computes "
    "bfloat16 natively (AVX512-BF16, AMX), else onnx; onnx with --device cuda].",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Arithmetic of the network: auto is bf16 where the CPU has it natively (openvino "
    "backend), else fp32.",
)
@click.option(
    "--input-kind",
    type=click.Choice(["auto", "clean", "jpeg"]),
    default="auto",
    show_default=True,
    help="Which shipped weights: auto picks per image, the JPEG weights for a JPEG whose "
    "quantisation tables say quality 91 or less (shipped for x2, x3 and x4), "
    "else the clean ones; clean or jpeg forces one. --weights is never switched.",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model file instead of the shipped one: .onnx (onnx, openvino) or .keras (keras).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where a network backend runs (cuda: onnx with onnxruntime-gpu).",
)
@click.option(
    "--tile", type=click.IntRange(min=8), help="Tile side in input pixels [default: the backend's]."
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    help="Context around each tile, in input pixels [default: the backend's halo; at least 2].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="same",
    show_default=True,
    help="Output format; `same` keeps each input's.",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=DEFAULT_QUALITY,
    show_default=True,
    help="JPEG/WebP/JPEG XL quality (JPEG XL: 100 is lossless).",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of originals (matched by relative path) to score PSNR/SSIM against.",
)
@click.option("--rgb-psnr", is_flag=True, help="With --reference, also PSNR over the RGB channels.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a per-image report: .json, .csv or .html.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (even with 1, one image per core is processed on threads).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Threads per backend [default: cores / images in flight; on Dask, the worker's threads].",
)
@engine_options
@click.option(
    "--skip-existing/--overwrite",
    default=True,
    show_default=True,
    help="Skip images whose output exists and is newer than the input.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse images whose output would have more pixels (checked before decoding).",
)
@click.option(
    "--max-decode-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_DECODE_PIXELS,
    show_default=True,
    help="Refuse inputs (and frames, pages) larger than this that must be decoded whole: "
    "progressive JPEG, interlaced PNG, GIF, WebP, HEIF, AVIF, JPEG XL, BMP, animations, "
    "multi-page TIFF (checked before decoding); and outputs held whole: every format but PNG "
    "and JPEG, output frames and pages, --reference. Baseline JPEG, PNG and TIFF are decoded "
    "in strips, PNG and JPEG written in strips: no limit but --max-pixels.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FRAMES,
    show_default=True,
    help="Refuse animations and multi-page files with more frames (all of an animation's "
    "output frames are held in memory while it is written).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="Seconds to wait for another run writing to the same output folder; then exit 3.",
)
@click.option("--dry-run", is_flag=True, help="List what would be done, write nothing.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Print only failures: no progress bar, no summary line."
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="A line per image, skipped ones too [default: a bar on a terminal, else nothing but "
    "failures and the summary line].",
)
def batch(**kwargs: object) -> None:
    """Upscale every image in INPUTS (files or folders, walked recursively).

    Outputs mirror each input's relative path under the output folder. Hidden files and
    folders are skipped; files that are not images are counted and skipped. INPUTS and the
    output may also be URLs of shared storage (s3://bucket/prefix, with the s3 extra).
    Exit status: 0 all done, 1 some images failed (the others were still written),
    2 usage error, 3 another run holds the output folder, 4 the disk is full (the run
    stopped; free space and rerun to resume), 130/143 stopped by SIGINT/SIGTERM.
    """
    if kwargs["engine"] == "dask":
        _require_extra("dask", ("dask", "distributed"))
    from .._run.batch import BatchRequest, run_batch
    from .progress import TerminalProgress

    size = _output_size(kwargs)
    verbose = bool(kwargs.pop("verbose"))
    if kwargs["quiet"] and verbose:
        raise click.UsageError("--quiet and --verbose do not go together")
    kwargs["tls"] = _tls(kwargs)
    kwargs["backend"] = kwargs["backend"] or _default_backend(str(kwargs["device"]))
    progress = TerminalProgress(quiet=bool(kwargs["quiet"]), verbose=verbose)
    sys.exit(run_batch(BatchRequest(size=size, **kwargs), progress))  # type: ignore[arg-type]


@cli.command(short_help="Score backends against ground-truth images.")
@click.argument("hr_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@factor_option
@click.option(
    "--backend",
    "backend_names",
    multiple=True,
    required=True,
    help="Backend to compare; repeat for each (e.g. --backend bicubic --backend onnx).",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder.",
)
@click.option(
    "--lr-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Low-resolution inputs, same names as in HR_DIR [default: HR shrunk with bicubic].",
)
@click.option("--threads", type=click.IntRange(min=1), help="Threads per backend.")
@click.option("--rgb-psnr", is_flag=True, help="Also report PSNR over the RGB channels.")
@engine_options
def compare(
    hr_dir: Path,
    factor: str,
    backend_names: tuple[str, ...],
    out: Path,
    lr_dir: Path | None,
    threads: int | None,
    rgb_psnr: bool,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    insecure: bool,
    **tls_files: str | None,
) -> None:
    """Compare backends on the high-resolution images in HR_DIR, with PSNR/SSIM against them.

    Writes OUT/report.json, OUT/report.csv and OUT/index.html (open it in a browser; it needs
    no network). Scores use the Y channel of BT.601 with `factor` border pixels cropped; the
    seconds are each backend's wall time over all images (decoding and scoring included).
    """
    if engine == "dask":
        _require_extra("dask", ("dask", "distributed"))
    from .._errors import UpscalerError
    from .._plugins.interface import BackendOptions
    from .._run.compare import Where
    from .._run.compare import compare as run_compare
    from .._run.engines import EngineError, engine_problem, plain_tcp_warning

    tls = _tls(tls_files)
    problem = engine_problem(engine, scheduler, workers, 1, tls, insecure)
    if problem:
        raise click.UsageError(problem)
    warning = plain_tcp_warning(scheduler, insecure)
    if warning:
        click.echo(f"upscaler: warning: {warning}", err=True)
    try:
        result = run_compare(
            hr_dir,
            int(factor),
            list(dict.fromkeys(backend_names)),
            out,
            lr_dir,
            BackendOptions(threads=threads) if threads else None,
            rgb_psnr,
            Where(engine, scheduler, workers, tls),
        )
    except EngineError as exc:  # the cluster cannot be joined: as a usage error, exit 2
        click.echo(f"upscaler: error: {exc}", err=True)
        sys.exit(2)
    except UpscalerError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, s in result.summary().items():
        click.echo(
            f"{name:<12} PSNR {s['psnr']:.2f} dB  SSIM {s['ssim']:.4f}  {s['seconds']:.2f} s"
        )
    click.echo(f"wrote {out / 'index.html'}")


@cli.command(short_help="List the backends and whether they run here.")
def backends() -> None:
    """List the registered backends: factors, precision here, whether they can run here."""
    from .._plugins.precision import bf16_features
    from .._plugins.registry import describe_backends

    default = _default_backend("cpu")
    for info in describe_backends():
        factors = ",".join(f"x{f}" for f in info.factors) or "-"
        state = "available" if info.problem is None else f"unavailable: {info.problem}"
        mark = "  (default)" if info.name == default else ""
        click.echo(
            f"{info.name:<12} {factors:<10} {info.precision or '-':<5} {state}  "
            f"[{info.distribution}]{mark}"
        )
    native = ", ".join(bf16_features()) or "none"
    click.echo(f"native bfloat16 on this CPU: {native}; --precision auto follows it")
    from .._plugins.weights import shipped_models

    by_model: dict[str, list[str]] = {}
    for factor in (2, 3, 4):
        for model in shipped_models(factor):
            by_model.setdefault(model, []).append(f"x{factor}")
    sets = "; ".join(f"{model} {','.join(f)}" for model, f in by_model.items())
    click.echo(f"shipped weights (onnx, openvino, keras): {sets}; --input-kind picks them")


@cli.command(short_help="Train ESPCN on photos (keras extra).")
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
    _require_keras()
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


@cli.command(short_help="Export a trained .keras model to ONNX (keras extra).")
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
    _require_keras()
    from .._training.train import export_onnx

    target = out or model.with_suffix(".onnx")
    export_onnx(model, target)
    click.echo(f"wrote {target}")


def _require_keras() -> None:
    _require_extra("keras", ("keras", "tensorflow"))


def _require_extra(extra: str, modules: tuple[str, ...]) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.UsageError(
            f"needs `pip install upscaler[{extra}]` ({', '.join(missing)} not installed)"
        )


def main() -> None:
    """Entry point of the `upscaler` script. A usage error is one line on stderr, as every
    other error (cron mails it), naming the command's --help; exit status 2."""
    try:
        try:
            cli.main(standalone_mode=False)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "upscaler"
            click.echo(f"upscaler: error: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(0)
    except SystemExit as exc:
        if sys.getprofile() is None and sys.gettrace() is None:  # profilers report after us
            _exit_now(exc.code)
        raise


def _exit_now(code: str | int | None) -> NoReturn:
    """Exit without tearing the interpreter down: with numpy, OpenCV and ONNX Runtime loaded
    that took 60-80 ms, 7% of a run over 100 small photos. atexit handlers still run and the
    output streams are flushed; every file a command writes is closed before it returns."""
    if isinstance(code, str):
        click.echo(code, err=True)
    atexit._run_exitfuncs()  # CPython's own hook; what a normal exit runs first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
