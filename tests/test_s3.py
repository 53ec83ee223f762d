"""Batches on shared storage: s3:// URLs against an S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import photo, run_cli, run_cli_without, shrunk_bsds

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An S3 server on a free port of 127.0.0.1; the environment that points s3fs at it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    nowhere = str(tmp_path_factory.mktemp("aws") / "none")
    yield {
        **os.environ,
        "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",  # fsspec's config, read by s3fs
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never probe 169.254.169.254
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
    }
    server.stop()


@pytest.fixture()
def bucket(endpoint: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh bucket (named after the test) and an s3fs filesystem on it."""
    import s3fs

    fs = s3fs.S3FileSystem(
        endpoint_url=endpoint["FSSPEC_S3_ENDPOINT_URL"], key="testing", secret="testing"
    )
    name = re.sub("[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    fs.mkdir(name)
    yield fs, name
    fs.rm(name, recursive=True)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A few real photos (BSDS500 shrunk by 3), a subfolder, a bad file, a text and a hidden file."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i, (name, small) in enumerate(shrunk_bsds(4)):
        small.save(root / ("sub" if i == 0 else "") / f"{name}{'.png' if i % 2 else '.jpg'}")
    photo(30, 20, "RGBA").save(root / "alpha.png")
    (root / "broken.png").write_bytes(b"not a picture")
    (root / "notes.txt").write_text("not an image\n")
    photo(10, 10).save(root / ".hidden.png")
    return root


def _upload(fs: Any, folder: Path, prefix: str) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            fs.put_file(str(p), f"{prefix}/{p.relative_to(folder).as_posix()}")


def _records(report: Path, src: str, dst: str) -> list[dict[str, Any]]:
    """Records without timings, with the input and output prefixes replaced, sorted."""
    images = json.loads(report.read_text())["images"]
    for r in images:
        r.pop("seconds")
        r["src"], r["dst"] = r["src"].replace(src, "IN"), r["dst"].replace(dst, "OUT")
    return sorted(images, key=lambda r: r["src"])


def _objects(fs: Any, prefix: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {k[len(prefix) + 1 :]: fs.cat_file(k) for k in sorted(fs.find(prefix))}


def _local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.mark.parametrize(
    "engine",
    [("--engine", "local"), ("--jobs", "2"), ("--engine", "dask", "--workers", "2")],
    ids=["local", "local-jobs-2", "dask"],
)
@pytest.mark.slow
def test_s3_batch_matches_a_local_run(
    engine: tuple[str, ...], photos: Path, bucket: Any, endpoint: dict[str, str], tmp_path: Path
) -> None:
    fs, name = bucket
    _upload(fs, photos, f"{name}/in")
    local = run_cli("batch", photos, "-o", tmp_path / "local", "--report", tmp_path / "local.json")
    src, out = f"s3://{name}/in", f"s3://{name}/out"
    ran = run_cli("batch", src, "-o", out, *engine, "--report", tmp_path / "s3.json", env=endpoint)
    assert local.returncode == ran.returncode == 1, ran.stderr
    assert f"{src}/broken.png: not a recognised image file" in ran.stderr.splitlines()
    assert "5 done, 0 skipped, 1 failed, 1 non-image files ignored" in ran.stderr
    assert _records(tmp_path / "s3.json", src, out) == _records(
        tmp_path / "local.json", str(photos), str(tmp_path / "local")
    )
    objects = _objects(fs, f"{name}/out")
    assert objects == _local_files(tmp_path / "local")  # the same bytes, and no temporary keys
    for data in objects.values():
        Image.open(io.BytesIO(data)).load()
    again = run_cli("batch", src, "-o", out, *engine, env=endpoint)
    assert "0 done, 5 skipped, 1 failed" in again.stderr
    assert _objects(fs, f"{name}/out") == objects


@pytest.mark.slow
def test_s3_inputs_to_a_local_folder_and_back(
    photos: Path, bucket: Any, endpoint: dict[str, str], tmp_path: Path
) -> None:
    fs, name = bucket
    (photos / "broken.png").unlink()
    _upload(fs, photos, f"{name}/in")
    down = run_cli(
        "batch", f"s3://{name}/in", "-o", tmp_path / "down", "--engine", "dask", env=endpoint
    )
    assert down.returncode == 0, down.stderr
    up = run_cli("batch", photos, "-o", f"s3://{name}/up", env=endpoint)
    assert up.returncode == 0, up.stderr
    assert _objects(fs, f"{name}/up") == _local_files(tmp_path / "down")
    assert sorted(_local_files(tmp_path / "down")) == [
        "100039.png",
        "100099.jpg",
        "10081.png",
        "alpha.png",
        "sub/100007.jpg",
    ]


@pytest.mark.slow
def test_missing_input_and_output_inside_input(bucket: Any, endpoint: dict[str, str]) -> None:
    _, name = bucket
    missing = run_cli("batch", f"s3://{name}/nothing", "-o", f"s3://{name}/out", env=endpoint)
    assert missing.returncode == 2 and not _objects(bucket[0], f"{name}/out")
    assert f"s3://{name}/nothing: no such file or folder" in missing.stderr
    bucket[0].pipe_file(f"{name}/in/a.txt", b"x")
    inside = run_cli("batch", f"s3://{name}/in", "-o", f"s3://{name}/in/out", env=endpoint)
    assert inside.returncode == 2 and "is inside input folder" in inside.stderr


@pytest.mark.slow
def test_unreachable_storage_is_a_reason_not_a_traceback(endpoint: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {
        **endpoint,
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = run_cli("batch", "s3://bucket/in", "-o", "s3://bucket/out", env=env)
    assert result.returncode == 2, result.stderr  # as a missing mount: the run cannot start
    assert "s3://bucket/in: EndpointConnectionError: Could not connect" in result.stderr
    assert "Traceback" not in result.stderr


def test_s3_url_without_the_s3_extra_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli_without("s3fs", "batch", "s3://bucket/in", "-o", tmp_path / "o")
    assert result.returncode == 2, result.stderr
    assert "s3:// URLs need `pip install upscaler[s3]`" in result.stderr


@pytest.mark.parametrize("where", ["input", "output"])
@pytest.mark.slow
def test_credentials_in_an_s3_url_are_refused_and_never_shown(
    where: str, bucket: Any, endpoint: dict[str, str], tmp_path: Path
) -> None:
    _, name = bucket
    secret_url = f"s3://AKIAEXAMPLEKEYID7:wJalrXUtnFEMI-secret@{name}/in"
    src, dst = (secret_url, tmp_path / "o") if where == "input" else (tmp_path, secret_url)
    photo(8, 8).save(tmp_path / "a.png")
    ran = run_cli("batch", src, "-o", dst, "-v", env=endpoint)
    assert ran.returncode == 2
    assert f"s3://***@{name}/in: s3fs does not read credentials from the URL" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1
    assert "wJalrXUtnFEMI" not in ran.stderr + ran.stdout
    assert "AKIAEXAMPLEKEYID7" not in ran.stderr + ran.stdout


@pytest.mark.slow
def test_reports_and_lines_never_show_the_environments_keys(
    bucket: Any, endpoint: dict[str, str], photos: Path, tmp_path: Path
) -> None:
    """An image fails with a storage error that quotes the key (as some botocore errors
    quote the credential scope): the line on stderr and the three reports mask it."""
    fs, name = bucket
    _upload(fs, photos, f"{name}/in")
    key_id = "AKIAQUOTEDKEY0042"
    fs.pipe_file(f"{name}/in/{key_id}.png", b"not a picture")  # its name quotes the key
    env = {**endpoint, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": "s3cr3t-" * 3}
    for report in ("r.json", "r.csv", "r.html"):
        ran = run_cli(
            "batch",
            f"s3://{name}/in",
            "-o",
            tmp_path / report,
            "-v",
            "--backend",
            "bicubic",
            "--report",
            tmp_path / "reports" / report,
            "--overwrite",
            env=env,
        )
        assert ran.returncode == 1, ran.stderr
        assert "s3://" in ran.stderr and "***.png" in ran.stderr
        text = (tmp_path / "reports" / report).read_text() + ran.stderr + ran.stdout
        assert key_id not in text and "s3cr3t-" not in text
