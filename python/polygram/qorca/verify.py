"""Verify an emitted machine with q-orca's own parser, verifier and Gram helpers
(spec 04 §4.8)."""

from __future__ import annotations

import os
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
    """Outcome of :func:`verify_qorca`.  ``errors``/``warnings`` are lists of
    ``(code, message)`` pairs; ``valid`` is False when any error exists."""

    valid: bool
    errors: list[tuple[str, str]]
    warnings: list[tuple[str, str]]
    n_machines: int
    layout: str | None
    gram: np.ndarray | None
    gram_checked: bool
    gram_max_abs_diff: float | None

    def __bool__(self) -> bool:
        return self.valid


class AmpTableError(ValueError):
    """A malformed ``## amp branch`` row (spec 04 §4.3.1)."""


def amp_table(text: str) -> list[tuple[str, float, float]]:
    """Rows ``(concept, theta_amp, psi_aux)`` of a Rung3 ``## amp branch`` section.

    Raises :class:`AmpTableError` for a row that is not three cells or whose
    values are not finite numbers."""
    rows: list[tuple[str, float, float]] = []
    inside = False
    for n, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            inside = line.strip() == "## amp branch"
            continue
        if not inside or not line.strip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "concept" or all(set(c) <= set("-: ") for c in cells):
            continue  # header and separator rows
        if len(cells) != 3:
            raise AmpTableError(
                f"## amp branch line {n}: {line.strip()!r} has {len(cells)} cells; expected "
                "3 (concept | theta_amp | psi_aux)"
            )
        try:
            theta, psi = float(cells[1]), float(cells[2])
        except ValueError:
            raise AmpTableError(
                f"## amp branch line {n}: theta_amp={cells[1]!r}, psi_aux={cells[2]!r}; "
                "expected two float literals"
            ) from None
        if not (np.isfinite(theta) and np.isfinite(psi)):
            raise AmpTableError(
                f"## amp branch line {n}: theta_amp={cells[1]}, psi_aux={cells[2]}; "
                "expected finite numbers"
            )
        rows.append((cells[0], theta, psi))
    return rows


def _read(path_or_text: str | os.PathLike[str]) -> str:
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text
    ):
        p = Path(path_or_text)
        if not p.is_file():
            raise FileNotFoundError(f"verify_qorca: no such file {str(p)!r}")
        return p.read_text(encoding="utf-8")
    if isinstance(path_or_text, str):
        return path_or_text
    raise TypeError(
        f"verify_qorca: path_or_text is a {type(path_or_text).__name__}; expected a path "
        "(str or os.PathLike) or the markdown text (str with newlines)"
    )


def _call_site_concepts(text: str) -> list[str]:
    """Slugs of the ``idle | prepare_<slug> | …`` call sites, in table order."""
    found = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            len(cells) == 5
            and cells[0] == "idle"
            and cells[1].startswith("prepare_")
            and cells[4].startswith("prepare_concept(")
        ):
            found.append(cells[1][len("prepare_") :])
    return found


# What q-orca's Gram helpers raise on a file they cannot use (their own
# configuration errors subclass ValueError).
_GRAM_FAILURES = (ValueError, TypeError, KeyError, IndexError, ArithmeticError)


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

    from polygram.dictionary import Dictionary

    if dictionary is not None and not isinstance(dictionary, Dictionary):
        raise TypeError(
            f"verify_qorca: dictionary is a {type(dictionary).__name__}; expected a "
            "polygram Dictionary or None"
        )
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
        return QorcaVerification(False, errors, [], len(machines), None, None, False, None)
    machine = machines[0]
    layout = "hea" if getattr(machine, "encoding", None) is not None else "mps"
    opts = q_orca.VerifyOptions(skip_resource_bounds=layout == "hea")
    try:
        result = q_orca.verify(machine, opts)
    except ImportError as missing:
        # A resource-bound check (e.g. a tier invariant written into a non-HEA
        # file) needs qiskit; verify the rest rather than crash.
        warnings.append(
            (
                "RESOURCE_BOUNDS_SKIPPED",
                f"q-orca's resource-bound stage needs {missing.name or missing}, "
                "which is not installed; verified with skip_resource_bounds=True",
            )
        )
        result = q_orca.verify(machine, q_orca.VerifyOptions(skip_resource_bounds=True))
    for v in result.errors:
        item = (str(v.code), str(v.message))
        (errors if str(v.severity) == "error" else warnings).append(item)
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
    except _GRAM_FAILURES as e:
        errors.append(("GRAM_CONFIGURATION", str(e)))
        gram = None
    if gram is not None and layout == "mps" and "## amp branch" in text:
        layout = "rung3"
        try:
            amps = amp_table(text)
        except AmpTableError as e:
            errors.append(("AMP_TABLE", str(e)))
            gram = None
        else:
            concepts = _call_site_concepts(text)
            if len(amps) != gram.shape[0]:
                errors.append(("AMP_TABLE", f"{len(amps)} amp rows for {gram.shape[0]} call sites"))
                gram = None
            elif len(concepts) == len(amps) and [a[0] for a in amps] != concepts:
                errors.append(
                    (
                        "AMP_TABLE",
                        f"amp rows name {[a[0] for a in amps]}; the call sites, in order, "
                        f"are {concepts}",
                    )
                )
                gram = None
            else:
                th = np.array([a[1] for a in amps])
                ps = np.array([a[2] for a in amps])
                amp = np.stack([np.cos(th), np.exp(1j * ps) * np.sin(th)], axis=1)
                gram = gram * (amp.conj() @ amp.T)
    if gram is not None and not np.all(np.isfinite(gram)):
        errors.append(
            ("GRAM_NONFINITE", "the Gram rebuilt from the file has NaN or infinite entries")
        )
    diff: float | None = None
    if dictionary is not None and gram is not None:
        ours = dictionary.gram()
        if ours.shape != gram.shape:
            errors.append(("GRAM_SHAPE", f"file Gram {gram.shape} vs dictionary {ours.shape}"))
        else:
            diff = float(np.max(np.abs(ours - gram)))
            if not diff <= GRAM_TOLERANCE:
                errors.append(
                    (
                        "GRAM_MISMATCH",
                        f"max |G_file − G_dictionary| = {diff:.3e} > {GRAM_TOLERANCE}",
                    )
                )
    return QorcaVerification(
        valid=not errors,
        errors=errors,
        warnings=warnings,
        n_machines=1,
        layout=layout,
        gram=gram,
        gram_checked=diff is not None,
        gram_max_abs_diff=diff,
    )
