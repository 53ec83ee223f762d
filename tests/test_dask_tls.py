"""Mutual TLS for `--engine dask`: the guide's own commands (docs/dask.md), run on loopback.

The certificates are made by the guide's openssl block, the cluster is started by its
`dask scheduler`/`dask worker` lines and the batch is its `upscaler batch` line, with the
host, ports, folders and worker count substituted (`_guide`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, photo, run_cli, shrunk_bsds

pytest.importorskip("distributed")
if shutil.which("openssl") is None:
    pytest.skip("the guide makes its certificates with openssl", allow_module_level=True)

GUIDE = (ROOT / "docs" / "dask.md").read_text()
BIN = str(Path(sys.executable).parent)


def _block(name: str) -> str:
    """The fenced block between <!-- name --> and <!-- /name --> in docs/dask.md."""
    found = re.findall(rf"<!-- {name} -->\n```sh\n(.*?)```\n<!-- /{name} -->", GUIDE, re.S)
    assert len(found) == 1, f"docs/dask.md needs exactly one <!-- {name} --> block"
    return str(found[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **extra}


def _make_pki(folder: Path) -> Path:
    """Run the guide's certificate commands in `folder`; return the folder they fill."""
    subprocess.run(
        ["bash", "-e", "-c", _block("tls-pki")], cwd=folder, check=True, capture_output=True
    )
    return folder / "upscaler-tls"


class Guide:
    """The guide's commands with this test's host, ports and folders."""

    def __init__(self, pki: Path) -> None:
        self.pki, self.port = pki, _free_port()
        self.address = f"tls://127.0.0.1:{self.port}"

    def __call__(self, text: str) -> str:
        text = text.replace("10.0.0.1:8786", f"127.0.0.1:{self.port}")
        text = text.replace("--host 10.0.0.1 --port 8786", f"--host 127.0.0.1 --port {self.port}")
        text = text.replace("/etc/upscaler/tls", str(self.pki))
        text = text.replace("--nworkers 8", "--nworkers 1")
        for fixed in ("9000:9099", "9100:9199"):
            text = text.replace(fixed, str(_free_port()))
        return text


