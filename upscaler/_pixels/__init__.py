"""Pixels: row bands, tiling, the backend call, resizing, sizes, scores."""
