"""The Rust kernels refuse every size they cannot hold with a specific
exception, never a panic or an abort (issue 15's list for ``polygram._core``),
release the GIL and stop on Ctrl-C at every entry point."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from polygram import _core
from polygram.errors import KernelError, MemoryBudgetError

#: the seed README quickstart: two dogs (β = −0.5), two birds (β = +0.5)
QUICK = np.array([[0.0, -0.5, 0.0, 0.0]] * 2 + [[0.0, 0.5, 0.0, 0.0]] * 2)


def mps() -> _core.Encoder:
    return _core.Encoder("mps")


# ------------------------------------------------------------- encoder sizes
def test_a_depth_that_overflowed_the_width_is_refused() -> None:
    # 2**60 layers used to wrap the knob width to 0 and panic
    with pytest.raises(KernelError, match=r"depth: got 1152921504606846976; allowed 1\.\.=1024"):
        _core.Encoder("hea", n_qubits=16, depth=2**60)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_qubits": 21}, r"n_qubits: got 21; allowed 1\.\.=20"),
        ({"n_qubits": -1}, r"n_qubits: got -1; expected an integer"),
        ({"depth": 10**30}, r"depth: got 10{30}; expected an integer"),
        ({"depth": True}, r"depth: got True; expected an integer >= 0"),
        ({"depth": 1.5}, r"depth: got 1.5; expected an integer"),
        ({"rotations": ["Rz"] * 17}, r"rotations: got 17 rotations; allowed 1\.\.=16"),
    ],
)
def test_encoder_arguments_are_checked(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(KernelError, match=match):
        _core.Encoder("hea", **kwargs)  # type: ignore[arg-type]


def test_the_caps_are_exported_and_used_by_hea_rung2() -> None:
    from polygram import HEA_Rung2
    from polygram.errors import DictionaryError

    assert (_core.HEA_MAX_QUBITS, _core.HEA_MAX_DEPTH, _core.HEA_MAX_ROTATIONS) == (20, 1024, 16)
    with pytest.raises(DictionaryError, match=r"HEA_Rung2\.depth: got 1000000; must be an int"):
        HEA_Rung2(depth=10**6, n_qubits=20)
    HEA_Rung2(depth=_core.HEA_MAX_DEPTH, n_qubits=20)


def test_states_of_20_qubits_for_20000_features_are_refused() -> None:
    # 20000 × 2^20 amplitudes = 335 GB: used to abort ("memory allocation failed")
    enc = _core.Encoder("hea", n_qubits=20, depth=1)
    table = np.zeros((20_000, enc.width))
    for kernel in (enc.states, enc.gram):
        with pytest.raises(MemoryBudgetError, match=r"needs \d+ bytes"):
            kernel(table)
    # the Schmidt ranks hold one state per worker, not all of them
    assert (
        _core.Encoder("hea", n_qubits=3, depth=1).schmidt_ranks(np.zeros((5, 3))).tolist()
        == [1] * 5
    )


# ---------------------------------------------------------------- scan sizes
def scan(n_axes: int, values: int = 2) -> _core.Scan:
    return _core.Scan(
        mps(),
        QUICK,
        [[3]] * n_axes,
        [np.linspace(0, 1, values)] * n_axes,
        [0, 0, 1, 1],
        2,
    )


@pytest.mark.parametrize("n_axes", [40, 63])
def test_scans_with_too_many_axes_are_refused(n_axes: int) -> None:
    # 63 axes used to panic ("Shape too large"), 40 to abort on allocation
    with pytest.raises(KernelError, match=rf"axes: got {n_axes} axes; allowed at most 32"):
        scan(n_axes)


def test_a_grid_beyond_the_memory_budget_is_refused_before_allocating() -> None:
    s = scan(_core.SCAN_MAX_AXES)  # 2^32 points
    with pytest.raises(MemoryBudgetError, match="a grid of 4294967296 points needs"):
        s.grid((0, 2), True)
    with pytest.raises(MemoryBudgetError, match="a sweep of 4294967296 points"):
        s.sweep((0, 2))
    # 2^20 values on each of 4 axes: 2^80 points do not fit a 64-bit count
    with pytest.raises(MemoryBudgetError, match="more points than an address space"):
        scan(4, 2**20)


@pytest.mark.parametrize("n_clusters", [2**62, 10**11])
def test_cluster_counts_are_capped(n_clusters: int) -> None:
    # 2**62 used to panic (capacity overflow), 10**11 to abort
    with pytest.raises(KernelError, match=rf"n_clusters: got {n_clusters}; allowed at most"):
        _core.Scan(mps(), QUICK, [[3]], [np.zeros(2)], [0, 0, 1, 1], n_clusters)


@pytest.mark.parametrize(
    ("clusters", "target", "match"),
    [
        ([0, 0, 1, -1], (0, 2), r"clusters\[3\]: got -1"),
        ([0, 0, 1, 1.5], (0, 2), r"clusters\[3\]: got 1.5"),
        ([0, 0, 1, 1], (0, -2), r"target\[1\]: got -2"),
        ([0, 0, 1, 1], (0, 9), r"target: \(0, 9\) outside 0\.\.4"),
    ],
)
def test_scan_indices_are_checked(
    clusters: list[object], target: tuple[int, int], match: str
) -> None:
    with pytest.raises(KernelError, match=match):
        _core.Scan(mps(), QUICK, [[3]], [np.zeros(2)], clusters, 2).grid(target, True)  # type: ignore[arg-type]


# ---------------------------------------------------------------- pair graph
def test_the_all_pairs_graph_of_a_large_input_is_refused() -> None:
    # threshold −1 over 2^17 rows asks for 8.6e9 edges (275 GB): used to abort
    rows = np.ones((2**17, 1), dtype=np.float32)
    with pytest.raises(MemoryBudgetError, match=r"threshold: .* edges; the memory headroom"):
        _core.cosine_pair_graph(rows, -1.0)


def test_rows_with_norm_above_float32_max_are_not_zeroed() -> None:
    # row 0's norm, 3e38·√2, exceeds float32's 3.4e38: it used to become inf and zero the row
    big = np.array([[3e38, 3e38], [1.0, 1.0], [1.0, -1.0]], dtype=np.float32)
    assert _core.cosine_pair_graph(big, 0.99).tolist() == [[0, 1]]


# ------------------------------------------------------------- memory budget
def test_the_budget_is_one_home() -> None:
    from polygram._budget import headroom, result_budget

    budget, source = _core.memory_budget()
    assert budget == result_budget() <= headroom() == _core.memory_headroom()[0]
    assert source
    assert result_budget(1000) == 1000


SWEEP_UNDER_ULIMIT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from polygram import Dictionary, Experiment, Feature
    from polygram.errors import MemoryBudgetError
    feats = [Feature(n, c, beta=b) for n, c, b in
             [("a", "x", -0.5), ("b", "x", -0.5), ("c", "y", 0.5), ("d", "y", 0.5)]]
    d = Dictionary("U", feats, {"x": ["a", "b"], "y": ["c", "d"]})
    sweep = {"a.phi": np.linspace(0, 1, 10_000), "c.phi": np.linspace(0, 1, 1_000)}
    try:
        Experiment(name="U", dictionary=d, target_pair=("a", "c"), sweep=sweep).run()
    except MemoryBudgetError as e:
        print("refused:", e)
        sys.exit(3)
    """
)