def _start(command: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["bash", "-c", command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def _client(guide: Guide, node: str = "cron") -> object:
    from distributed import Client
    from distributed.security import Security

    pki = guide.pki
    security = Security(
        tls_ca_file=str(pki / "ca.pem"),
        tls_client_cert=str(pki / f"{node}.pem"),
        tls_client_key=str(pki / f"{node}.key"),
        require_encryption=True,
    )
    return Client(guide.address, security=security, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_pki(tmp_path_factory.mktemp("admin"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates from another CA, made the same way."""
    return _make_pki(tmp_path_factory.mktemp("elsewhere"))


@pytest.fixture(scope="module")
def cluster(
    pki: Path, other_pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Guide]:
    """The guide's scheduler and worker (one process), plus two workers that try to join
    without a certificate and with one from another CA."""
    guide, logs = Guide(pki), tmp_path_factory.mktemp("logs")
    scheduler, worker = guide(_block("tls-cluster")).strip().splitlines()
    procs = [_start(scheduler, logs / "scheduler.log", _env())]
    intruder = f"dask worker {guide.address} --nworkers 1 --nthreads 1"
    other = (
        f"{intruder} --tls-ca-file {other_pki}/ca.pem --tls-cert {other_pki}/storage2.pem "
        f"--tls-key {other_pki}/storage2.key"
    )
    try:
        with _client(guide) as client:  # type: ignore[attr-defined]
            procs.append(_start(worker, logs / "worker.log", _env()))
            procs.append(_start(intruder, logs / "no-cert.log", _env()))
            procs.append(_start(other, logs / "other-ca.log", _env()))
            client.wait_for_workers(1, timeout=120)
        yield guide
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i, (name, small) in enumerate(shrunk_bsds(4)):
        small.save(root / f"{name}{'.png' if i % 2 else '.jpg'}")
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _guide_batch(guide: Guide, src: Path, out: Path) -> list[str]:
    line = guide(_block("tls-batch")).strip()
    line = line.replace("/mnt/photos-x3", str(out)).replace("/mnt/photos", str(src))
    return line.split()


@pytest.mark.slow
def test_the_guides_tls_cluster_upscales_as_a_local_run_does(
    cluster: Guide, photos: Path, tmp_path: Path
) -> None:
    local = run_cli("batch", photos, "-o", tmp_path / "local", "-q")
    assert local.returncode == 0, local.stderr
    command = _guide_batch(cluster, photos, tmp_path / "tls")
    assert command[0] == "upscaler"
    ran = subprocess.run(
        [f"{BIN}/upscaler", *command[1:]], capture_output=True, text=True, env=_env()
    )
    assert ran.returncode == 0, ran.stderr
    assert "4 done, 0 skipped, 0 failed" in ran.stderr and "warning" not in ran.stderr
    assert _files(tmp_path / "tls") == _files(tmp_path / "local")
    # only the worker with a certificate from the cluster's CA joined, and it speaks TLS
    with _client(cluster) as client:  # type: ignore[attr-defined]
        workers = client.scheduler_info()["workers"]
    assert len(workers) == 1 and all(a.startswith("tls://127.0.0.1:") for a in workers)


@pytest.mark.slow
def test_dasks_own_configuration_gives_the_certificate(
    cluster: Guide, photos: Path, tmp_path: Path
) -> None:
    pki = cluster.pki
    env = _env(
        DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(pki / "ca.pem"),
        DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(pki / "cron.pem"),
        DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(pki / "cron.key"),
    )
    args = ("batch", photos, "-o", tmp_path / "o", "--engine", "dask")
    ran = run_cli(*args, "--scheduler", cluster.address, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "4 done, 0 skipped, 0 failed" in ran.stderr
    assert len(list((tmp_path / "o").glob("*.*g"))) == 4


@pytest.mark.slow
def test_compare_joins_the_tls_cluster_too(cluster: Guide, tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    for name, small in shrunk_bsds(2):
        small.save(hr / f"{name}.png")
    tls = [x for k in ("ca", "cert", "key") for x in (f"--tls-{k}", _cron(cluster.pki, k))]
    args = ("compare", hr, "--backend", "bicubic", "-o", tmp_path / "r", "--engine", "dask")
    ran = run_cli(*args, "--scheduler", cluster.address, *tls)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "r" / "report.json").is_file()
    refused = run_cli(*args, "--scheduler", cluster.address)
    assert refused.returncode == 2 and "needs a certificate" in refused.stderr


def _refused(
    cluster: Guide, tmp_path: Path, *tls: object, env: dict[str, str] | None = None
) -> str:
    """stderr of a batch that must be refused: exit 2, one line, nothing written."""
    photo(16, 12).save(tmp_path / "a.png")
    args = ("batch", tmp_path / "a.png", "-o", tmp_path / "o", "--engine", "dask")
    ran = run_cli(*args, "--scheduler", cluster.address, *tls, env=env)
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr
    assert not (tmp_path / "o" / "a.png").exists()
    return ran.stderr


@pytest.mark.slow
def test_a_client_without_a_certificate_is_refused(cluster: Guide, tmp_path: Path) -> None:
    stderr = _refused(cluster, tmp_path)
    assert f"{cluster.address} needs a certificate signed by the cluster's CA" in stderr
    assert "--tls-ca, --tls-cert, --tls-key" in stderr


@pytest.mark.parametrize(
    ("trusts", "reason"),
    [
        ("own", "refused this client's certificate (not signed by the cluster's CA)"),
        ("other", "its certificate is not signed by the CA given (--tls-ca)"),
    ],
)
@pytest.mark.slow
def test_a_client_with_a_certificate_from_another_ca_is_refused(
    cluster: Guide, other_pki: Path, trusts: str, reason: str, tmp_path: Path
) -> None:
    ca = (cluster.pki if trusts == "own" else other_pki) / "ca.pem"
    tls = (
        "--tls-ca",
        ca,
        "--tls-cert",
        other_pki / "cron.pem",
        "--tls-key",
        other_pki / "cron.key",
    )
    stderr = _refused(cluster, tmp_path, *tls)
    assert f"cannot connect to the Dask scheduler at {cluster.address}: " in stderr
    assert reason in stderr


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("nothing.pem", "cron.pem", "cron.key"), "--tls-ca {pki}/nothing.pem: No such file"),
        pytest.param(
            ("cron.key", "cron.pem", "cron.key"),
            "--tls-ca {pki}/cron.key: not a PEM certificate",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ("ca.pem", "cron.key", "cron.key"),
            "--tls-cert {pki}/cron.key: not a PEM certificate",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ("ca.pem", "cron.pem", "storage1.key"),
            "--tls-key {pki}/storage1.key: not the key of",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ("ca.pem", "cron.pem", "ca.pem"),
            "--tls-key {pki}/ca.pem: not a PEM private key",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_a_wrong_file_is_named_before_anything_runs(
    pki: Path, files: tuple[str, str, str], message: str, tmp_path: Path
) -> None:
    nowhere = Guide(pki)  # no scheduler there: the files are checked first
    tls = [
        x
        for flag, name in zip(("--tls-ca", "--tls-cert", "--tls-key"), files, strict=True)
        for x in (flag, pki / name)
    ]
    assert message.format(pki=pki) in _refused(nowhere, tmp_path, *tls)


@pytest.mark.slow
def test_a_scheduler_without_workers_is_an_error_not_a_hang(pki: Path, tmp_path: Path) -> None:
    guide = Guide(pki)
    scheduler = guide(_block("tls-cluster")).strip().splitlines()[0]
    procs = [_start(scheduler, tmp_path / "scheduler.log", _env())]
    try:
        with _client(guide):
            pass  # the scheduler is up
        env = _env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
        tls = [x for k in ("ca", "cert", "key") for x in (f"--tls-{k}", _cron(pki, k))]
        stderr = _refused(guide, tmp_path, *tls, env=env)
    finally:
        _stop(procs)
    assert f"the Dask scheduler at {guide.address} has no workers (waited 2 s" in stderr


def _cron(pki: Path, kind: str) -> Path:
    return pki / {"ca": "ca.pem", "cert": "cron.pem", "key": "cron.key"}[kind]


@pytest.mark.slow
def test_plain_tcp_to_another_host_warns_once_unless_insecure(tmp_path: Path) -> None:
    photo(16, 12).save(tmp_path / "a.png")
    env = _env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    base = ("batch", tmp_path / "a.png", "-o", tmp_path / "o", "--engine", "dask", "--scheduler")
    far = run_cli(*base, "tcp://192.0.2.1:8786", env=env)  # TEST-NET-1: never a real host
    assert far.stderr.count("warning: tcp://192.0.2.1:8786 is plain TCP: anyone who can reach") == 1
    assert "docs/dask.md#mutual-tls" in far.stderr and far.returncode == 2
    trusted = run_cli(*base, "tcp://192.0.2.1:8786", "--insecure", env=env)
    assert trusted.returncode == 2 and "warning" not in trusted.stderr
    here = run_cli(*base, f"tcp://localhost:{_free_port()}", env=env)
    assert here.returncode == 2 and "warning" not in here.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--scheduler", "tcp://127.0.0.1:1", "--tls-ca", "ca.pem"),
            "are for a tls:// --scheduler",
        ),
        pytest.param(
            ("--tls-cert", "c.pem"), "are for a tls:// --scheduler", marks=pytest.mark.slow
        ),
        pytest.param(
            ("--scheduler", "tls://127.0.0.1:1", "--insecure"),
            "--insecure is for a plain tcp://",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_tls_options_that_do_not_go_together(
    options: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    ran = run_cli("batch", tmp_path / "a.png", "-o", tmp_path / "o", "--engine", "dask", *options)
    assert ran.returncode == 2 and message in ran.stderr


def test_the_readme_shows_the_tls_deployment() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Scale out with Dask", 1)[1].split("\n## ", 1)[0]
    assert "--scheduler tls://" in section and "tcp://" not in section
    assert "tcp://" not in GUIDE.split("**Plain TCP**", 1)[0].split("### Mutual TLS", 1)[1]
