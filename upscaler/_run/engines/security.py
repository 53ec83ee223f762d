"""Who may join the cluster: mutual TLS for `tls://` schedulers, a warning for plain TCP.

A Dask scheduler runs whatever function a client sends it on every worker, so reaching it is
running code on the storage servers. `tls://` addresses are joined with a certificate signed
by the cluster's CA (`--tls-ca/--tls-cert/--tls-key`, or Dask's `distributed.comm.tls`
configuration); the files are checked here first, so that a wrong one is a one-line error
naming it. `distributed` is imported only to build the client's `Security`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .base import EngineError

__all__ = ["Tls", "client_security", "connect_problem", "plain_tcp_warning", "tls_problem"]

#: Where the guide explains the TLS deployment.
GUIDE = "docs/dask.md#mutual-tls"
#: `Security` attributes of a client's files.
_ATTRS = {"ca": "tls_ca_file", "cert": "tls_client_cert", "key": "tls_client_key"}
#: Dask configuration keys of a client's files, with the names errors give them.
_CONFIG_KEYS = {
    "ca": "distributed.comm.tls.ca-file",
    "cert": "distributed.comm.tls.client.cert",
    "key": "distributed.comm.tls.client.key",
}


@dataclass(frozen=True)
class Tls:
    """A client's mutual-TLS files; those left None come from Dask's configuration."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def given(self) -> bool:
        return any((self.ca, self.cert, self.key))


def tls_problem(scheduler: str | None, tls: Tls | None, insecure: bool) -> str | None:
    """Why these TLS options do not go together with `scheduler`, or None."""
    tls_scheme = _scheme(scheduler) == "tls"
    if tls and tls.given() and not tls_scheme:
        return "--tls-ca, --tls-cert and --tls-key are for a tls:// --scheduler"
    if insecure and (not scheduler or tls_scheme):
        return "--insecure is for a plain tcp:// --scheduler"
    return None


def plain_tcp_warning(scheduler: str | None, insecure: bool) -> str | None:
    """The warning for a scheduler reached without TLS on another host, or None."""
    if insecure or not scheduler or _scheme(scheduler) == "tls" or _is_loopback(scheduler):
        return None
    return (
        f"{scheduler} is plain TCP: anyone who can reach the scheduler can run code on its "
        f"workers; use a tls:// scheduler (see {GUIDE}), or --insecure on a network you trust"
    )


def client_security(scheduler: str, tls: Tls | None) -> Any:
    """The `distributed.security.Security` to join `scheduler` with (None for tcp://).

    Raises EngineError naming the file when one is missing, unreadable or not what it
    should be, or when no certificate is given for a tls:// scheduler.
    """
    if _scheme(scheduler) != "tls":
        return None
    security: Any = importlib.import_module("distributed.security").Security
    tls, configured = tls or Tls(), security()  # the second reads Dask's configuration
    found = {k: getattr(tls, k) or getattr(configured, attr, None) for k, attr in _ATTRS.items()}
    files = {k: str(path) for k, path in found.items() if path}
    if len(files) < len(_ATTRS):
        missing = ", ".join(f"--tls-{k}" for k in _ATTRS if k not in files)
        raise EngineError(
            f"{scheduler} needs a certificate signed by the cluster's CA: give {missing} "
            f"(or Dask's distributed.comm.tls configuration; see {GUIDE})"
        )
    labels = {k: f"--tls-{k}" if getattr(tls, k) else _CONFIG_KEYS[k] for k in _ATTRS}
    _check_files(files, labels)
    return security(
        tls_ca_file=files["ca"],
        tls_client_cert=files["cert"],
        tls_client_key=files["key"],
        require_encryption=True,
    )


def _check_files(files: dict[str, str], labels: dict[str, str]) -> None:
    import ssl  # here, not at the top: a local run needs none of it (start-up time)

    for k, path in files.items():
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise EngineError(f"{labels[k]} {path}: {exc.strerror or exc}") from exc
    for k in ("ca", "cert"):
        try:
            ssl.create_default_context(cafile=files[k])
        except ssl.SSLError as exc:
            raise EngineError(f"{labels[k]} {files[k]}: not a PEM certificate") from exc
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(files["cert"], files["key"])
    except ssl.SSLError as exc:
        reason = (
            f"not the key of {files['cert']}"
            if "KEY_VALUES_MISMATCH" in str(exc)
            else "not a PEM private key (or it needs a passphrase)"
        )
        raise EngineError(f"{labels['key']} {files['key']}: {reason}") from exc


def connect_problem(scheduler: str, exc: BaseException) -> str:
    """A one-line reason why joining `scheduler` failed, in the user's terms."""
    text = str(exc)
    if isinstance(exc, MemoryError):  # a frame length read from something else's bytes
        reason = "what answers there does not speak Dask's protocol (not a scheduler?)"
    elif "certificate does not match" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = "its certificate is not signed by the CA given (--tls-ca)"
    elif "UNKNOWN_CA" in text or "BAD_CERTIFICATE" in text or "CERTIFICATE_REQUIRED" in text:
        reason = "it refused this client's certificate (not signed by the cluster's CA)"
    elif "SSLEOFError" in text or "EOF occurred in violation" in text:  # TLS 1.3: after
        reason = (  # the handshake, the server checks the client's certificate and hangs up
            "it closed the connection, most likely because it refused this client's "
            "certificate (not signed by the cluster's CA)"
        )
    elif "EXPIRED" in text.upper():
        reason = "a certificate has expired"
    elif "TLS expects a" in text or "WRONG_VERSION_NUMBER" in text:
        reason = "the scheduler and this client do not agree on TLS (tls:// against tcp://?)"
    else:
        reason = " ".join(text.split()) or type(exc).__name__
    return f"cannot connect to the Dask scheduler at {scheduler}: {reason}"


def _scheme(address: str | None) -> str | None:
    if not address:
        return None
    return address.split("://", 1)[0].lower() if "://" in address else "tcp"


def _is_loopback(address: str) -> bool:
    """True when every address the scheduler's host name resolves to is loopback."""
    import ipaddress
    import socket

    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)
