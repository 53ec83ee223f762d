"""Images streamed in row bands from decoder to encoder: the same pixels and files as the
whole image, and inputs that would take more memory than the bound refused or processed
within it (issue 26). Real files, the installed command, real libvips, Pillow, ONNX Runtime."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import upscaler
from conftest import SAMPLES, photo, run_cli
from upscaler._pixels.resize import resize_pixels

#: Streams every image, however small (decoded by libvips).
STREAM_ALL = {**os.environ, "UPSCALER_STREAM_ABOVE_PIXELS": "0"}
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _sample(width: int, height: int) -> Image.Image:
    with Image.open(SAMPLES / "astronaut.png") as im:
        return im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    """The tiling tests' standard: equal but for rounding, at most 1 grey level in at most
    0.01% of the values."""
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-4, (diff.max(), (diff > 0).mean())


def _whole(pixels: np.ndarray, size: tuple[int, int], backend: str) -> np.ndarray:
    """The whole-image result: the network at each factor, then the bicubic resize."""
    from upscaler._pixels.size import network_passes

    for factor in network_passes((pixels.shape[1], pixels.shape[0]), size):
        pixels = upscaler.upscale_array(pixels, factor, backend)
    if (pixels.shape[1], pixels.shape[0]) != size:
        pixels = resize_pixels(pixels, size)
    return pixels


@pytest.mark.parametrize(
    ("backend", "size_args", "size"),
    [
        ("bicubic", ["--factor", "3"], (4200, 3000)),  # 3 bands of the network
        ("bicubic", ["--scale", "2.5"], (3500, 2500)),  # network bands, then resize bands
        ("bicubic", ["--width", "1900"], (1900, 1357)),  # x2, then down to the width
        ("bicubic", ["--scale", "6"], (8400, 6000)),  # two passes, x2 then x3
        ("onnx", ["--factor", "2"], (2800, 2000)),
        ("onnx", ["--scale", "1.5"], (2100, 1500)),
    ],
)
@pytest.mark.slow
def test_streamed_output_equals_the_whole_image(
    tmp_path: Path, backend: str, size_args: list[str], size: tuple[int, int]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    image = _sample(1400, 1000)
    image.save(src / "p.png")
    ran = run_cli(
        "batch", src, "-o", tmp_path / "out", *size_args, "--backend", backend, "-q", env=STREAM_ALL
    )
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "out" / "p.png") as out:
        streamed = np.asarray(out)
    _close(streamed, _whole(np.asarray(image), size, backend))


@pytest.mark.parametrize(
    "suffix",
    [
        "jpg",
        pytest.param("png", marks=pytest.mark.slow),
        pytest.param("tif", marks=pytest.mark.slow),
    ],
)
def test_streamed_and_whole_runs_write_the_same_files(tmp_path: Path, suffix: str) -> None:
    """A JPEG, PNG or TIFF with EXIF, ICC, XMP and DPI, decoded in strips by libvips and its
    output encoded in strips (JPEG and PNG by our band writers), against
    the same run decoded and encoded whole by Pillow: identical JPEG and TIFF files, PNG
    files with identical pixels and metadata."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = 6
    src = tmp_path / "in"
    src.mkdir()
    options: dict[str, object] = {"icc_profile": icc, "exif": exif.tobytes(), "dpi": (240, 240)}
    if suffix == "jpg":
        options["xmp"] = XMP
    if suffix == "png":  # Pillow writes a PNG's XMP as the iTXt chunk that holds it
        from PIL import PngImagePlugin

        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", XMP.decode())
    _sample(300, 200).save(src / f"cam.{suffix}", quality=90, **options)
    outputs = {}
    for name, env in (("whole", None), ("streamed", STREAM_ALL)):
        ran = run_cli("batch", src, "-o", tmp_path / name, "--backend", "bicubic", "-q", env=env)
        assert ran.returncode == 0, ran.stderr
        outputs[name] = (tmp_path / name / f"cam.{suffix}").read_bytes()
    if suffix in ("jpg", "tif"):
        assert outputs["whole"] == outputs["streamed"]
        return
    images = [Image.open(io.BytesIO(data)) for data in outputs.values()]
    assert np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    for key in ("icc_profile", "exif", "dpi", "XML:com.adobe.xmp"):
        assert images[0].info.get(key) == images[1].info.get(key) is not None, key


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.slow
def test_streamed_jpeg_decodes_to_pillows_encoding_of_the_same_pixels(
    tmp_path: Path, mode: str
) -> None:
    """A large output (many strips, each a restart interval) written as PNG and as JPEG: the
    JPEG decodes to exactly the pixels of Pillow's encoding of the PNG's pixels at the same
    quality, and its header is Pillow's (metadata, tables, frame) up to the restart interval."""
    src = tmp_path / "in"
    src.mkdir()
    _sample(1400, 1000).convert(mode).save(src / "p.png", dpi=(240, 240))
    for fmt in ("png", "jpg"):
        ran = run_cli(
            "batch",
            src,
            "-o",
            tmp_path / fmt,
            "--factor",
            "3",
            "--backend",
            "bicubic",
            "--format",
            fmt,
            "--quality",
            "88",
            "-q",
        )
        assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "png" / "p.png") as im:
        expected = io.BytesIO()
        kept = {k: im.info[k] for k in ("icc_profile", "exif", "dpi") if k in im.info}
        im.save(expected, "JPEG", quality=88, **kept)
    ours = (tmp_path / "jpg" / "p.jpg").read_bytes()
    theirs = expected.getvalue()
    scan = ours.index(b"\xff\xda")
    restarts = [ours.count(bytes((0xFF, 0xD0 + n)), scan) for n in range(8)]
    assert ours.count(b"\xff\xdd", 0, scan) == 1 and restarts[0] >= 1  # DRI, and strips
    assert mode == "L" or min(restarts) >= 1  # RGB's 19 strips: RST0 to RST7, then again
    assert ours.startswith(theirs[: theirs.index(b"\xff\xda")])  # all but DRI and the scan
    with Image.open(io.BytesIO(ours)) as a, Image.open(expected) as b:
        assert a.mode == mode and a.info["dpi"] == b.info["dpi"] == (720, 720)  # 240 x 3
        assert np.array_equal(np.asarray(a), np.asarray(b))


