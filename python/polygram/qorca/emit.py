"""Render a Dictionary as a Q-Orca machine (spec 04 §4.3–4.4).

Knob literals use Python's float ``repr`` (shortest round trip, always with a
fraction or exponent) because q-orca reads them back with ``float()``: the
file then rebuilds exactly the Gram we computed.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
from pathlib import Path
from typing import Any

from polygram._io import atomic_write_text, ensure_dir
from polygram.dictionary import Dictionary, slug
from polygram.encoding import HEA_Rung2, Rung3
from polygram.errors import EmissionError

__all__ = [
    "build_machine",
    "literal",
    "provenance_header",
    "render_machine",
    "render_machine_markdown",
    "write_qorca",
]

MPS_EFFECT = (
    "Ry(qs[0], a); CNOT(qs[0], qs[1]); Ry(qs[1], a + b); Rz(qs[1], phi); "
    "CNOT(qs[1], qs[2]); Ry(qs[2], b + c)"
)
MPS_SIGNATURE = "(qs, a: angle, b: angle, c: angle, phi: angle) -> qs"


def literal(x: float) -> str:
    """A knob value as q-orca reads it: Python's shortest round-trip float repr."""
    return repr(float(x))


def _slugs(d: Dictionary) -> list[str]:
    out = []
    for f in d.features:
        s = slug(f.name)
        if not s:
            raise EmissionError(
                f"feature name {f.name!r} has no letters or digits; it cannot name a "
                "Q-Orca state or event"
            )
        out.append(s)
    return out


def _git_rev(directory: str | os.PathLike[str] | None = None) -> str:
    """``git rev-parse --short HEAD`` run in ``directory`` (the output file's
    directory, spec 04 §4.2); ``unversioned`` when git is missing, times out
    (2 s) or fails, e.g. outside a repository."""
    cwd = Path(directory) if directory is not None else Path.cwd()
    try:
        r = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return "unversioned"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unversioned"


HEADER_NOTICE = "Polygram-generated artifact. Do not hand-edit."


