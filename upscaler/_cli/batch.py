"""`upscaler batch`: the options, decided once into a `BatchRequest`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._defaults import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUALITY,
)
from .._images.jpeg import CLEAN_FROM, HIGH_FROM
from .._pixels.size import OutputSize
from .._plugins.precision import PRECISIONS
from .options import (
    BoxType,
    Location,
    default_backend,
    engine_options,
    factor_option,
    require_extra,
    take_tls,
)

if TYPE_CHECKING:
    from .._run.batch import BatchRequest

__all__ = ["batch"]

FORMAT_CHOICES = ["same", "png", "jpg", "webp", "tiff", "jxl", "gif"]


def _output_size(options: dict[str, Any]) -> OutputSize:
    """The one output size that --factor, --scale, --width, --height, --fit and --shrink ask
    for (a UsageError for sizes that do not go together; --weights only with --factor)."""
    ctx = click.get_current_context()
    scale, width, height = options["scale"], options["width"], options["height"]
    fit, shrink, factor = options["fit"], options["shrink"], options["factor"]
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


@click.command(short_help="Upscale the images of folders, files or URLs.")
@click.argument("inputs", nargs=-1, type=Location(click.Path(path_type=Path)))
@click.option(
    "-o",
    "--output",
    "out",
    type=Location(click.Path(file_okay=False, path_type=Path)),
    help="Output folder or URL [default: <input>-x<factor> (or -x<scale>, -w<width>, "
    "-h<height>, -fit<W>x<H>) beside each input folder].",
)
@click.option(
    "--files-from",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="More inputs, one path per line, read while the run goes, after INPUTS (`-`: "
    "standard input; a FIFO works too); the run ends at the end of the file. A path inside a "
    "folder of INPUTS goes where that folder's walk puts it. One run serves a stream of "
    "uploads, started once: e.g. `inotifywait -m -r -e close_write --format %w%f DIR | "
    "upscaler batch DIR --files-from - -o OUT`. Needs -o, a local folder.",
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
    type=click.Choice(["auto", "clean", "jpeg", "jpeg-high"]),
    default="auto",
    show_default=True,
    help="Which shipped weights: auto picks per image from a JPEG's quantisation tables, "
    f"the jpeg weights up to quality {HIGH_FROM - 1}, jpeg-high from {HIGH_FROM} to "
    f"{CLEAN_FROM - 1}, the clean ones for everything else (`upscaler backends` lists the "
    "factors of each); clean, jpeg or jpeg-high forces one. --weights is never switched.",
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
    help="Threads per backend [default: cores / images in flight, every core for an image "
    "too large to share the memory budget; on Dask, the worker's threads].",
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
def batch(**options: Any) -> None:
    """Upscale every image in INPUTS (files or folders, walked recursively), and in the
    paths read from --files-from.

    Outputs mirror each input's relative path under the output folder. Hidden files and
    folders are skipped; files that are not images are counted and skipped. INPUTS and the
    output may also be URLs of shared storage (s3://bucket/prefix, with the s3 extra).
    Exit status: 0 all done, 1 some images failed (the others were still written),
    2 usage error, 3 another run holds the output folder, 4 the disk is full (the run
    stopped; free space and rerun to resume), 130/143 stopped by SIGINT/SIGTERM.
    """
    if options["engine"] == "dask":
        require_extra("dask", ("dask", "distributed"))
    from .._run.batch import run_batch
    from .progress import TerminalProgress

    if options["quiet"] and options["verbose"]:
        raise click.UsageError("--quiet and --verbose do not go together")
    if not options["inputs"] and options["files_from"] is None:
        raise click.UsageError("Missing argument 'INPUTS...' (or --files-from).")
    progress = TerminalProgress(quiet=options["quiet"], verbose=options["verbose"])
    sys.exit(run_batch(_request(options), progress))


def _request(o: dict[str, Any]) -> BatchRequest:
    """The run spec of the parsed options: every size option as one `OutputSize`, the
    default backend chosen (a UsageError where they do not go together)."""
    from .._run.batch import BatchRequest

    return BatchRequest(
        inputs=tuple(o["inputs"]),
        out=o["out"],
        size=_output_size(o),
        backend=o["backend"] or default_backend(o["device"]),
        weights=o["weights"],
        device=o["device"],
        tile=o["tile"],
        overlap=o["overlap"],
        fmt=o["fmt"],
        quality=o["quality"],
        report=o["report"],
        reference=o["reference"],
        rgb_psnr=o["rgb_psnr"],
        jobs=o["jobs"],
        threads=o["threads"],
        skip_existing=o["skip_existing"],
        max_pixels=o["max_pixels"],
        lock_timeout=o["lock_timeout"],
        dry_run=o["dry_run"],
        quiet=o["quiet"],
        engine=o["engine"],
        scheduler=o["scheduler"],
        workers=o["workers"],
        tls=take_tls(o),
        insecure=o["insecure"],
        precision=o["precision"],
        max_frames=o["max_frames"],
        max_decode_pixels=o["max_decode_pixels"],
        input_kind=o["input_kind"],
        files_from=o["files_from"],
    )
