"""Writing SAEs: the output layouts of spec 16 §2.5 and their ``cfg.json``.

===================  =====================  ===========================================
input                output path            written
===================  =====================  ===========================================
folder               a directory            ``sae_weights.safetensors`` (stored names,
                                            orientation, dtypes, extra), ``cfg.json``,
                                            ``activation_scaler.json`` when the input had one
file / memory        ``*.safetensors``      that file (file: stored layout; memory:
                                            canonical names) + sidecar ``<stem>.cfg.json``
file / memory        anything else          a SAELens folder with canonical names and
                                            canonical orientation
===================  =====================  ===========================================

Every file is written atomically (temp, fsync, rename), weights first and
cfg last, so a reader never sees a cfg without its weights.  An output that
resolves to the source file, folder or the folder holding the source
weights is refused: inputs are never rewritten in place.  The cfg is the
input's verbatim plus provenance (v6: ``metadata.polygram``; pre-v6:
``polygram_provenance``), or a synthesised v6 cfg.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from polygram._io import atomic_write_bytes, atomic_write_text, sha256_file
from polygram.errors import CompressionError
from polygram.sae.load import sidecar_cfg_path
from polygram.sae.saelens import CFG_NAME, SCALER_NAME, WEIGHTS_NAME
from polygram.sae.safetensors_write import write_safetensors
from polygram.sae.value import SAE, SAESource

__all__ = ["DTYPE_NAMES", "OutputPlan", "WrittenSAE", "plan_output", "sae_cfg", "write_sae"]

OutputLayout = Literal["folder", "file"]

#: Stored dtype → the cfg ``dtype`` string (SAELens ``DTYPE_MAP`` keys).
DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
_FOLDER_FILES = (WEIGHTS_NAME, CFG_NAME, SCALER_NAME)
_SUFFIX = ".safetensors"
SAE_LENS_FORMAT_VERSION = "6.0.0"


@dataclass(frozen=True)
class OutputPlan:
    """Where an SAE will be written: the path given (resolved), the layout
    and the weights / cfg files."""

    path: Path
    layout: OutputLayout
    weights: Path
    cfg: Path


@dataclass(frozen=True)
class WrittenSAE:
    """What :func:`write_sae` wrote; ``sha256`` is the weights file's."""

    path: Path
    layout: OutputLayout
    weights: Path
    cfg: Path
    sha256: str


def _same(a: Path | None, b: Path) -> bool:
    return a is not None and a.resolve() == b


def plan_output(source: SAESource, output: str | os.PathLike[str], owner: str) -> OutputPlan:
    """Check ``output`` for an SAE read from ``source`` and say what will be
    written there (``CompressionError`` naming both paths when refused)."""
    if not isinstance(output, str | os.PathLike) or not str(output):
        raise CompressionError(f"{owner}: output {output!r} is not a path")
    out = Path(output).resolve()
    src = source.display
    if any(_same(p, out) for p in (source.path, source.weights, source.cfg_path)) or (
        source.weights is not None and source.weights.resolve().parent == out
    ):
        raise CompressionError(
            f"{owner}: output {str(out)!r} resolves to the source {src!r}; the source is never "
            "rewritten in place"
        )
    if str(output).endswith(_SUFFIX):
        if source.kind == "folder":
            raise CompressionError(
                f"{owner}: the input {src!r} is a SAELens folder: give an output folder, not "
                f"the file {str(out)!r}"
            )
        if out.is_dir():
            raise CompressionError(f"{owner}: output {str(out)!r} is a directory")
        cfg = sidecar_cfg_path(out)
        if _same(source.cfg_path, cfg) or _same(source.weights, out):
            raise CompressionError(
                f"{owner}: output {str(out)!r} would overwrite the source {src!r}'s files"
            )
        return OutputPlan(out, "file", out, cfg)
    if out.exists():
        if not out.is_dir():
            raise CompressionError(
                f"{owner}: output {str(out)!r} is an existing file; give a folder path (or a "
                f"{_SUFFIX} file for a file input)"
            )
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _FOLDER_FILES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
            raise CompressionError(
                f"{owner}: output folder {str(out)!r} holds other files ({shown}); give a new "
                f"or empty folder for the SAE written from {src!r}"
            )
    return OutputPlan(out, "folder", out / WEIGHTS_NAME, out / CFG_NAME)


