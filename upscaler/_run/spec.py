"""The values that every layer of a run reads: the jobs, what each is processed with, what
each gives back. Light on purpose (no imaging library, no engine), so that engines, reports
and progress depend on these types and not on how an image is processed (`job`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._defaults import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUALITY,
)
from .._images.redact import redact
from .._pixels.size import OutputSize
from .._plugins.interface import BackendOptions

__all__ = ["Job", "Location", "Record", "Settings", "Status", "TileCallback"]

#: A local path, or the URL (str) of a file or folder on shared storage.
Location = Path | str


@dataclass(frozen=True)
class Job:
    """One image to upscale: where it is read from and written to (paths or URLs)."""

    src: Location
    dst: Location
    #: Path relative to the input folder it was found in (its name, for a file input).
    rel: Path
    #: Modification times from the listings of a run that names URLs (None: unknown, or no
    #: output yet); local runs look at the files themselves.
    src_mtime: float | None = None
    dst_mtime: float | None = None

    @property
    def remote(self) -> bool:
        """True when the input or the output is a URL (the job is staged through files)."""
        return isinstance(self.src, str) or isinstance(self.dst, str)


#: `on_tiles(done, total)`: the backend calls of one image, as they are made.
TileCallback = Callable[[int, int], None]

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Settings:
    """How every image of a run is processed: what the run spec (`batch.BatchRequest`,
    resolved once) hands each job. `options.precision` is what the backend runs ("fp32",
    "bf16"), decided before the run."""

    backend: str
    #: How large each output is made (--factor, --scale, --width, --height, --fit).
    size: OutputSize
    tile: int | None = None
    overlap: int | None = None
    quality: int = DEFAULT_QUALITY
    skip_existing: bool = True
    options: BackendOptions = field(default_factory=BackendOptions)
    #: Backend threads for an image too large to share the memory budget (it runs alone, and
    #: `options.threads` would leave cores idle); None: `options.threads` for every image
    #: (given by the user, or a run of one image at a time).
    alone_threads: int | None = None
    #: Folder of originals, matched by relative path, to score outputs against.
    reference: Path | None = None
    #: Also PSNR over the RGB channels against the reference.
    rgb_psnr: bool = False
    #: Where thumbnails of every output and input go (for the HTML report), or None.
    thumbnails: Path | None = None
    #: Largest output, in pixels; inputs whose output would be larger are refused unread.
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: Animations and multi-page files with more frames are refused (--max-frames).
    max_frames: int = DEFAULT_MAX_FRAMES
    #: Largest picture decoded whole (not in strips), in pixels (--max-decode-pixels).
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS
    #: --input-kind: "auto" (each JPEG's quality picks the weights), "clean", "jpeg" or
    #: "jpeg-high".
    input_kind: str = "auto"


@dataclass(frozen=True)
class Record:
    """The outcome for one image (one row of the report)."""

    src: str
    dst: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    backend: str | None = None
    factor: int | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    #: Output width over input width (the --factor, or what --scale/--width/... gave).
    scale: float | None = None
    #: Frames (or pages) of an animation or multi-page file; None for a still image.
    frames: int | None = None
    #: The weights the network ran: "clean", "jpeg", "jpeg-high" (for JPEG inputs) or "own"
    #: (--weights); None without a choice (bicubic, plugins without weights of their own, no
    #: network).
    model: str | None = None
    #: A JPEG input's quality estimated from its quantisation tables; None for other formats.
    jpeg_quality: int | None = None
    #: Y-PSNR of the output shrunk back to the input's size, against the input (dB).
    consistency_psnr: float | None = None
    #: The consistency PSNR is under the run's floor (`report.flag_suspects`): look at it.
    suspect: bool = False
    #: Against --reference, with the shared protocol (Y, border crop = factor).
    reference: str | None = None
    psnr: float | None = None
    ssim: float | None = None
    psnr_rgb: float | None = None
    #: The folder that could not be written because its disk is full (ENOSPC, EDQUOT): every
    #: remaining image would fail too, so the run stops. Not a report column (`error` says it).
    disk_full: str | None = field(default=None, metadata={"report": False})

    def __post_init__(self) -> None:  # what a record shows is printed and reported
        object.__setattr__(self, "seconds", round(self.seconds, 3))
        object.__setattr__(self, "src", redact(self.src))
        object.__setattr__(self, "dst", redact(self.dst))
        if self.error is not None:
            object.__setattr__(self, "error", redact(self.error))

    @classmethod
    def of(cls, job: Job, settings: Settings, status: Status, error: str | None = None) -> Record:
        """The record of `job` with `status`: locations as given, the run's backend and factor
        (None when the run asks for sizes: --scale, --width, --height, --fit)."""
        b, f = settings.backend, settings.size.factor
        return cls(str(job.src), str(job.dst), status, error, backend=b, factor=f)
