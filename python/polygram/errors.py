"""Polygram's exception hierarchy.

Every class subclasses the builtin a caller would naturally catch
(``ValueError``, ``KeyError``, ``OSError``, ``ImportError``), so
``except ValueError`` keeps working while ``except PolygramError`` catches
everything the library raises on purpose.  Messages name the field, the
offending value and what is allowed.
"""

from __future__ import annotations

from polygram._core import KernelError, MemoryBudgetError

__all__ = [
    "CapacityError",
    "DictionaryError",
    "EmissionError",
    "ExperimentError",
    "GridTooLargeError",
    "KernelError",
    "KnobError",
    "MemoryBudgetError",
    "MissingDependencyError",
    "OutputError",
    "PolygramError",
    "UnknownFeatureError",
]


class PolygramError(Exception):
    """Base of every error Polygram raises deliberately."""


class DictionaryError(PolygramError, ValueError):
    """A Feature or Dictionary violates a construction rule (spec 02 §2.2.1)."""


class CapacityError(DictionaryError):
    """More features than the encoding can hold as independent states."""


class UnknownFeatureError(PolygramError, KeyError):
    """A feature name that is not in the dictionary."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class KnobError(PolygramError, ValueError):
    """A malformed knob path, an unknown identifier, or a knob write that
    cannot change the state."""


class ExperimentError(PolygramError, ValueError):
    """An invalid Experiment or Cancellation configuration."""


class GridTooLargeError(ExperimentError, MemoryBudgetError):
    """A grid whose returned arrays would not fit in the memory budget (a
    :class:`MemoryBudgetError`, like the kernels' own refusals)."""


class EmissionError(PolygramError, ValueError):
    """A dictionary that cannot be written as a Q-Orca machine."""


class OutputError(PolygramError, OSError):
    """An output path that cannot be created or written."""


class MissingDependencyError(PolygramError, ImportError):
    """An optional dependency (an extra) is not installed."""


def missing(package: str, extra: str, what: str) -> MissingDependencyError:
    """The error for an optional import that failed, with the install hint."""
    return MissingDependencyError(
        f"{what} needs the '{package}' package: pip install 'polygram[{extra}]'"
    )


# --- SAE import and triage (issue 04) ------------------------------------


class SAEFormatError(PolygramError, ValueError):
    """An SAE checkpoint, config or toy JSON that cannot be read as one:
    not safetensors, a truncated or corrupted header, no decoder tensor, an
    unsupported dtype, a shape that disagrees with its config."""


class SAEFileNotFoundError(PolygramError, FileNotFoundError):
    """An SAE file or SAELens folder (or one of its parts) that does not exist."""


class OrientationError(SAEFormatError):
    """A decoder matrix whose feature axis cannot be told apart (a square
    ``decoder.weight`` with no config or explicit orientation)."""


class FeatureSelectionError(PolygramError, ValueError):
    """Bad ``feature_ids`` / ``names`` / ``cluster_assignments``: empty,
    repeated, out of range or unknown."""


class AnalysisError(PolygramError, ValueError):
    """Triage or graph input that the analysis layer cannot handle."""


__all__ += [
    "AnalysisError",
    "FeatureSelectionError",
    "OrientationError",
    "SAEFileNotFoundError",
    "SAEFormatError",
]


# --- compression (spec 11) ----------------------------------------------------


class CompressionError(PolygramError, ValueError):
    """A Compressor configuration, plan or report that cannot be used."""


__all__ += ["CompressionError"]


# --- real SAEs, hooks, runtime, evaluations (spec 16 §9, spec 18 §3) ---------


class UnsupportedSAEError(SAEFormatError):
    """An SAE polygram refuses to run rather than run wrongly: an architecture
    outside standard / jumprelu / topk / gated, a head or ``hook_z`` SAE, an
    unknown ``normalize_activations`` or one whose scaling factor is unknown."""


class HookError(PolygramError, ValueError):
    """A hook name outside the grammar, a model layout that is not supported,
    or no hook given anywhere."""


class SettingsConflictError(PolygramError, ValueError):
    """An explicit setting (flag or argument) that contradicts the SAE's cfg."""


class EvalError(PolygramError, ValueError):
    """An evaluation that cannot be computed: no evaluated token, SAEs that
    disagree on model / hook / tokenisation."""


class PolygramDefaultWarning(UserWarning):
    """A fallback (model ``gpt2``, layer 10) was used because neither a flag nor
    a cfg gave the setting."""


class PolygramSmallSampleWarning(UserWarning):
    """Fewer evaluated tokens than a stable metric needs (512)."""


__all__ += [
    "EvalError",
    "HookError",
    "PolygramDefaultWarning",
    "PolygramSmallSampleWarning",
    "SettingsConflictError",
    "UnsupportedSAEError",
]


# --- later loop capabilities (spec 15) ----------------------------------------


class ConfigError(PolygramError, ValueError):
    """A ``polygram.config`` field outside what its constructor allows."""


class ProfileError(PolygramError, ValueError):
    """A geometric profile that cannot be built or registered."""


class UnknownProfileError(PolygramError, KeyError):
    """A geometric profile name that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


__all__ += ["ConfigError", "ProfileError", "UnknownProfileError"]


# --- fold and quiet regrow (issue 12) -----------------------------------------


class FoldError(CompressionError):
    """``strategy="fold"`` cannot fit a cluster: activations with NaN/±inf,
    no tokens, or a representative that never fires while a folded member
    does (its row could not carry their contribution)."""


class RegrowError(CompressionError):
    """The quiet regrow rule cannot refill the slots from these residuals
    (fewer residual tokens than slots, non-finite values, no signal)."""


__all__ += ["FoldError", "RegrowError"]


# --- clustered dictionaries and experts (spec 17 §17.12) ----------------------


class ClusteringError(PolygramError, ValueError):
    """A block formation, clustered dictionary, redundancy query or expert
    routing input outside its rules (spec 17 §17.2–§17.10)."""


class GraphTooLargeError(ClusteringError):
    """A pair graph with more edges than the edge budget allows
    (``BlockFormation.max_edges`` / ``$POLYGRAM_MAX_EDGES``)."""


__all__ += ["ClusteringError", "GraphTooLargeError"]
