"""ESPCN run by Keras 3 on TensorFlow (needs the `keras` extra)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from upscaler.plugin import BackendError, BackendOptions, check_factor, shipped_weights

from ._espcn import EspcnBackend, EspcnPlugin

__all__ = ["KerasBackend", "plugin"]


class KerasBackend(EspcnBackend):
    """A loaded `.keras` ESPCN model (luma in, upscaled luma out)."""

    def __init__(self, model: Any, factor: int) -> None:
        self.model, self.factor = model, factor

    def run(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        from keras import ops

        return np.asarray(ops.convert_to_numpy(self.model(tiles, training=False)), dtype=np.float32)


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started in this process: keep its threads
        pass


class _Plugin(EspcnPlugin):
    name = "keras"

    def unavailable_reason(self) -> str | None:
        missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
        if missing:
            return f"needs `pip install upscaler[keras]` ({', '.join(missing)} not installed)"
        return None

    def create(self, factor: int, options: BackendOptions) -> KerasBackend:
        self.precision(options.precision)  # fp32 only
        if options.device != "cpu":
            raise BackendError(
                "the keras backend runs on the CPU here; use --backend onnx --device cuda"
            )
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        _set_threads(options.threads)
        from upscaler.plugin import load_keras_model

        path = options.weights or shipped_weights(factor, "keras", options.model)
        try:
            model = load_keras_model(str(path))
        except Exception as exc:
            raise BackendError(f"cannot load Keras model {path}: {exc}") from exc
        backend = KerasBackend(model, factor)
        if options.weights:  # a file of the user's (the shipped ones are checked by sha256)
            check_factor(backend.run, factor, path)
        return backend


plugin = _Plugin()