def _provenance(sae: SAE, given: Mapping[str, Any] | None) -> dict[str, Any]:
    from polygram._core import __version__

    out: dict[str, Any] = {
        "tool": "polygram",
        "polygram_version": __version__,
        "source": sae.source.display,
        "source_sha256": None,
        "n_features_zeroed": 0,
        "n_features_regrown": 0,
    }
    out.update(given or {})
    if out["source_sha256"] is None:
        out["source_sha256"] = sae.source_sha256()
    return out


def sae_cfg(sae: SAE, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``cfg.json`` written with ``sae``: its cfg verbatim plus provenance,
    or a v6 cfg synthesised from its resolved settings."""
    prov = dict(provenance or {})
    if sae.cfg is not None:
        doc = copy.deepcopy(dict(sae.cfg.raw))
        if "architecture" not in doc and sae.architecture != "standard":
            doc["architecture"] = sae.architecture  # an explicit override the cfg did not state
        if sae.cfg.format == "v6":
            meta = doc.get("metadata")
            doc["metadata"] = {**(meta if isinstance(meta, dict) else {}), "polygram": prov}
        else:
            doc["polygram_provenance"] = prov
        return doc
    s = sae.settings
    assert s is not None
    doc = {
        "architecture": sae.architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": DTYPE_NAMES.get(sae.stored_dtype, "float32"),
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": sae.normalize_activations,
        "reshape_activations": "none",
    }
    if sae.architecture == "topk":
        doc["k"] = sae.k
        doc["rescale_acts_by_decoder_norm"] = sae.rescale_acts_by_decoder_norm
    doc["metadata"] = {
        "sae_lens_version": SAE_LENS_FORMAT_VERSION,
        "sae_lens_training_version": SAE_LENS_FORMAT_VERSION,
        "model_name": s.model_name.value,
        "hook_name": s.hook_name,
        "hook_head_index": None,
        "context_size": s.context_size.value,
        "prepend_bos": s.prepend_bos.value,
        "polygram": prov,
    }
    return doc


def write_sae(
    sae: SAE,
    output: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    owner: str = "write_sae",
) -> WrittenSAE:
    """Write ``sae`` to ``output`` in the layout of the module table.

    ``provenance`` fills the cfg's provenance block (keys ``tool``,
    ``source``, ``source_sha256``, ``n_features_zeroed``,
    ``n_features_regrown``; defaults from the SAE).  Returns the files
    written and the weights' sha256.
    """
    plan = plan_output(sae.source, output, owner)
    # a folder stays a folder and a file a file in its own layout; anything else canonical
    keep_stored = (plan.layout, sae.source.kind) in (("folder", "folder"), ("file", "file"))
    tensors = {
        name: (a, lay.dtype, lay.shape)
        for name, (a, lay) in sae.stored_tensors(canonical=not keep_stored).items()
    }
    if plan.layout == "folder":
        plan.path.mkdir(parents=True, exist_ok=True)
    write_safetensors(plan.weights, tensors, sae.source.metadata)
    scaler = sae.source.scaler_path
    if plan.layout == "folder" and scaler is not None:
        atomic_write_bytes(plan.path / SCALER_NAME, scaler.read_bytes())
    elif plan.layout == "folder":
        (plan.path / SCALER_NAME).unlink(missing_ok=True)  # stale from an earlier write
    doc = sae_cfg(sae, _provenance(sae, provenance))
    atomic_write_text(plan.cfg, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return WrittenSAE(plan.path, plan.layout, plan.weights, plan.cfg, sha256_file(plan.weights))
