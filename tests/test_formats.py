"""Every common format through `upscaler batch --format same`: modes, bit depth, alpha, metadata."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import SAMPLES, photo, run_cli, run_cli_without
from upscaler._images.codec import decode

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


def _write_inputs(root: Path) -> dict[str, tuple[str, type, int]]:
    """name -> (expected output mode family, dtype, channels) for each format written."""
    rgb, rgba = photo(40, 30), photo(40, 30, "RGBA")
    rgb.save(root / "photo.jpg", quality=90)
    rgb.save(root / "rgb8.png")
    cv2.imwrite(str(root / "rgb16.png"), (np.asarray(rgb)[..., ::-1].astype(np.uint16) * 257))
    rgb.quantize(64).save(root / "palette.png")
    rgb.convert("L").save(root / "grey.png")
    rgba.convert("LA").save(root / "grey_alpha.png")
    rgba.save(root / "rgba.png")
    rgb.save(root / "lossy.webp", quality=80)
    rgb.save(root / "lossless.webp", lossless=True)
    rgba.save(root / "alpha.webp", lossless=True)
    rgb.save(root / "rgb8.tif")
    cv2.imwrite(str(root / "rgb16.tif"), (np.asarray(rgb)[..., ::-1].astype(np.uint16) * 257))
    Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257).save(root / "grey16.tif")
    rgb.save(root / "photo.bmp")
    rgba.save(root / "alpha.avif")
    rgb.convert("CMYK").save(root / "cmyk.jpg")
    return {
        "photo.jpg": ("RGB", np.uint8, 3),
        "rgb8.png": ("RGB", np.uint8, 3),
        "rgb16.png": ("RGB", np.uint16, 3),
        "palette.png": ("RGB", np.uint8, 3),
        "grey.png": ("L", np.uint8, 1),
        "grey_alpha.png": ("LA", np.uint8, 2),
        "rgba.png": ("RGBA", np.uint8, 4),
        "lossy.webp": ("RGB", np.uint8, 3),
        "lossless.webp": ("RGB", np.uint8, 3),
        "alpha.webp": ("RGBA", np.uint8, 4),
        "rgb8.tif": ("RGB", np.uint8, 3),
        "rgb16.tif": ("RGB", np.uint16, 3),
        "grey16.tif": ("L", np.uint16, 1),
        "photo.bmp": ("RGB", np.uint8, 3),
        "alpha.avif": ("RGBA", np.uint8, 4),
        "cmyk.jpg": ("RGB", np.uint8, 3),
    }


def test_every_format_keeps_format_depth_and_alpha(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    expected = _write_inputs(src)
    out = tmp_path / "out"
    result = run_cli("batch", src, "-o", out, "--factor", 2, "--backend", "onnx", "-q")
    assert result.returncode == 0, result.stderr
    for name, (_, dtype, channels) in expected.items():
        got = decode(out / name).pixels
        original = decode(src / name)
        assert got.shape[:2] == (60, 80), name
        assert got.dtype == dtype and (1 if got.ndim == 2 else got.shape[2]) == channels, name
        with Image.open(src / name) as a, Image.open(out / name) as b:
            assert a.format == b.format, name
        if channels in (2, 4):  # alpha kept: the photo fixture's alpha ramps left to right
            alpha = got[..., -1].astype(float)
            assert alpha[:, :10].mean() < 60 < 190 < alpha[:, -10:].mean(), name
        if dtype == np.uint16:
            assert len(np.unique(got)) > 256, name  # real 16-bit output
        assert original.pixels.dtype == dtype


@pytest.mark.slow
def test_heic_through_the_heif_extra(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="needs the heif extra")
    pillow_heif.register_heif_opener()
    (tmp_path / "in").mkdir()
    photo(40, 30).save(tmp_path / "in" / "phone.heic", quality=90)
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--factor", 2, "-q")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out" / "phone.heic") as im:
        assert im.format == "HEIF" and im.size == (80, 60)


@pytest.mark.slow
def test_jpeg_xl_round_trip_with_its_metadata(tmp_path: Path) -> None:
    """JPEG to JPEG XL (`--format jxl`) and that JPEG XL to PNG, through the jxl extra:
    sizes, pixels close to a JPEG output's, EXIF and XMP kept both ways; the colours are
    sRGB (the plugin writes no ICC profile: libjxl's own sRGB one is read back)."""
    pytest.importorskip("pillow_jxl", reason="needs the jxl extra")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    (tmp_path / "in").mkdir()
    photo(60, 40).save(tmp_path / "in" / "cam.jpg", icc_profile=icc, exif=exif.tobytes(), xmp=XMP)
    for fmt, src, out in (("jxl", "in", "jxl"), ("jpg", "in", "jpg"), ("png", "jxl", "back")):
        ran = run_cli("batch", tmp_path / src, "-o", tmp_path / out, "--format", fmt, "-q")
        assert ran.returncode == 0, ran.stderr
    for path, fmt, size in (
        (tmp_path / "jxl" / "cam.jxl", "JXL", (180, 120)),
        (tmp_path / "back" / "cam.png", "PNG", (540, 360)),
    ):
        with Image.open(path) as im:
            assert (im.format, im.size) == (fmt, size)
            profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
            assert "srgb" in ImageCms.getProfileDescription(profile).lower()
            assert im.getexif().get(0x010F) == "TestCam"
            if fmt == "PNG":  # the JPEG XL input's XMP, read from its box, made it through
                assert im.info.get("XML:com.adobe.xmp") == XMP.decode()
    from upscaler._images.codec import _jxl_box

    assert _jxl_box(tmp_path / "jxl" / "cam.jxl", b"xml ") == XMP
    with (
        Image.open(tmp_path / "jxl" / "cam.jxl") as a,
        Image.open(tmp_path / "jpg" / "cam.jpg") as b,
    ):
        diff = np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)
    assert np.abs(diff).mean() < 3  # the same upscale, two lossy encoders at quality 95


