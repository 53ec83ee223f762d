"""`upscaler compare`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import engine_options, factor_option, require_extra, take_tls

__all__ = ["compare"]


@click.command(short_help="Score backends against ground-truth images.")
@click.argument("hr_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@factor_option
@click.option(
    "--backend",
    "backend_names",
    multiple=True,
    required=True,
    help="Backend to compare; repeat for each (e.g. --backend bicubic --backend onnx). "
    "NAME:WEIGHTS runs one of its sets of weights (onnx:clean, onnx:jpeg: see `upscaler "
    "backends`); NAME alone picks them per image as `upscaler batch` does.",
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
    help="Low-resolution inputs, same names as in HR_DIR (any image suffix) [default: HR "
    "shrunk with bicubic].",
)
@click.option(
    "--jpeg-quality",
    type=click.IntRange(1, 100),
    help="Save the low-resolution inputs as JPEG of this quality (Pillow, 4:2:0), as stored "
    "photos are; --lr-dir files that are JPEGs already are used as they are.",
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
    jpeg_quality: int | None,
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
        require_extra("dask", ("dask", "distributed"))
    from .._errors import UpscalerError
    from .._plugins.interface import BackendOptions
    from .._run.compare import Where
    from .._run.compare import compare as run_compare
    from .._run.engines import EngineError, engine_problem, plain_tcp_warning

    tls = take_tls(tls_files)
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
            jpeg_quality,
        )
    except EngineError as exc:  # the cluster cannot be joined: as a usage error, exit 2
        click.echo(f"upscaler: error: {exc}", err=True)
        sys.exit(2)
    except UpscalerError as exc:
        raise click.ClickException(str(exc)) from exc
    width = max(12, *(len(name) + 1 for name in result.backends))
    for name, s in result.summary().items():
        click.echo(
            f"{name:<{width}} PSNR {s['psnr']:.2f} dB  SSIM {s['ssim']:.4f}  {s['seconds']:.2f} s"
        )
    click.echo(f"wrote {out / 'index.html'}")
