"""The toy SAE JSON schema (spec 05 §5.4): the bundled fixture and what
``polygram sae-import`` writes.

```
{"schema_version": 1, "description": "...",
 "features": [{"feature_id": int, "name": str, "projection": [float, ...],
               "label"?: str, "activation_mean"?: float, "activation_std"?: float}]}
```
``schema_version`` and ``description`` are ignored on load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from polygram._io import atomic_write_text
from polygram.errors import SAEFileNotFoundError, SAEFormatError
from polygram.sae.records import SAEFeatureRecord

__all__ = [
    "TOY_SCHEMA_VERSION",
    "dumps_toy_sae",
    "load_toy_sae",
    "toy_sae_document",
    "write_toy_sae",
]

TOY_SCHEMA_VERSION = 1
_OPTIONAL = ("label", "activation_mean", "activation_std")


def load_toy_sae(path: str | os.PathLike[str]) -> dict[int, SAEFeatureRecord]:
    """Records of a toy-schema JSON file, keyed by ``feature_id`` in file order."""
    p = Path(path)
    if not p.is_file():
        raise SAEFileNotFoundError(
            f"toy SAE JSON {str(p)!r}: no such file"
            + (" (it is a directory)" if p.is_dir() else "")
        )
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise SAEFormatError(f"toy SAE JSON {str(p)!r}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise SAEFormatError(f"toy SAE JSON {str(p)!r}: invalid JSON ({e})") from None
    return records_from_document(doc, source=str(p))


def records_from_document(doc: Any, *, source: str = "<document>") -> dict[int, SAEFeatureRecord]:
    """Records of an already-parsed toy-schema object."""
    where = f"toy SAE JSON {source!r}"
    if not isinstance(doc, Mapping) or "features" not in doc:
        raise SAEFormatError(f"{where}: missing top-level 'features' list")
    feats = doc["features"]
    if not isinstance(feats, list):
        raise SAEFormatError(
            f"{where}: 'features' is {type(feats).__name__}; expected a list of feature objects"
        )
    out: dict[int, SAEFeatureRecord] = {}
    for i, entry in enumerate(feats):
        here = f"{where}: features[{i}]"
        if not isinstance(entry, Mapping):
            raise SAEFormatError(f"{here}: got {type(entry).__name__}; expected an object")
        missing = [k for k in ("feature_id", "name", "projection") if k not in entry]
        if missing:
            raise SAEFormatError(f"{here}: missing required key(s) {missing}")
        fid = entry["feature_id"]
        if isinstance(fid, bool) or not isinstance(fid, int):
            raise SAEFormatError(f"{here}.feature_id: got {fid!r}; expected an integer")
        if fid in out:
            raise SAEFormatError(f"{here}: duplicate feature_id {fid}; ids must be unique")
        projection: Any = entry["projection"]
        if not isinstance(projection, list):
            raise SAEFormatError(
                f"{here}.projection: got {type(projection).__name__}; expected a list of numbers"
            )
        try:
            out[fid] = SAEFeatureRecord(
                feature_id=fid,
                name=entry["name"],
                projection=cast(np.ndarray, projection),  # the record coerces lists
                **{k: entry.get(k) for k in _OPTIONAL},
            )
        except SAEFormatError as e:
            raise SAEFormatError(f"{here}: {e}") from None
    return out


def toy_sae_document(records: Iterable[SAEFeatureRecord], *, description: str) -> dict[str, Any]:
    """The toy-schema object for ``records`` (in the given order); optional
    keys are written only when set."""
    feats: list[dict[str, Any]] = []
    for r in records:
        entry: dict[str, Any] = {
            "feature_id": r.feature_id,
            "name": r.name,
            # float32 → Python float is exact, so the JSON holds the stored values
            "projection": r.projection.tolist(),
        }
        for k in _OPTIONAL:
            v = getattr(r, k)
            if v is not None:
                entry[k] = v
        feats.append(entry)
    return {"schema_version": TOY_SCHEMA_VERSION, "description": description, "features": feats}


def dumps_toy_sae(records: Iterable[SAEFeatureRecord], *, description: str) -> str:
    """Pretty-printed (2-space indent, non-ASCII escaped) toy-schema text."""
    return json.dumps(toy_sae_document(records, description=description), indent=2)


def write_toy_sae(
    path: str | os.PathLike[str],
    records: Iterable[SAEFeatureRecord],
    *,
    description: str,
) -> Path:
    """Write ``records`` as toy-schema JSON atomically; returns the path."""
    return atomic_write_text(path, dumps_toy_sae(records, description=description))
