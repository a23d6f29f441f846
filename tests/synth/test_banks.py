"""Synthetic training banks: drawn once, read back from the cache, redrawn when damaged."""

from __future__ import annotations

import numpy as np

from digitrec.util import NOT_A_DIGIT


def test_a_bank_is_cached_and_a_damaged_cache_is_redrawn(mnist_test, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from digitrec.synth.banks import nondigit_bank, styled_bank

    source = mnist_test.subset(np.arange(600))
    first = nondigit_bank(40, source, seed=3, tag="t")
    files = list((tmp_path / "digitrec" / "synthetic").glob("nondigits-t-40-*.npz"))
    assert len(files) == 1 and len(first) == 40 and (first.labels == NOT_A_DIGIT).all()
    assert np.array_equal(nondigit_bank(40, source, seed=3, tag="t").images, first.images)  # read back
    files[0].write_bytes(b"damaged")
    assert np.array_equal(nondigit_bank(40, source, seed=3, tag="t").images, first.images)  # drawn again
    assert not np.array_equal(nondigit_bank(40, source, seed=4, tag="t").images, first.images)
    styled = styled_bank(60, source, seed=0, tag="t")
    assert len(styled) == 60 and set(styled.labels.tolist()) <= {0, 1, 2, 4, 7, 9}
