"""Verify an emitted machine with q-orca's own parser, verifier and Gram helpers
(spec 04 §4.8)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = ["QorcaVerification", "verify_qorca"]

GRAM_TOLERANCE = 1e-12


@dataclass(frozen=True)
class QorcaVerification:
    """Outcome of :func:`verify_qorca`.  ``errors``/``warnings`` are
    ``(code, message)`` pairs; ``valid`` is False when any error exists."""

    valid: bool
    errors: tuple[tuple[str, str], ...]
    warnings: tuple[tuple[str, str], ...]
    n_machines: int
    layout: str | None
    gram: np.ndarray | None
    gram_checked: bool
    gram_max_abs_diff: float | None

    def __bool__(self) -> bool:
        return self.valid


_AMP_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$")


def amp_table(text: str) -> list[tuple[str, float, float]]:
    """Rows ``(concept, theta_amp, psi_aux)`` of a Rung3 ``## amp branch`` section."""
    rows: list[tuple[str, float, float]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## amp branch"
            continue
        m = _AMP_ROW.match(line) if inside else None
        if m and m.group(1) != "concept" and not set(m.group(1)) <= {"-"}:
            rows.append((m.group(1), float(m.group(2)), float(m.group(3))))
    return rows


def _read(path_or_text: str | os.PathLike[str]) -> str:
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text
    ):
        p = Path(path_or_text)
        if not p.is_file():
            raise FileNotFoundError(f"verify_qorca: no such file {str(p)!r}")
        return p.read_text(encoding="utf-8")
    return path_or_text


def verify_qorca(
    path_or_text: str | os.PathLike[str], *, dictionary: Dictionary | None = None
) -> QorcaVerification:
    """Parse, verify and recompute the Gram of a ``.q.orca.md`` machine.

    1. ``parse_q_orca_markdown``: parse errors make the file invalid; exactly
       one machine is expected.
    2. ``verify`` (``skip_resource_bounds`` for HEA files, whose tier invariant
       would otherwise need qiskit); warnings stay warnings.
    3. The Gram through ``compute_concept_gram_mps`` / ``_hea``; for a Rung3
       file the ``## amp branch`` factor is multiplied in.  With
       ``dictionary``, a difference above 1e-12 from ``dictionary.gram()`` is
       an error.
    """
    import q_orca

    text = _read(path_or_text)
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    parsed = q_orca.parse_q_orca_markdown(text)
    for e in parsed.errors:
        errors.append(("PARSE_ERROR", str(getattr(e, "message", e))))
    machines = list(parsed.file.machines) if parsed.file is not None else []
    if len(machines) != 1:
        errors.append(("MACHINE_COUNT", f"expected exactly one machine, found {len(machines)}"))
    if errors or not machines:
        return QorcaVerification(False, tuple(errors), (), len(machines), None, None, False, None)
    machine = machines[0]
    layout = "hea" if "## encoding" in text and "## theta" in text else "mps"
    opts = q_orca.VerifyOptions(skip_resource_bounds=layout == "hea")
    result = q_orca.verify(machine, opts)
    for e in result.errors:
        item = (str(e.code), str(e.message))
        (errors if str(e.severity) == "error" else warnings).append(item)
    gram: np.ndarray | None = None
    try:
        if layout == "hea":
            gram = np.asarray(
                q_orca.compute_concept_gram_hea(machine, concept_action_label="query_concept")
            )
        else:
            gram = np.asarray(
                q_orca.compute_concept_gram_mps(machine, concept_action_label="prepare_concept")
            )
            amps = amp_table(text)
            if amps:
                layout = "rung3"
                if len(amps) != gram.shape[0]:
                    errors.append(
                        ("AMP_TABLE", f"{len(amps)} amp rows for {gram.shape[0]} call sites")
                    )
                else:
                    th = np.array([a[1] for a in amps])
                    ps = np.array([a[2] for a in amps])
                    amp = np.stack([np.cos(th), np.exp(1j * ps) * np.sin(th)], axis=1)
                    gram = gram * (amp.conj() @ amp.T)
    except (q_orca.MpsGramConfigurationError, q_orca.HeaGramConfigurationError) as e:
        errors.append(("GRAM_CONFIGURATION", str(e)))
        gram = None
    diff: float | None = None
    if dictionary is not None and gram is not None:
        ours = dictionary.gram()
        if ours.shape != gram.shape:
            errors.append(("GRAM_SHAPE", f"file Gram {gram.shape} vs dictionary {ours.shape}"))
        else:
            diff = float(np.max(np.abs(ours - gram)))
            if diff > GRAM_TOLERANCE:
                errors.append(
                    (
                        "GRAM_MISMATCH",
                        f"max |G_file − G_dictionary| = {diff:.3e} > {GRAM_TOLERANCE}",
                    )
                )
    return QorcaVerification(
        valid=not errors,
        errors=tuple(errors),
        warnings=tuple(warnings),
        n_machines=1,
        layout=layout,
        gram=gram,
        gram_checked=diff is not None,
        gram_max_abs_diff=diff,
    )