def test_a_ten_million_point_sweep_under_ulimit_is_refused() -> None:
    # used to abort the interpreter: the budget ignored RLIMIT_AS
    r = subprocess.run(
        [sys.executable, "-c", SWEEP_UNDER_ULIMIT], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert "address-space limit (RLIMIT_AS)" in r.stdout, r.stdout


# ------------------------------------------------- GIL release and Ctrl-C
def long_hea_gram() -> None:
    enc = _core.Encoder("hea", n_qubits=18, depth=64, rotations=["Ry", "Rz"])
    enc.gram(np.full((2, enc.width), 0.3))


def test_encoder_kernels_release_the_gil() -> None:
    t = threading.Thread(target=long_hea_gram)
    t.start()
    ticks = 0
    while t.is_alive():
        ticks += 1
        time.sleep(0.005)
    t.join()
    assert ticks > 5  # the main thread ran while the kernel worked


INTERRUPTED = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from polygram import _core
    enc = _core.Encoder("hea", n_qubits=20, depth=1024, rotations=["Ry", "Rz"])
    table = np.full((4, enc.width), 0.3)
    calls = {{
        "gram": lambda: enc.gram(table),
        "states": lambda: enc.states(table),
        "schmidt_ranks": lambda: enc.schmidt_ranks(table),
        "gram_batch": lambda: enc.gram_batch(table[None]),
        "scan": lambda: _core.Scan(enc, table, [[0]], [np.linspace(0, 1, 10)], [0, 0, 1, 1], 2),
    }}
    print("started", flush=True)
    t = time.perf_counter()
    try:
        calls[{name!r}]()
    except KeyboardInterrupt:
        print(f"interrupted after {{time.perf_counter() - t:.2f}}s", flush=True)
        sys.exit(7)
    sys.exit(0)
    """
)


@pytest.mark.parametrize("name", ["gram", "states", "schmidt_ranks", "gram_batch", "scan"])
def test_ctrl_c_stops_every_encoder_entry_point(name: str) -> None:
    # HEA_Rung2(depth=1024, n_qubits=20): minutes per state; Ctrl-C acts within a layer
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED.format(name=name)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.0)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, (out, err)
    assert time.perf_counter() - start < 10
