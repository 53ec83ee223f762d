"""ESPCN run by OpenVINO, in bfloat16 where the processor computes it natively.

The shipped ONNX model is compiled as it is: no second set of weights (the model's unpadded
twin, for the tiles inside a large image, is compiled when the first such tile comes).
OpenVINO keeps the weights in float32 and, with the bf16 precision hint, runs the
convolutions in bfloat16 on CPUs that have it (AVX512-BF16, AMX); elsewhere `auto` gives
float32.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from upscaler.plugin import (
    PRECISIONS,
    BackendError,
    BackendOptions,
    cache_dir,
    check_factor,
    native_bf16,
    shipped_weights,
)

from ._espcn import EspcnBackend, EspcnPlugin, Lazy, unpadded_twin

__all__ = ["OpenVinoBackend", "plugin"]

_HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoBackend(EspcnBackend):
    """One compiled model; each calling thread gets an inference request of its own."""

    thread_safe = True  # a request per calling thread; they take turns on the compiled model

    def __init__(
        self, compiled: Any, factor: int, precision: str, twin: Lazy[Any] | None = None
    ) -> None:
        self.compiled, self.factor, self.precision, self.twin = compiled, factor, precision, twin
        self._local = threading.local()
        if twin is not None:
            self.upscale_core = self._upscale_core

    def run(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._infer("request", self.compiled, tiles)

    def run_core(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        assert self.twin is not None
        return self._infer("twin_request", self.twin.get(), tiles)

    def _infer(self, name: str, compiled: Any, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        request = getattr(self._local, name, None)
        if request is None:
            request = compiled.create_infer_request()
            setattr(self._local, name, request)
        # Input shared (no copy), output copied once: the request reuses its buffer.
        return np.asarray(request.infer({0: tiles}, share_inputs=True)[0], dtype=np.float32)


def _precision(wanted: str) -> str:
    """The precision to run: `auto` is bf16 where the CPU has it natively, else fp32."""
    if wanted not in PRECISIONS:
        raise BackendError(f"unknown precision {wanted!r} (use {', '.join(PRECISIONS)})")
    if wanted == "auto":
        return "bf16" if native_bf16() else "fp32"
    if wanted == "bf16" and not native_bf16():
        raise BackendError(
            "this CPU has no native bfloat16 (AVX512-BF16 or AMX): run fp32 (--precision auto)"
        )
    return wanted


def _cache_dir() -> str | None:
    """Where OpenVINO keeps the models it compiled, so that the next run loads them instead:
    the per-user cache's `openvino` folder (`upscaler.plugin.cache_dir`); None: no cache."""
    folder = cache_dir("openvino")
    return None if folder is None else str(folder)


def _config(options: BackendOptions, precision: str) -> dict[str, object]:
    """One stream with the threads of every image in flight; their requests take turns.

    A stream per image in flight was 5% slower, on small photos and on large ones (README).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    threads = (options.threads or cores) * (options.concurrent or 1)
    return {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": max(1, min(threads, cores)),
        # Pinned: 5.9 instead of 4.2 ms per small photo, two threads calling (README).
        "ENABLE_CPU_PINNING": False,
    }


_CONVERTER = "openvino.tools.ovc"


def _import_openvino() -> ModuleType:
    """`import openvino` without the model converter that it imports eagerly: 65 of its 115 ms
    (measured on the Zen 4 machine of the README), and this backend never converts a model.
    `openvino.convert_model` stays available: it is imported on first use."""
    if "openvino" in sys.modules or _CONVERTER in sys.modules:
        return importlib.import_module("openvino")
    sys.modules[_CONVERTER] = None  # type: ignore[assignment]  # makes its import fail fast
    try:
        openvino = importlib.import_module("openvino")
    finally:
        del sys.modules[_CONVERTER]
    if not hasattr(openvino, "convert_model") and not hasattr(openvino, "__getattr__"):
        vars(openvino)["__getattr__"] = _converter_on_demand  # PEP 562: on first use
    return openvino


def _converter_on_demand(name: str) -> object:
    if name != "convert_model":
        raise AttributeError(f"module 'openvino' has no attribute {name!r}")
    from openvino.tools.ovc import convert_model

    return convert_model


class _Plugin(EspcnPlugin):
    name = "openvino"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "needs `pip install openvino`"
        return None

    def default_rank(self, device: str) -> int:
        """The default backend where it runs bfloat16 natively (on the CPU); its float32 is no
        faster than ONNX Runtime's, so elsewhere it leaves the default to onnx."""
        if device == "cpu" and native_bf16() and self.unavailable_reason() is None:
            return 2
        return 0

    def precision(self, wanted: str = "auto") -> str:
        """What `wanted` runs as on this machine (without loading OpenVINO)."""
        return _precision(wanted)

    def create(self, factor: int, options: BackendOptions) -> OpenVinoBackend:
        if options.device != "cpu":
            raise BackendError(
                "the openvino backend runs on the CPU; use --backend onnx --device cuda"
            )
        precision = _precision(options.precision)
        ov = _import_openvino()

        path = options.weights or shipped_weights(factor, "onnx", options.model)
        config = _config(options, precision)
        compiled = _compile(ov, path, config)
        twin = unpadded_twin(factor, options)
        lazy = None if twin is None else Lazy(lambda: _compile(ov, twin, config))
        backend = OpenVinoBackend(compiled, factor, precision, lazy)
        if options.weights:  # a file of the user's (the shipped ones are checked by sha256)
            check_factor(backend.run, factor, path)
        return backend


def _compile(ov: ModuleType, path: Path, config: dict[str, object]) -> Any:
    """`path` compiled for the CPU, from the cache of compiled models where there is one."""
    cache = _cache_dir()
    try:
        try:
            return ov.Core().compile_model(
                str(path), "CPU", {**config, "CACHE_DIR": cache} if cache else config
            )
        except Exception:
            if not cache:
                raise
            return ov.Core().compile_model(str(path), "CPU", config)  # cache unusable
    except Exception as exc:
        raise BackendError(f"cannot load ONNX model {path} in OpenVINO: {exc}") from exc


plugin = _Plugin()