def _peak_run(*args: object) -> tuple[subprocess.CompletedProcess[str], float]:
    """`upscaler` run by this interpreter with its peak resident memory (MB) printed at exit
    (the command exits through atexit handlers): VmHWM, this process's own high-water mark
    (getrusage's maxrss starts from the parent's after fork and exec)."""
    code = (
        "import atexit, re, sys\n"
        "hwm = lambda: re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]\n"
        "atexit.register(lambda: print('PEAK-KB', hwm(), file=sys.stderr))\n"
        "from upscaler._cli import main\n"
        f"sys.argv = ['upscaler', *{[str(a) for a in args]!r}]\n"
        "main()\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    peak = [line for line in ran.stderr.splitlines() if line.startswith("PEAK-KB")]
    assert peak, ran.stderr
    return ran, int(peak[-1].split()[1]) / 1024


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb(path: Path, side: int) -> None:
    """A grey side x side PNG of a few hundred kilobytes."""
    deflate, row = zlib.compressobj(9), b"\x00" + b"\x80" * (side * 3)
    data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def _gif_bomb(path: Path, side: int) -> None:
    """A 35-byte GIF: a side x side screen, one 1x1 image."""
    path.write_bytes(
        b"GIF89a"
        + struct.pack("<HH", side, side)
        + b"\x80\x00\x00"
        + b"\x00" * 3
        + b"\xff" * 3
        + b"\x2c"
        + struct.pack("<HHHH", 0, 0, 1, 1)
        + b"\x00\x02\x02\x44\x01\x00\x3b"
    )


def _tiff_bomb(path: Path, side: int) -> None:
    """A small first page, then a side x side page (deflated: a few hundred kilobytes)."""
    Image.new("L", (10, 10)).save(
        path,
        save_all=True,
        append_images=[Image.new("L", (side, side))],
        compression="tiff_adobe_deflate",
    )


@pytest.mark.parametrize(
    ("make", "args", "refused"),
    [
        # decoded in strips: processed
        pytest.param(_png_bomb, ["--fit", "64x64", "--shrink"], None, marks=pytest.mark.slow),
        (_gif_bomb, ["--fit", "64x64", "--shrink"], "--max-decode-pixels"),
        pytest.param(_tiff_bomb, ["--factor", "3"], "--max-decode-pixels", marks=pytest.mark.slow),
    ],
)
def test_decompression_bombs_stay_within_the_memory_bound(
    tmp_path: Path, make: object, args: list[str], refused: str | None
) -> None:
    """The three bombs of issue 26 (which took 11-13 GB, 13 GB and a crash, and 1.7 GB):
    processed or refused in one line naming the file, under 300 MB."""
    src = tmp_path / "in"
    src.mkdir()
    name = {_png_bomb: "big.png", _gif_bomb: "screen.gif", _tiff_bomb: "pages.tif"}[make]  # type: ignore[index]
    make(src / name, 20000 if make is _tiff_bomb else 15000)  # type: ignore[operator]
    ran, peak = _peak_run(
        "batch", src, "-o", tmp_path / "out", *args, "--report", tmp_path / "r.json"
    )
    assert peak < 300, (peak, ran.stderr)
    (record,) = json.loads((tmp_path / "r.json").read_text())["images"]
    if refused is None:
        assert ran.returncode == 0 and record["status"] == "done", ran.stderr
        with Image.open(tmp_path / "out" / name) as out:
            assert out.size == (64, 64) and np.asarray(out).max() == np.asarray(out).min() == 128
        return
    assert ran.returncode == 1 and record["status"] == "failed"
    lines = [line for line in ran.stderr.splitlines() if name in line]
    assert len(lines) == 1 and refused in lines[0] and "Traceback" not in ran.stderr, ran.stderr


def test_inputs_decoded_whole_obey_max_decode_pixels(tmp_path: Path) -> None:
    """A progressive JPEG cannot be decoded in strips: over --max-decode-pixels it is refused
    from its header, in one line that says why; a baseline one of the same size streams."""
    src = tmp_path / "in"
    src.mkdir()
    image = _sample(600, 400)
    image.save(src / "progressive.jpg", progressive=True)
    image.save(src / "baseline.jpg")
    ran = run_cli(
        "batch",
        src,
        "-o",
        tmp_path / "out",
        "--backend",
        "bicubic",
        "--max-decode-pixels",
        "200000",
        env=STREAM_ALL,
    )
    assert ran.returncode == 1
    (line,) = [line for line in ran.stderr.splitlines() if "progressive.jpg" in line]
    assert "a progressive JPEG is decoded whole" in line and "--max-decode-pixels 200,000" in line
    assert (tmp_path / "out" / "baseline.jpg").is_file()


def _identical_frames_gif(path: Path, frame: Image.Image, durations: list[int]) -> None:
    """A GIF of identical frames, each written (Pillow's own writer would merge them), with
    Pillow's frame encoder."""
    from PIL import GifImagePlugin

    indexed = frame.quantize(64)
    with open(path, "wb") as fh:
        header, _ = GifImagePlugin.getheader(indexed, None, {"loop": 2})
        fh.write(b"".join(header))
        for duration in durations:
            fh.write(b"".join(GifImagePlugin.getdata(indexed, (0, 0), duration=duration)))
        fh.write(b";")


@pytest.mark.slow
def test_animations_are_written_a_frame_at_a_time_with_their_timing(tmp_path: Path) -> None:
    """APNG (our writer) and GIF (Pillow's frame encoder), of identical frames too (Pillow's
    own writer merges those: issue 28's traceback), and TIFF pages of different sizes (each
    keeps its own; a GIF of them is refused in one line)."""
    src = tmp_path / "in"
    src.mkdir()
    frames = [photo(40, 30, seed=i) for i in range(4)]
    durations = [70, 80, 90, 100]
    frames[0].save(
        src / "moving.png", save_all=True, append_images=frames[1:], duration=durations, loop=2
    )
    _identical_frames_gif(src / "same.gif", frames[0], durations)
    photo(40, 30).save(src / "pages.tif", save_all=True, append_images=[photo(20, 50)])
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--backend", "bicubic", "--factor", "2")
    assert ran.returncode == 0, ran.stderr
    for name in ("moving.png", "same.gif"):
        with Image.open(tmp_path / "out" / name) as im:
            assert im.n_frames == 4 and im.info.get("loop") == 2, name
            shown = []
            for i in range(4):
                im.seek(i)
                shown.append(im.info["duration"])
                assert im.size == (80, 60)
            assert shown == durations, name
    with Image.open(tmp_path / "out" / "pages.tif") as im:
        sizes = []
        for i in range(im.n_frames):
            im.seek(i)
            sizes.append(im.size)
    assert sizes == [(80, 60), (40, 100)]
    ran = run_cli(
        "batch",
        src / "pages.tif",
        "-o",
        tmp_path / "gif",
        "--backend",
        "bicubic",
        "--format",
        "gif",
    )
    assert ran.returncode == 1
    (line,) = [line for line in ran.stderr.splitlines() if "pages.tif" in line]
    assert "different sizes" in line and "--format tiff" in line


@pytest.mark.slow
def test_outputs_held_whole_are_bounded_like_inputs_decoded_whole(tmp_path: Path) -> None:
    """--max-decode-pixels bounds what is held whole on the way out too: a WebP or TIFF
    output, each output frame of an animation, an output kept for --reference; PNG and JPEG
    outputs, written in strips, are not bounded by it."""
    src = tmp_path / "in"
    src.mkdir()
    _sample(400, 300).save(src / "still.png")  # 1,080,000 pixels out at x3
    frames = [_sample(400, 300).rotate(10 * i) for i in range(2)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    cap = ["--max-decode-pixels", "1000000", "--backend", "bicubic", "--factor", "3"]
    for fmt in ("webp", "tiff"):
        ran = run_cli("batch", src, "-o", tmp_path / fmt, "--format", fmt, *cap)
        assert ran.returncode == 1, ran.stderr
        lines = [
            line for line in ran.stderr.splitlines() if "more than --max-decode-pixels" in line
        ]
        assert len(lines) == 2 and all("1200x900 pixels of output" in ln for ln in lines), lines
        assert not list((tmp_path / fmt).glob("[!.]*"))  # nothing but the lock
    ran = run_cli("batch", src / "still.png", "-o", tmp_path / "png", "--format", "png", *cap)
    assert ran.returncode == 0, ran.stderr
    ran = run_cli("batch", src / "still.png", "-o", tmp_path / "ref", "--reference", src, *cap)
    assert ran.returncode == 1 and "(--reference holds it whole)" in ran.stderr, ran.stderr


def test_the_in_flight_budget_counts_the_real_output_size(tmp_path: Path) -> None:
    """Issue 29: the local engine sized an image by --factor (3 by default, squared) whatever
    --scale asked, so two photos at --scale 6 (four times the pixels of x3) ran at once."""
    from upscaler._defaults import STREAM_ABOVE_PIXELS
    from upscaler._pixels.size import OutputSize
    from upscaler._run.budget import IN_FLIGHT_BYTES, estimate_bytes

    photo(2500, 1666).save(tmp_path / "a.jpg", quality=90)
    x3 = estimate_bytes(tmp_path / "a.jpg", OutputSize(factor=3), STREAM_ABOVE_PIXELS)
    x6 = estimate_bytes(tmp_path / "a.jpg", OutputSize(scale=6), STREAM_ABOVE_PIXELS)
    assert x6 > x3 > 0
    assert 2 * x6 > IN_FLIGHT_BYTES  # two of them take turns
