"""`upscaler backends`."""

from __future__ import annotations

import click

from .options import default_backend

__all__ = ["backends"]


@click.command(short_help="List the backends and whether they run here.")
def backends() -> None:
    """List the registered backends: factors, precision here, whether they can run here."""
    from .._plugins.precision import bf16_features
    from .._plugins.registry import describe_backends

    default = default_backend("cpu")
    for info in describe_backends():
        factors = ",".join(f"x{f}" for f in info.factors) or "-"
        state = "available" if info.problem is None else f"unavailable: {info.problem}"
        mark = "  (default)" if info.name == default else ""
        click.echo(
            f"{info.name:<12} {factors:<10} {info.precision or '-':<5} {state}  "
            f"[{info.distribution}]{mark}"
        )
    native = ", ".join(bf16_features()) or "none"
    click.echo(f"native bfloat16 on this CPU: {native}; --precision auto follows it")
    from .._plugins.weights import shipped_models

    by_model: dict[str, list[str]] = {}
    for factor in (2, 3, 4):
        for model in shipped_models(factor):
            by_model.setdefault(model, []).append(f"x{factor}")
    sets = "; ".join(f"{model} {','.join(f)}" for model, f in by_model.items())
    click.echo(f"shipped weights (onnx, openvino, keras): {sets}; --input-kind picks them")
