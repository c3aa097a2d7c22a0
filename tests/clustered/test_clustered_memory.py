"""The memory bound of a clustered import (spec 17 §17.14.3), tested at
N = 32768, d = 32: the peak RSS increase of ``from_sae_lens(clustered=True)``
+ ``gram()`` + the redundancy list stays below 700 MB, whereas any N×N array of
one byte per entry would need 1.07 GB.  Run in a fresh interpreter so the peak
is this import's own."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, resource
import numpy as np
from polygram.sae import SAEFeatureRecord, from_sae_lens
n, d = 32768, 32
rng = np.random.default_rng(0)
c = rng.standard_normal((n // 8, d)).astype(np.float32)
c /= np.linalg.norm(c, axis=1, keepdims=True)
w = np.repeat(c, 8, axis=0) + np.float32(0.05) * rng.standard_normal((n, d), dtype=np.float32)
w.flags.writeable = False
recs = {i: SAEFeatureRecord._trusted(i, f"f{i}", w[i]) for i in range(n)}  # loader views
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from polygram.clustered import BlockFormation
base = rss()
cd, rep = from_sae_lens(recs, list(range(n)), block_formation=BlockFormation("cosine", 0.9))
g = cd.gram()
red = cd.cross_block_redundant_pairs(0.9)
print(json.dumps({"extra": rss() - base, "n_blocks": cd.n_blocks, "n": cd.n_features,
                  "tier": rep.tier_preservation, "warn": rep.warnings[0]}))
"""


def test_clustered_import_memory_bound() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=900
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["n"] == 32768 and r["n_blocks"] >= 32768 // 8
    assert r["warn"].startswith("auto-promoted to clustered: N=32768")
    assert r["tier"] is not None
    assert r["extra"] < 700 * 2**20, f"peak RSS grew by {r['extra'] / 2**20:.0f} MB"
