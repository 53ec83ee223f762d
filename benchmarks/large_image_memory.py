"""Peak memory of `upscaler batch` on large and hostile inputs, libvips as the anchor.

Every row is one run of the installed command under /usr/bin/time -v (maximum resident set
size), on inputs this script makes: the rows of issue 26's table and its targets. The anchor
is libvips's own bicubic x3 of the same 6000x4000 JPEG (pyvips, sequential access), run
alternately with the 216 MP row (`--rounds`), whose wall-time ratio is printed: the time
target is <= 3.0x libvips.

    python benchmarks/large_image_memory.py                 # every row
    python benchmarks/large_image_memory.py --row 216-jpg --row bombs --rounds 3
    python benchmarks/large_image_memory.py --backend onnx   # a backend other than the default
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from throughput import cpu_model  # this folder's: one way to name the machine

ROOT = Path(__file__).resolve().parents[1]
#: row name -> (target peak MB, what it runs)
TARGETS = {
    "216-jpg": 250,
    "216-png": 250,
    "864-jpg": 250,
    "scale5": 250,
    "scale6-two": 250,
    "apng-x4": 400,
    "gif-x4": 400,
    "bomb-png": 300,
    "bomb-gif": 300,
    "bomb-tiff": 300,
}
GROUPS = {"bombs": ["bomb-png", "bomb-gif", "bomb-tiff"], "animations": ["apng-x4", "gif-x4"]}


def photo(width: int, height: int) -> Image.Image:
    with Image.open(ROOT / "examples" / "astronaut.png") as im:
        return im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_inputs(root: Path) -> dict[str, Path]:
    """Each row's input folder."""
    made: dict[str, Path] = {}
    big = _folder(root, "large")
    photo(6000, 4000).save(big / "large.jpg", quality=92)
    made["216-jpg"] = made["216-png"] = big
    huge = _folder(root, "huge")
    photo(12000, 8000).save(huge / "huge.jpg", quality=92)
    made["864-jpg"] = huge
    mid = photo(2500, 1666)
    mid.save(_folder(root, "scale5") / "a.jpg", quality=92)
    made["scale5"] = root / "scale5"
    two = _folder(root, "scale6")
    mid.save(two / "a.jpg", quality=92)
    mid.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(two / "b.jpg", quality=92)
    made["scale6-two"] = two
    frames = [photo(1000, 1000).rotate(18 * i) for i in range(20)]
    for name, suffix in (("apng-x4", "png"), ("gif-x4", "gif")):
        folder = _folder(root, name)
        frames[0].save(
            folder / f"anim.{suffix}", save_all=True, append_images=frames[1:], duration=100
        )
        made[name] = folder
    made.update(_bombs(root))
    return made


def _bombs(root: Path) -> dict[str, Path]:
    """A 15000x15000 PNG of a few hundred kilobytes, a 35-byte GIF whose screen is
    15000x15000, a TIFF of a 10x10 page and a 20000x20000 page (a few hundred kilobytes)."""
    side = 15000

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    deflate, row = zlib.compressobj(9), b"\x00" + b"\x80" * (side * 3)
    data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    png = _folder(root, "bomb-png") / "big.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )
    gif = _folder(root, "bomb-gif") / "screen.gif"
    gif.write_bytes(
        b"GIF89a"
        + struct.pack("<HH", side, side)
        + b"\x80\x00\x00"
        + b"\x00" * 3
        + b"\xff" * 3
        + b"\x2c"
        + struct.pack("<HHHH", 0, 0, 1, 1)
        + b"\x00\x02\x02\x44\x01\x00\x3b"
    )
    tiff = _folder(root, "bomb-tiff") / "pages.tif"
    Image.new("L", (10, 10)).save(
        tiff,
        save_all=True,
        append_images=[Image.new("L", (20000, 20000))],
        compression="tiff_adobe_deflate",
    )
    return {"bomb-png": png.parent, "bomb-gif": gif.parent, "bomb-tiff": tiff.parent}


