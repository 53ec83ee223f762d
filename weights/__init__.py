"""The shipped ESPCN weights: data only (the `.onnx` and `.keras` files and `manifest.json`).

Installed as `upscaler.weights` from the repository's top-level `weights/` folder; backends
find the files through `upscaler.plugin.shipped_weights` and `shipped_models`, which check
them against the manifest's sha256.
"""
