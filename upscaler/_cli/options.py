"""Option groups and parameter types that several commands share."""

from __future__ import annotations

import re
from typing import Any

import click

from .._defaults import DEFAULT_ENGINE, ENGINES

__all__ = [
    "BoxType",
    "Location",
    "default_backend",
    "engine_options",
    "factor_option",
    "require_extra",
    "require_keras",
    "take_tls",
]


class Location(click.ParamType):  # type: ignore[type-arg]
    """A local path (as Path, checked like `base`) or a URL such as s3://bucket/prefix (str)."""

    name = "path_or_url"

    def __init__(self, base: click.Path) -> None:
        self.base = base

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> object:
        if isinstance(value, str) and "://" in value:
            return value
        return self.base.convert(value, param, ctx)  # type: ignore[arg-type]


class BoxType(click.ParamType):  # type: ignore[type-arg]
    """WxH, two positive integers (e.g. 3840x2160)."""

    name = "WxH"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"([0-9]{1,9})[xX]([0-9]{1,9})", str(value))  # ASCII digits only
        if not match or int(match[1]) == 0 or int(match[2]) == 0:
            self.fail(f"{value!r} is not WxH with two positive integers (e.g. 3840x2160)")
        return int(match[1]), int(match[2])


def default_backend(device: str) -> str:
    """The backend that runs when --backend is not given (the plugins rank themselves)."""
    from .._errors import BackendError
    from .._plugins.registry import default_backend

    try:
        return default_backend(device)
    except BackendError as exc:
        raise click.UsageError(str(exc)) from exc


def engine_options(command: Any) -> Any:
    """--engine, --scheduler and --workers, shared by `batch` and `compare`."""
    for option in reversed(_ENGINE_OPTIONS):
        command = option(command)
    return command


factor_option = click.option(
    "--factor",
    type=click.Choice(["2", "3", "4"]),
    default="3",
    show_default=True,
    help="Upscaling factor.",
)


_ENGINE_OPTIONS = [
    click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="Where images are processed: here, or on a Dask cluster "
        "(`pip install upscaler[dask]`).",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="With --engine dask: join the cluster of this scheduler, e.g. tls://HOST:8786 "
        "with --tls-ca/--tls-cert/--tls-key [default: start a local cluster].",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="With --engine dask and no --scheduler: local worker processes [default: cores].",
    ),
    click.option(
        "--tls-ca",
        metavar="FILE",
        help="With a tls:// --scheduler: the cluster's CA certificate (PEM) "
        "[default: Dask's distributed.comm.tls.ca-file].",
    ),
    click.option(
        "--tls-cert",
        metavar="FILE",
        help="With a tls:// --scheduler: this client's certificate, signed by that CA "
        "[default: Dask's distributed.comm.tls.client.cert].",
    ),
    click.option(
        "--tls-key",
        metavar="FILE",
        help="With a tls:// --scheduler: the private key of --tls-cert "
        "[default: Dask's distributed.comm.tls.client.key].",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Join a plain tcp:// scheduler on another host without the warning that anyone "
        "who can reach it can run code on its workers.",
    ),
]


def take_tls(options: dict[str, Any]) -> Any:
    """Take --tls-ca/--tls-cert/--tls-key out of `options`, as a `Tls`."""
    from .._run.engines.security import Tls

    return Tls(options.pop("tls_ca"), options.pop("tls_cert"), options.pop("tls_key"))


def require_keras() -> None:
    require_extra("keras", ("keras", "tensorflow"))


def require_extra(extra: str, modules: tuple[str, ...]) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.UsageError(
            f"needs `pip install upscaler[{extra}]` ({', '.join(missing)} not installed)"
        )
