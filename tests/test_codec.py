"""Decoding and encoding real files with Pillow/OpenCV: modes, bit depth, metadata."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import photo
from upscaler._errors import ImageError
from upscaler._images.codec import Metadata, decode, encode

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


@pytest.mark.parametrize(
    ("mode", "expected_shape", "dtype"),
    [
        ("L", (6, 9), np.uint8),
        ("LA", (6, 9, 2), np.uint8),
        ("RGB", (6, 9, 3), np.uint8),
        ("RGBA", (6, 9, 4), np.uint8),
        ("P", (6, 9, 3), np.uint8),
        ("1", (6, 9), np.uint8),
    ],
)
def test_decode_modes(
    tmp_path: Path, mode: str, expected_shape: tuple[int, ...], dtype: type
) -> None:
    path = tmp_path / "a.png"
    photo(9, 6, "RGBA" if mode in ("LA", "RGBA") else "RGB").convert(mode).save(path)
    img = decode(path)
    assert img.pixels.shape == expected_shape and img.pixels.dtype == dtype and img.format == "PNG"


def test_16_bit_grey_and_colour_stay_16_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    colour = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    cv2.imwrite(str(tmp_path / "c.png"), colour[..., ::-1])  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "c.tif"), colour[..., ::-1])
    assert (decode(tmp_path / "g.png").pixels == grey).all()
    for name in ("c.png", "c.tif"):
        got = decode(tmp_path / name).pixels
        assert got.dtype == np.uint16 and (got == colour).all()
        encode(got, tmp_path / f"out-{name}", Metadata())
        assert (decode(tmp_path / f"out-{name}").pixels == colour).all()


def test_metadata_survives_and_dpi_scales(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    exif[0x010F] = "TestCam"
    src = tmp_path / "in.jpg"
    photo(16, 12).save(src, icc_profile=icc, exif=exif.tobytes(), dpi=(300, 300))
    img = decode(src)
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        dst = tmp_path / f"out{suffix}"
        encode(img.pixels, dst, img.metadata.scaled(3))
        with Image.open(dst) as out:
            assert out.info.get("icc_profile") == icc, suffix
            assert out.getexif().get(0x0112) == 6 and out.getexif().get(0x010F) == "TestCam", suffix
            if suffix != ".webp":
                assert tuple(round(v) for v in out.info["dpi"]) == (900, 900), suffix


def test_png_text_chunks_survive(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    photo(8, 8).save(tmp_path / "t.png", pnginfo=info)
    img = decode(tmp_path / "t.png")
    encode(img.pixels, tmp_path / "o.png", img.metadata)
    with Image.open(tmp_path / "o.png") as out:
        assert out.text == {"Comment": "hello"}


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        (given, mode)
        for given in ("array", "pillow image", "many bands")
        for mode in ("L", "RGB", "RGBA", "LA", "L16", "RGB16", "RGBA16")
        if not (given == "pillow image" and mode in ("RGB16", "RGBA16"))  # Pillow has none
    ],
)
def test_png_writer_keeps_pixels_and_every_metadata_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, mode: str
) -> None:
    """Our PNG writer, read back by Pillow and by libpng (OpenCV), band by band or whole."""
    import upscaler._images.png as png

    if given == "many bands":  # a band of one or two rows: the Up filter crosses bands
        monkeypatch.setattr(png, "_BAND_BYTES", 40)
    rng = np.random.default_rng(1)
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode.removesuffix("16")]
    dtype = np.uint16 if mode.endswith("16") else np.uint8
    pixels = rng.integers(0, np.iinfo(dtype).max, (9, 13, channels), dtype=dtype).squeeze()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    meta = Metadata(icc, exif.tobytes(), (72.0, 150.0), {"Comment": "ça va"}, XMP)
    encode(Image.fromarray(pixels) if given == "pillow image" else pixels, tmp_path / "o.png", meta)
    assert np.array_equal(decode(tmp_path / "o.png").pixels, pixels)
    by_libpng = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    as_given = {2: [0, 3], 3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(channels, slice(None))
    assert np.array_equal(by_libpng[..., as_given], pixels)  # OpenCV: BGR(A), LA as BGRA
    with Image.open(tmp_path / "o.png") as out:
        assert out.info["icc_profile"] == icc and out.getexif().get(0x010F) == "TestCam"
        assert tuple(round(v) for v in out.info["dpi"]) == (72, 150)
        assert out.text["Comment"] == "ça va" and out.text["XML:com.adobe.xmp"] == XMP.decode()


def test_alpha_into_jpeg_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    encode(rgba, tmp_path / "a.jpg", Metadata())
    assert decode(tmp_path / "a.jpg").pixels.min() >= 250


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    dst = tmp_path / "deep" / "x.png"
    encode(np.zeros((4, 4, 3), np.uint8), dst, Metadata())
    assert [p.name for p in dst.parent.iterdir()] == ["x.png"]
    with pytest.raises(ImageError):
        encode(np.zeros((4, 4, 3), np.uint8), tmp_path / "x.xyz", Metadata())
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not a recognised image"), (b"hello, I am text", "not a recognised image")],
)
def test_bad_files_give_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        decode(path)


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    photo(64, 64).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="^truncated image file$"):
        decode(path)
