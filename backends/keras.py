"""ESPCN run by Keras 3 on TensorFlow (needs the `keras` extra)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from upscaler._backend import BackendOptions
from upscaler._errors import BackendError
from upscaler._precision import fp32_only

from ._espcn import EspcnBackend, check_factor

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


class _Plugin:
    factors = (2, 3, 4)

    def models(self, factor: int) -> tuple[str, ...]:
        """The shipped weights for `factor` ("clean", and "jpeg" where trained)."""
        from upscaler.weights import shipped_models

        return tuple(str(model) for model in shipped_models(factor))

    def precision(self, wanted: str = "auto") -> str:
        """What `wanted` runs as here: fp32, or a BackendError."""
        return fp32_only(wanted, "keras")

    def unavailable_reason(self) -> str | None:
        missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
        if missing:
            return f"needs `pip install upscaler[keras]` ({', '.join(missing)} not installed)"
        return None

    def create(self, factor: int, options: BackendOptions) -> KerasBackend:
        fp32_only(options.precision, "keras")
        if options.device != "cpu":
            raise BackendError(
                "the keras backend runs on the CPU here; use --backend onnx --device cuda"
            )
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        _set_threads(options.threads)
        from upscaler._model import load_model
        from upscaler.weights import shipped_weights

        path = options.weights or shipped_weights(factor, "keras", options.model)
        try:
            model = load_model(str(path))
        except Exception as exc:
            raise BackendError(f"cannot load Keras model {path}: {exc}") from exc
        backend = KerasBackend(model, factor)
        check_factor(backend.run, factor, path)
        return backend


plugin = _Plugin()
