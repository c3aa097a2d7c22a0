"""Per-block Q-Orca emission: every block file verifies with q-orca (its Gram
recomputed from the file equals the block's), the machines are 04's, and
the manifest maps blocks back to the selection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clustered_helpers import plant_a

from polygram import HEA_Rung2, MPSRung1, Rung3, verify_qorca
from polygram.clustered import BlockFormation, build_clustered_dictionary
from polygram.clustered.emit import emittable
from polygram.qorca import render_machine


@pytest.mark.parametrize(
    ("encoding", "cap"),
    [(MPSRung1(), 3), (Rung3(), 5), (HEA_Rung2(depth=1, n_qubits=2), 4)],
    ids=["mps", "rung3", "hea"],
)
def test_every_block_file_verifies(tmp_path: Path, encoding: object, cap: int) -> None:
    pytest.importorskip("q_orca")
    x, _, feats = plant_a()
    bf = BlockFormation("cosine", cosine_threshold=0.5, block_size_max=cap)
    cd = build_clustered_dictionary("PlantA", feats, x, encoding, bf)  # type: ignore[arg-type]
    out = cd.emit_qorca(tmp_path)
    assert list(out)[:-1] == [f"PlantA_b{b}" for b in range(cd.n_blocks)]
    for b, block in enumerate(cd.blocks):
        path = out[f"PlantA_b{b}"]
        text = path.read_text(encoding="utf-8")
        written = emittable(block)
        assert text[text.index("# machine") :] == render_machine(written)
        if written is not block:  # HEA, singleton clusters only: no tier invariant
            assert isinstance(encoding, HEA_Rung2) and "## invariants" not in text
        v = verify_qorca(path, dictionary=block)
        assert v.valid, v.errors
        assert v.gram_checked and v.gram_max_abs_diff is not None
        assert v.gram_max_abs_diff <= 1e-12
    man = json.loads(out["manifest"].read_text(encoding="utf-8"))
    assert man["encoding"] == type(encoding).__name__
    back = [i for blk in man["blocks"] for i in blk["indices"]]
    assert sorted(back) == list(range(30)) and back == cd.block_order.tolist()
    if isinstance(encoding, HEA_Rung2):  # some blocks keep the invariant, and it verifies
        assert any("## invariants" in p.read_text() for k, p in out.items() if k != "manifest")
    names = cd.feature_names
    for blk in man["blocks"]:
        assert [f["name"] for f in blk["features"]] == [names[i] for i in blk["indices"]]


def test_emission_overwrites_and_returns_given_paths(tmp_path: Path) -> None:
    x, _, feats = plant_a()
    cd = build_clustered_dictionary(
        "PlantA", feats, x, MPSRung1(), BlockFormation("cosine", 0.5, block_size_max=3)
    )
    first = cd.emit_qorca(str(tmp_path / "o"))
    again = cd.emit_qorca(tmp_path / "o")
    assert first == again
    assert all(isinstance(p, Path) for p in again.values())
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        p.name for p in again.values()
    )
    man = json.loads(again["manifest"].read_text(encoding="utf-8"))
    assert man["block_formation"] == {
        "strategy": "cosine",
        "cosine_threshold": 0.5,
        "block_size_max": 3,
        "co_firing_threshold": 0.3,
    }
    assert man["schema_version"] == 1
    cos = [e["cosine"] for e in man["cross_block_edges"]]
    assert np.allclose(cos, cd.cross_block_edge_arrays()["cosine"], atol=0)
