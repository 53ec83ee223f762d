"""Exceptions with messages meant for the user."""

from __future__ import annotations

__all__ = ["BackendError", "ImageError", "UpscalerError"]


class UpscalerError(Exception):
    """Base of every error this package raises on purpose."""


class BackendError(UpscalerError):
    """A backend is unknown, unavailable, or failed to load."""


class ImageError(UpscalerError):
    """One image could not be read, processed or written."""
