"""Ctrl-C stops a long Rust scan between chunks (the GIL is released inside)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from polygram import Cancellation, Dictionary, Feature, HEA_Rung2

    enc = HEA_Rung2(depth=3, n_qubits=4)
    feats = [Feature(n, c, beta=0.1 * i) for i, (n, c) in
             enumerate([("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")])]
    d = Dictionary("Big", feats, {"a": ["a1", "a2"], "b": ["b1", "b2"]}, enc)
    knobs = [f"b1.theta[0,{l},{q}]" for l, q in ((0, 0), (1, 1), (2, 2), (2, 3))]
    c = Cancellation(d, ("a1", "b1"), knobs=knobs, optimize={"max_steps": 80}, lean=True)
    print("started", flush=True)
    t = time.perf_counter()
    try:
        c.run()
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - t:.2f}s", flush=True)
        sys.exit(7)
    sys.exit(0)
    """
)


def test_ctrl_c_interrupts_a_long_grid() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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
    assert waited < 30  # far less than the full 41M-point scan