ARGS = {
    "216-jpg": ["--factor", "3", "--format", "jpg"],
    "216-png": ["--factor", "3", "--format", "png"],
    "864-jpg": ["--factor", "3", "--format", "jpg"],  # under the default --max-pixels (2 GP)
    "scale5": ["--scale", "5"],
    "scale6-two": ["--scale", "6"],
    "apng-x4": ["--factor", "4"],
    "gif-x4": ["--factor", "4"],
    "bomb-png": ["--fit", "64x64", "--shrink"],
    "bomb-gif": ["--fit", "64x64", "--shrink"],
    "bomb-tiff": ["--factor", "3"],
}


def timed(cmd: list[str]) -> tuple[int, float, str]:
    """(peak RSS in bytes, wall seconds, the last line of stderr) of one command."""
    ran = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    err = ran.stderr
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", err
    )
    assert wall
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    said = [
        line
        for line in err.splitlines()
        if line.strip() and not line.startswith("\t") and "Command being timed" not in line
    ]
    return kib * 1024, seconds, (said[-1] if said else f"exit {ran.returncode}")[:160]


def upscaler_cmd(folder: Path, out: Path, args: list[str], backend: str | None) -> list[str]:
    exe = shutil.which("upscaler", path=str(Path(sys.executable).parent)) or "upscaler"
    extra = ["--backend", backend] if backend else []
    return [exe, "batch", str(folder), "-o", str(out), *args, *extra, "--overwrite", "-q"]


def vips_cmd(src: Path, dst: Path) -> list[str]:
    code = (
        "import sys, pyvips; "
        "pyvips.Image.new_from_file(sys.argv[1], access='sequential')"
        ".resize(3, kernel='cubic').write_to_file(sys.argv[2])"
    )
    return [sys.executable, "-c", code, str(src), str(dst)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", action="append", choices=[*TARGETS, *GROUPS])
    parser.add_argument("--backend", help="backend to run [default: upscaler's default here]")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of the 216 MP JPEG row and libvips",
    )
    args = parser.parse_args()
    rows = [r for name in (args.row or list(TARGETS)) for r in GROUPS.get(name, [name])]
    print(f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}")
    over = False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = make_inputs(root)
        for row in rows:
            cmd = upscaler_cmd(inputs[row], root / f"out-{row}", ARGS[row], args.backend)
            if row == "216-jpg":
                over |= _against_vips(cmd, inputs[row] / "large.jpg", root, args.rounds)
                continue
            peak, seconds, said = timed(cmd)
            over |= _report(row, peak, seconds, said)
    return 1 if over else 0


def _report(row: str, peak: int, seconds: float, said: str, extra: str = "") -> bool:
    target = TARGETS[row]
    mb = peak / 1e6
    flag = "ok" if mb <= target else "OVER"
    print(
        f"{row:11s} peak {mb:7.0f} MB (target <= {target}: {flag}), {seconds:6.1f} s{extra}; {said}"
    )
    return mb > target


def _against_vips(cmd: list[str], src: Path, root: Path, rounds: int) -> bool:
    """The 216 MP JPEG row alternating with libvips's bicubic x3 of the same file."""
    ours: list[tuple[int, float, str]] = []
    theirs: list[tuple[int, float, str]] = []
    runs: list[tuple[list[tuple[int, float, str]], Callable[[], tuple[int, float, str]]]] = [
        (ours, lambda: timed(cmd)),
        (theirs, lambda: timed(vips_cmd(src, root / "vips-x3.jpg"))),
    ]
    for _ in range(max(1, rounds)):
        for into, run in runs:
            into.append(run())
    t_ours = statistics.median(s for _, s, _ in ours)
    t_vips = statistics.median(s for _, s, _ in theirs)
    peak = max(p for p, _, _ in ours)
    vips_peak = max(p for p, _, _ in theirs)
    extra = (
        f" (median of {len(ours)}); libvips bicubic x3 {t_vips:.1f} s, peak {vips_peak / 1e6:.0f} MB;"
        f" time ratio {t_ours / t_vips:.2f}x (target <= 3.0x)"
    )
    slow = t_ours / t_vips > 3.0
    return _report("216-jpg", peak, t_ours, ours[-1][2], extra) or slow


if __name__ == "__main__":
    sys.exit(main())
