"""Ctrl-C stops a long pair-graph build between row chunks (GIL released)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from polygram.compression.panels import cosine_pair_graph

    rows = np.random.default_rng(0).standard_normal((40000, 512)).astype(np.float32)
    print("started", flush=True)
    t = time.perf_counter()
    try:
        cosine_pair_graph(rows, 0.3)
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - t:.2f}s", flush=True)
        sys.exit(7)
    sys.exit(0)
    """
)


def test_ctrl_c_interrupts_the_pair_graph() -> None:
    # two threads: the full graph then takes seconds even on a many-core machine
    env = {**os.environ, "POLYGRAM_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.0)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    waited = time.perf_counter() - start
    assert proc.returncode == 7, (out, err)
    assert "interrupted after" in out
    assert waited < 5  # the whole graph takes ~10 s on two cores