@pytest.mark.slow
def test_jpeg_xl_output_carries_the_colours_of_another_profile(tmp_path: Path) -> None:
    """An Adobe RGB photo written as JPEG XL is converted to sRGB (no profile can go in)."""
    pytest.importorskip("pillow_jxl", reason="needs the jxl extra")
    a98 = _ghostscript_profile("a98.icc")
    with Image.open(SAMPLES / "coffee.png") as im:
        rgb = im.convert("RGB").resize((90, 60), Image.Resampling.BICUBIC)
    (tmp_path / "in").mkdir()
    rgb.save(tmp_path / "in" / "a.png", icc_profile=a98.read_bytes())
    args = ("--format", "jxl", "--backend", "bicubic", "--quality", "100", "-q")
    ran = run_cli("batch", tmp_path / "in", "-o", tmp_path / "o", *args)
    assert ran.returncode == 0, ran.stderr
    expected = ImageCms.profileToProfile(
        rgb, ImageCms.getOpenProfile(str(a98)), ImageCms.createProfile("sRGB")
    )
    expected = expected.resize((270, 180), Image.Resampling.BICUBIC)
    with Image.open(tmp_path / "o" / "a.jxl") as out:
        got = np.asarray(out.convert("RGB"), float)
    assert np.abs(got - np.asarray(expected, float)).mean() < 2.5
    assert np.abs(got - np.asarray(rgb.resize((270, 180)), float)).mean() > 5  # not as stored


