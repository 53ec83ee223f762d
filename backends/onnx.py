"""ESPCN run by ONNX Runtime (the default backend)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from upscaler.plugin import BackendError, BackendOptions, check_factor, shipped_weights

from ._espcn import EspcnBackend, EspcnPlugin, Lazy, unpadded_twin

__all__ = ["OnnxBackend", "plugin"]


class OnnxBackend(EspcnBackend):
    """One ONNX Runtime session of an ESPCN model (luma in, upscaled luma out)."""

    thread_safe = True  # InferenceSession.run may be called from several threads

    def __init__(self, session: Any, factor: int, twin: Lazy[Any] | None = None) -> None:
        self.session, self.factor, self.twin = session, factor, twin
        self.input_name = session.get_inputs()[0].name
        if twin is not None:
            self.upscale_core = self._upscale_core

    def run(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        (out,) = self.session.run(None, {self.input_name: tiles})
        return np.asarray(out, dtype=np.float32)

    def run_core(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        assert self.twin is not None
        (out,) = self.twin.get().run(None, {self.input_name: tiles})
        return np.asarray(out, dtype=np.float32)


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    wanted = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}.get(device)
    if wanted is None:
        raise BackendError(f"unknown device {device!r} (use cpu or cuda)")
    if wanted not in ort.get_available_providers():
        raise BackendError(
            f"--device {device} needs onnxruntime-gpu with CUDA (`pip install onnxruntime-gpu`)"
        )
    return [wanted] if device == "cpu" else [wanted, "CPUExecutionProvider"]


_ARENA_LOCK = threading.Lock()
_arena_registered = False


#: The arena's first region: room for every session's largest activations (batches of
#: MAX_BATCH_PIXELS; the model and its unpadded twin, a second factor's pair for --scale 6),
#: so that the arena rarely needs a second region. Only the pages used count in memory. Grown
#: in regions of 1, 2, 4... MB (ONNX Runtime's default), the arena took a second one on the
#: second of two --scale 6 photos (peak 243,440-260,656 kB); with 64 MB first, 219,792 kB,
#: and the 216 MP photo 202,624 kB (32 MB: 234,956 kB; 256 MB: 229,600 kB for the 216 MP;
#: regions of the requested size: 283,868 kB for three 2000x1500 photos): measured, this
#: machine of docs/benchmarks.md.
ARENA_FIRST_BYTES = 64 << 20


def _share_arena(ort: Any) -> None:
    """Register the process's one CPU arena with ONNX Runtime (once)."""
    global _arena_registered
    with _ARENA_LOCK:
        if not _arena_registered:
            info = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            cfg = ort.OrtArenaCfg({"initial_chunk_size_bytes": ARENA_FIRST_BYTES})
            ort.create_and_register_allocator(info, cfg)
            _arena_registered = True


class _Plugin(EspcnPlugin):
    name = "onnx"

    def default_rank(self, device: str) -> int:
        """The default backend wherever OpenVINO does not claim it (`--device cuda` too)."""
        return 1

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "needs `pip install onnxruntime`"
        return None

    def create(self, factor: int, options: BackendOptions) -> OnnxBackend:
        self.precision(options.precision)  # fp32 only
        import onnxruntime as ort

        path = options.weights or shipped_weights(factor, "onnx", options.model)
        so = self._session_options(ort, options)
        session = self._session(ort, path, so, options)
        twin = unpadded_twin(factor, options)
        lazy = None if twin is None else Lazy(lambda: self._session(ort, twin, so, options))
        backend = OnnxBackend(session, factor, lazy)
        if options.weights:  # a file of the user's (the shipped ones are checked by sha256)
            check_factor(backend.run, factor, path)
        return backend

    @staticmethod
    def _session_options(ort: Any, options: BackendOptions) -> Any:
        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        # Threads that wait for work sleep instead of spinning: a large image runs two models
        # (the model at its edges, its unpadded twin inside), and the pool of one spinning
        # while the other runs made a band of tiles 1.16x slower than one model alone; not
        # spinning, 0.84x; one model alone was as fast either way (measured: docs/benchmarks.md).
        # (A process-wide pool would serve too, but it makes ONNX Runtime refuse every session
        # with threads of its own in the process: a library user's too.)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The arena keeps the largest activations it has needed and reuses them: images come
        # in bands and batches of bounded size (MAX_BATCH_PIXELS), so that is bounded too, and
        # fresh buffers for every call cost page faults. One arena for every session of the
        # process: two models (the passes of --scale 5, clean and JPEG weights) would each
        # keep their own (two sessions: 109 MiB of RSS shared, 154 apart, measured).
        so.enable_cpu_mem_arena = True
        # No memory pattern: it plans one block per input shape for all the activations
        # (9 MiB more on 266x266 tiles, no faster, measured).
        so.enable_mem_pattern = False
        _share_arena(ort)
        so.add_session_config_entry("session.use_env_allocators", "1")
        return so

    @staticmethod
    def _session(ort: Any, path: Path, so: Any, options: BackendOptions) -> Any:
        try:
            return ort.InferenceSession(str(path), so, providers=_providers(options.device))
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"cannot load ONNX model {path}: {exc}") from exc


plugin = _Plugin()