def provenance_header(
    d: Dictionary, directory: str | os.PathLike[str] | None = None, *, git_rev: str | None = None
) -> str:
    """The 7-line HTML-comment header (spec 04 §4.2); ``git rev`` is taken in
    ``directory`` (the output file's directory; default: the working directory)
    unless the caller already read it (``git_rev``, e.g. once for many files)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        ("source dictionary:", d.name),
        ("features:", f"{len(d.features)} in {len(d.hierarchy)} clusters"),
        ("generated:", stamp),
        ("git rev:", _git_rev(directory) if git_rev is None else git_rev),
    ]
    body = "\n".join(f"  {k:<19}{v}" for k, v in rows)
    return f"<!--\n  {HEADER_NOTICE}\n{body}\n-->\n"


def _mps(d: Dictionary) -> str:
    slugs = _slugs(d)
    n, k = len(d.features), len(d.hierarchy)
    calls = [
        "prepare_concept(" + ", ".join(literal(v) for v in (f.alpha, f.beta, f.gamma, f.phi)) + ")"
        for f in d.features
    ]
    out = [
        f"# machine {d.name}",
        "",
        # Rung3 uses this layout unchanged (spec 04 §4.3.1), plus `## amp branch`.
        f"Polygram-generated rung-1 MPS dictionary ({n} features, {k} clusters).",
        "",
        "## context",
        "| Field    | Type        | Default            |",
        "|----------|-------------|--------------------|",
        "| qubits   | list<qubit> | [q0, q1, q2]       |",
        "",
        "## events",
        *[f"- prepare_{s}" for s in slugs],
        "- measure_done",
        "",
        "## state idle [initial]",
        "> Concept register in `|000>`.",
        "",
    ]
    for f, s, call in zip(d.features, slugs, calls):
        out += [
            f"## state prepared_{s}",
            f"> `|{f.name}>` prepared via `{call}`. Cluster: {f.cluster}.",
            "",
        ]
    out += [
        "## state done [final]",
        "> Measurement collapsed the register.",
        "",
        "## transitions",
        "| Source | Event | Guard | Target | Action |",
        "|--------|-------|-------|--------|--------|",
        *[f"| idle | prepare_{s} | | prepared_{s} | {c} |" for s, c in zip(slugs, calls)],
        *[f"| prepared_{s} | measure_done | | done | |" for s in slugs],
        "",
        "## actions",
        "| Name | Signature | Effect |",
        "|------|-----------|--------|",
        f"| prepare_concept | {MPS_SIGNATURE} | {MPS_EFFECT} |",
        "",
        "## verification rules",
        "- unitarity",
        "- mps_bond_2_with_phase_knob",
    ]
    if isinstance(d.encoding, Rung3):
        out += [
            "",
            "## amp branch",
            "| concept | theta_amp | psi_aux |",
            "|---------|-----------|---------|",
            *[
                f"| {s} | {literal(f.theta_amp)} | {literal(f.psi_aux)} |"
                for f, s in zip(d.features, slugs)
            ],
        ]
    return "\n".join(out) + "\n"


def _nested(theta: object) -> str:
    import numpy as np

    return repr(np.asarray(theta, dtype=float).tolist())


def _hea(d: Dictionary) -> str:
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    if len(set(enc.rotations)) != len(enc.rotations):
        # q-orca's `## encoding` parser requires unique rotations; the Gram is
        # still defined, but the file would not parse.
        raise EmissionError(
            f"HEA_Rung2.rotations: {list(enc.rotations)!r} repeats a rotation; Q-Orca "
            "files need each of Rx, Ry, Rz at most once"
        )
    for f in d.features:
        if any(c in f.cluster for c in "|\r\n"):
            # the `## theta` cluster cell is machine-readable: a pipe or a line
            # break would silently change the clusters q-orca reads back
            raise EmissionError(
                f"Feature {f.name!r}: cluster {f.cluster!r} contains '|' or a line break; "
                "HEA Q-Orca files store the cluster in a table cell, which allows neither"
            )
    slugs = _slugs(d)
    n, k = len(d.features), len(d.hierarchy)
    qubits = "[" + ", ".join(f"q{i}" for i in range(enc.n_qubits)) + "]"
    pad = " " * max(0, len(qubits) - 12)
    out = [
        f"# machine {d.name}",
        "",
        f"Polygram-generated rung-2 HEA dictionary ({n} features, {k} clusters; "
        f"depth={enc.depth}, entangler={enc.entangler}, rotations={list(enc.rotations)!r}).",
        "",
        "## context",
        "| Field  | Type        | Default          |",
        "|--------|-------------|------------------|",
        f"| qubits | list<qubit> | {qubits}{pad} |",
        "",
        "## events",
        *[f"- prep_{s}" for s in slugs],
        "",
        "## state idle [initial]",
        f"> Ground state of the {enc.n_qubits}-qubit register, before any concept preparation.",
        "",
    ]
    for f, s in zip(d.features, slugs):
        out += [
            f"## state queried_{s} [final]",
            f"> Register holds concept `{f.name}` (cluster: {f.cluster}).",
            "",
        ]
    out += [
        "## transitions",
        "| Source | Event   | Guard | Target       | Action        |",
        "|--------|---------|-------|--------------|---------------|",
        *[f"| idle   | prep_{s} |       | queried_{s} | query_concept |" for s in slugs],
        "",
        "## actions",
        "| Name          | Signature   |",
        "|---------------|-------------|",
        "| query_concept | (qs) -> qs  |",
        "",
        "## encoding",
        "| key       | value  |",
        "|-----------|--------|",
        "| kind      | hea    |",
        f"| depth     | {enc.depth}      |",
        f"| entangler | {enc.entangler}   |",
        f"| rotations | {', '.join(enc.rotations)} |",
        "",
        "## theta",
        "| concept | tensor | cluster |",
        "|---------|--------|---------|",
        *[f"| {s} | {_nested(enc.theta_of(f))} | {f.cluster} |" for f, s in zip(d.features, slugs)],
    ]
    if enc.tier_separation_bound is not None:
        out += [
            "",
            "## invariants",
            f"- concept_gram_tier_separation >= {enc.tier_separation_bound}",
        ]
    return "\n".join(out) + "\n"


def render_machine(d: Dictionary) -> str:
    """The machine markdown (no provenance header)."""
    return _hea(d) if isinstance(d.encoding, HEA_Rung2) else _mps(d)


#: 0.0.1's name for :func:`render_machine` (spec 04 §4.1).
render_machine_markdown = render_machine


def build_machine(d: Dictionary) -> Any:
    """Render ``d`` and parse it with q-orca; return the (single) parsed machine.

    Any parser error raises ``RuntimeError`` naming the errors and carrying the
    generated source (spec 04 §4.1)."""
    import q_orca

    source = render_machine(d)
    parsed = q_orca.parse_q_orca_markdown(source)
    if parsed.errors:
        msgs = "; ".join(str(getattr(e, "message", e)) for e in parsed.errors)
        raise RuntimeError(
            f"q-orca could not parse the machine generated for {d.name!r}: {msgs}\n"
            f"--- generated source ---\n{source}"
        )
    return parsed.file.machines[0]


def write_qorca(
    dictionary: Dictionary, path: str | os.PathLike[str], *, git_rev: str | None = None
) -> Path:
    """Write ``dictionary`` as a ``.q.orca.md`` file (header + machine), atomically.

    Parent directories are created first; the header's ``git rev`` is read in
    the output file's directory (spec 04 §4.2) unless given as ``git_rev``."""
    if not isinstance(dictionary, Dictionary):
        raise TypeError(
            f"write_qorca: dictionary is a {type(dictionary).__name__}; expected a "
            "polygram Dictionary"
        )
    p = Path(path)
    parent = ensure_dir(p.parent if str(p.parent) else ".")
    text = provenance_header(dictionary, parent, git_rev=git_rev) + render_machine(dictionary)
    return atomic_write_text(p, text)
