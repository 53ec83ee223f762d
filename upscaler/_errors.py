"""Exceptions with messages meant for the user."""

from __future__ import annotations

import struct

__all__ = ["BackendError", "ImageError", "UpscalerError", "file_reason"]


class UpscalerError(Exception):
    """Base of every error this package raises on purpose."""


class BackendError(UpscalerError):
    """A backend is unknown, unavailable, or failed to load."""


class ImageError(UpscalerError):
    """One image could not be read, processed or written."""


def file_reason(exc: BaseException) -> str:
    """What an exception raised while reading an image file says about the file, in a few
    words (truncated, corrupt, not an image, the system's reason): for the one-line message."""
    from PIL import UnidentifiedImageError

    text = " ".join((str(exc) or type(exc).__name__).split())
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return exc.strerror  # Permission denied, Is a directory, ...
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image file"
    if "truncated" in text.lower() or isinstance(exc, EOFError | struct.error | IndexError):
        return "truncated image file"  # struct.error, IndexError: bytes cut short (GIF's reader)
    if isinstance(exc, RuntimeError):  # a plugin's (JPEG XL: "Generic Error. Please build...")
        return f"corrupt image data ({text.split('.')[0][:80]})"
    if isinstance(exc, OSError | UserWarning):
        return f"corrupt image data ({text[:120]})"  # decoders say little more
    return text.replace(str(getattr(exc, "filename", "") or "\0"), "").strip(" :'\"") or text
