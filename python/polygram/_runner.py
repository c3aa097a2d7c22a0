"""The stand-alone runner script ``Experiment.materialize`` writes: it rebuilds
the dictionary with every knob (θ, θ_amp, ψ_aux included) and the sweep
literally, runs it and saves ``<name>_result.npz``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary


def _array(v: np.ndarray) -> str:
    return f"np.array({np.asarray(v, dtype=float).tolist()!r})"


def render_runner(
    *,
    name: str,
    dictionary: Dictionary,
    sweep: Mapping[str, np.ndarray],
    target_pair: tuple[str, str],
    measures: Sequence[str],
    assertions: Sequence[str],
    seed: int | None,
) -> str:
    """The script for the Experiment with these fields (taken field by field so
    this module need not import ``experiment``, which imports it)."""
    d = dictionary
    feats = []
    for f in d.features:
        theta = "None" if f.theta is None else _array(f.theta)
        feats.append(
            f"        Feature({f.name!r}, {f.cluster!r}, beta={f.beta!r}, alpha={f.alpha!r}, "
            f"gamma={f.gamma!r}, phi={f.phi!r}, theta={theta}, theta_amp={f.theta_amp!r}, "
            f"psi_aux={f.psi_aux!r}),"
        )
    hierarchy = {k: list(v) for k, v in d.hierarchy.items()}
    sweep_lines = [f"        {k!r}: {_array(v)}," for k, v in sweep.items()]
    return "\n".join(
        [
            f'"""Re-run the Polygram experiment {name!r} (written by materialize)."""',
            "",
            "from pathlib import Path",
            "",
            "import numpy as np",
            "",
            f"from polygram import Dictionary, Experiment, Feature, {type(d.encoding).__name__}",
            "",
            "",
            "def build() -> Experiment:",
            "    features = [",
            *feats,
            "    ]",
            f"    dictionary = Dictionary({d.name!r}, features, {hierarchy!r}, {d.encoding!r})",
            "    sweep = {",
            *sweep_lines,
            "    }",
            "    return Experiment(",
            f"        name={name!r},",
            "        dictionary=dictionary,",
            f"        target_pair={target_pair!r},",
            "        sweep=sweep,",
            f"        measures={measures!r},",
            f"        assertions={assertions!r},",
            f"        seed={seed!r},",
            "    )",
            "",
            "",
            'def main(output_dir: str | Path = ".") -> Path:',
            "    result = build().run()",
            f"    return result.save(Path(output_dir) / {name + '_result.npz'!r})",
            "",
            "",
            'if __name__ == "__main__":',
            "    print(main())",
            "",
        ]
    )
