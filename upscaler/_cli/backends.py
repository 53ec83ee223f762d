"""`upscaler backends`."""

from __future__ import annotations

import click

from .options import default_backend

__all__ = ["backends"]


@click.command(short_help="List the backends and whether they run here.")
def backends() -> None:
    """List the registered backends: factors, precision here, whether they can run here."""
    from .._plugins.precision import bf16_features
    from .._plugins.registry import backend_models, describe_backends

    default = default_backend("cpu")
    infos = describe_backends()
    for info in infos:
        factors = ",".join(f"x{f}" for f in info.factors) or "-"
        state = "available" if info.problem is None else f"unavailable: {info.problem}"
        mark = "  (default)" if info.name == default else ""
        click.echo(
            f"{info.name:<12} {factors:<10} {info.precision or '-':<5} {state}  "
            f"[{info.distribution}]{mark}"
        )
    native = ", ".join(bf16_features()) or "none"
    click.echo(f"native bfloat16 on this CPU: {native}; --precision auto follows it")
    by_sets: dict[str, list[str]] = {}  # the backends with weights of their own, by weights
    for info in infos:
        by_model: dict[str, list[str]] = {}
        for factor in info.factors:
            for model in backend_models(info.name, factor):
                by_model.setdefault(model, []).append(f"x{factor}")
        if by_model:
            sets = "; ".join(f"{model} {','.join(f)}" for model, f in by_model.items())
            by_sets.setdefault(sets, []).append(info.name)
    for sets, names in by_sets.items():
        click.echo(f"weights of {', '.join(names)}: {sets}; --input-kind picks them")
