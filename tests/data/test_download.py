"""The real download code against a local HTTP server on 127.0.0.1 (no outside host is reachable)."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading

import pytest

from digitrec.data import dataset as datamod
from digitrec.data.download import SHA256, download_file
from digitrec.errors import DigitrecError


@pytest.fixture()
def mirror(tmp_path, mnist_dir):
    """Three mirrors on one local server: /dead/ (404), /bad/ (wrong bytes), /good/ (the real files)."""
    root = tmp_path / "www"
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    for name in [n for n in SHA256 if n.startswith("t10k")]:  # the test split is enough here
        real = gzip.decompress((mnist_dir / f"{name}.gz").read_bytes())
        (root / "good" / f"{name}.gz").write_bytes(gzip.compress(real, compresslevel=1))
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(real[:-1] + b"\x01", compresslevel=1))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {k: f"{base}/{k}/" for k in ("dead", "bad", "good")}
    server.shutdown()


def test_falls_back_across_mirrors_and_checks_sha256(tmp_path, mirror):
    dest = tmp_path / "cache"
    path = download_file("t10k-labels-idx1-ubyte", dest, mirrors=[mirror["dead"], mirror["bad"], mirror["good"]])
    assert path == dest / "t10k-labels-idx1-ubyte.gz"
    assert [p.name for p in dest.iterdir()] == [path.name]  # no temporary files left


def test_every_mirror_bad_is_one_clear_error(tmp_path, mirror):
    dest = tmp_path / "cache"
    with pytest.raises(DigitrecError, match="could not download t10k-images-idx3-ubyte:.*checksum mismatch"):
        download_file("t10k-images-idx3-ubyte", dest, mirrors=[mirror["dead"], mirror["bad"]])
    assert not dest.exists() or list(dest.iterdir()) == []


def test_load_mnist_downloads_missing_files(tmp_path, mirror, monkeypatch):
    import digitrec.data.download as dl

    monkeypatch.setattr(dl, "MIRRORS", (mirror["dead"], mirror["good"]))
    ds = datamod.load_mnist("test", tmp_path / "fresh")
    assert len(ds) == 10000
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