@pytest.mark.slow
def test_jpeg_xl_without_the_extra_is_a_reason(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jxl").write_bytes(b"\xff\x0a not really")
    ran = run_cli_without("pillow_jxl", "batch", tmp_path / "in", "-o", tmp_path / "o")
    assert ran.returncode == 1
    assert "a.jxl: JPEG XL files need `pip install upscaler[jxl]`" in ran.stderr


@pytest.mark.slow
def test_quality_applies_to_jpeg_and_webp(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    photo(60, 40).save(tmp_path / "in" / "a.png")
    sizes = {}
    for q in (30, 95):
        for fmt in ("jpg", "webp"):
            out = tmp_path / f"{fmt}{q}"
            assert (
                run_cli(
                    "batch", tmp_path / "in", "-o", out, "--format", fmt, "--quality", q, "-q"
                ).returncode
                == 0
            )
            sizes[fmt, q] = next(out.glob("a.*")).stat().st_size
    assert sizes["jpg", 30] < sizes["jpg", 95] and sizes["webp", 30] < sizes["webp", 95]


@pytest.mark.parametrize(
    "fmt",
    [
        "same",
        "png",
        pytest.param("webp", marks=pytest.mark.slow),
        pytest.param("tiff", marks=pytest.mark.slow),
    ],
)
def test_metadata_is_carried_over(tmp_path: Path, fmt: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"
    (tmp_path / "in").mkdir()
    photo(30, 20).save(
        tmp_path / "in" / "cam.jpg", icc_profile=icc, exif=exif.tobytes(), dpi=(240, 240), xmp=XMP
    )
    assert (
        run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--format", fmt, "-q").returncode
        == 0
    )
    (out,) = (tmp_path / "out").glob("cam.*")
    with Image.open(out) as im:
        if im.format == "TIFF":  # Pillow shows TIFFs upright on opening: read the stored tags
            assert (im.tag_v2[256], im.tag_v2[257], im.tag_v2[274], im.tag_v2[271]) == (
                90,
                60,
                6,
                "TestCam",
            )
        else:
            assert im.size == (90, 60)  # stored pixel order kept, with the orientation tag
            assert im.getexif().get(0x0112) == 6 and im.getexif().get(0x010F) == "TestCam"
        assert im.info.get("icc_profile") == icc
        if im.format != "WEBP":
            assert tuple(round(v) for v in im.info["dpi"]) == (720, 720)
        if im.format in ("JPEG", "PNG", "WEBP"):
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP


CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")  # Debian's libgs-common


def _ghostscript_profile(name: str) -> Path:
    """An ICC profile of Debian's libgs-common: skipped without it, failed under CI."""
    path = CMYK_PROFILE.with_name(name)
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must install libgs-common (see .ci/run)")
        pytest.skip(f"no {name} ICC profile here (apt-get install libgs-common)")
    return path


@pytest.mark.slow
def test_cmyk_jpeg_is_converted_through_its_icc_profile(tmp_path: Path) -> None:
    _ghostscript_profile(CMYK_PROFILE.name)
    with Image.open(SAMPLES / "coffee.png") as im:
        rgb = im.convert("RGB").resize((120, 80), Image.Resampling.BICUBIC)
    srgb = ImageCms.createProfile("sRGB")
    cmyk_profile = ImageCms.getOpenProfile(str(CMYK_PROFILE))
    cmyk = ImageCms.profileToProfile(rgb, srgb, cmyk_profile, outputMode="CMYK")
    (tmp_path / "in").mkdir()
    cmyk.save(tmp_path / "in" / "print.jpg", quality=95, icc_profile=CMYK_PROFILE.read_bytes())
    assert (
        run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--factor", 2, "-q").returncode
        == 0
    )
    with Image.open(tmp_path / "out" / "print.jpg") as out:
        assert out.mode == "RGB"
        profile = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
        back = np.asarray(out.resize(rgb.size, Image.Resampling.BICUBIC)).astype(int)
    original = np.asarray(rgb).astype(int)
    managed_error = np.abs(back - original).mean()
    naive_error = np.abs(np.asarray(cmyk.convert("RGB")).astype(int) - original).mean()
    roundtrip = ImageCms.profileToProfile(cmyk, cmyk_profile, srgb, outputMode="RGB")
    gamut_error = np.abs(np.asarray(roundtrip).astype(int) - original).mean()  # CMYK's own loss
    assert managed_error < gamut_error + 1.5 and managed_error < naive_error / 2


def test_multi_picture_jpeg_is_upscaled_as_its_primary_photo(tmp_path: Path) -> None:
    """An MPO (as phones write for depth or gain maps) is an ordinary photo to its owner: its
    primary image is upscaled into a plain JPEG with the primary's metadata; the secondary
    images are dropped (they describe the original, not the upscaled photo)."""
    src = tmp_path / "in"
    src.mkdir()
    primary = photo(48, 32, seed=3)
    secondary = Image.new("L", (24, 16), 128)  # a depth map, say
    exif = Image.Exif()
    exif[0x010F] = "PhoneCam"
    primary.save(
        src / "p.jpg",
        "MPO",
        save_all=True,
        append_images=[secondary],
        exif=exif.tobytes(),
        dpi=(72, 72),
        quality=95,
    )
    with Image.open(src / "p.jpg") as check:
        assert check.format == "MPO" and check.n_frames == 2
    result = run_cli("batch", src, "--backend", "bicubic", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out" / "p.jpg") as out:
        assert out.format == "JPEG" and getattr(out, "n_frames", 1) == 1
        assert out.size == (144, 96) and out.getexif().get(0x010F) == "PhoneCam"
        assert tuple(round(v) for v in out.info["dpi"]) == (216, 216)
        expected = np.asarray(primary.resize((144, 96), Image.Resampling.BICUBIC), np.float32)
        assert np.abs(np.asarray(out, np.float32) - expected).mean() < 8  # the primary, not the map
