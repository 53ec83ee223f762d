"""Which arithmetic the network runs in on this machine, decided without importing a framework.

`auto` means bfloat16 where the processor computes it natively (AVX512-BF16 or AMX-BF16,
read from /proc/cpuinfo), float32 elsewhere. The plugins decide from it what they run and
whether they offer themselves as the default backend (`upscaler.plugin.BasePlugin`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .._errors import BackendError

__all__ = ["PRECISIONS", "bf16_features", "fp32_only", "native_bf16"]

PRECISIONS = ("auto", "fp32", "bf16")
#: /proc/cpuinfo flags of native bfloat16 arithmetic, as `upscaler backends` names them.
_BF16_FLAGS = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


@lru_cache(maxsize=1)
def bf16_features() -> tuple[str, ...]:
    """The processor's native bfloat16 features (empty where there are none or none known)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    return tuple(name for flag, name in _BF16_FLAGS.items() if flag in flags)


def native_bf16() -> bool:
    """True where the processor computes bfloat16 natively."""
    return bool(bf16_features())


def fp32_only(precision: str, backend: str) -> str:
    """ "fp32" for `auto` or `fp32`; a clear refusal for a precision `backend` cannot run."""
    if precision in ("auto", "fp32"):
        return "fp32"
    hint = " (bf16: --backend openvino)" if precision == "bf16" else ""
    raise BackendError(f"the {backend} backend runs fp32 only, not {precision}{hint}")
