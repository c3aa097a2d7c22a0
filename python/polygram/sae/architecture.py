"""The four SAE architectures polygram runs, their tensors and the refusals
(spec 16 §1.1, §1.5).

One home for what an architecture *is*: its required tensor set (exactly
SAELens' inference parameters, so a written folder loads in SAELens with a
strict state dict), the canonical shape of every tensor, the
``normalize_activations`` modes, and the architectures refused by name
rather than run as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from polygram.errors import UnsupportedSAEError

__all__ = [
    "ARCHITECTURES",
    "CANONICAL_TENSORS",
    "NORMALIZE_MODES",
    "REQUIRED_TENSORS",
    "TENSOR_ALIASES",
    "canonical_shape",
    "check_architecture",
    "check_normalize_activations",
]

ARCHITECTURES: tuple[str, ...] = ("standard", "jumprelu", "topk", "gated")

#: Canonical tensor names, in the order they are listed and written.
CANONICAL_TENSORS: tuple[str, ...] = (
    "W_enc",
    "b_enc",
    "W_dec",
    "b_dec",
    "threshold",
    "b_gate",
    "b_mag",
    "r_mag",
)

REQUIRED_TENSORS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
        "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
        "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
        "gated": ("W_enc", "W_dec", "b_dec", "b_gate", "b_mag", "r_mag"),
    }
)

#: canonical name → stored names accepted, first present wins (spec 16 §2.2).
#: ``encoder.weight`` / ``decoder.weight`` are ``nn.Linear`` weights (transposed).
TENSOR_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "W_enc": ("W_enc", "w_enc", "encoder.weight"),
        "b_enc": ("b_enc", "encoder.bias"),
        "W_dec": ("W_dec", "w_dec", "decoder.weight", "dec"),
        "b_dec": ("b_dec", "decoder.bias"),
        "threshold": ("threshold",),
        "b_gate": ("b_gate",),
        "b_mag": ("b_mag",),
        "r_mag": ("r_mag",),
    }
)

NORMALIZE_MODES: tuple[str, ...] = (
    "none",
    "expected_average_only_in",
    "constant_norm_rescale",
    "layer_norm",
)

# Refused by name, with what to do instead.
_TRAINING_ONLY = ("batchtopk", "matryoshka_batchtopk", "jumprelu_training", "topk_training")
_TRANSCODERS = ("transcoder", "skip_transcoder", "jumprelu_transcoder")


def canonical_shape(name: str, d_in: int, d_sae: int) -> tuple[int, ...]:
    """The in-memory shape of canonical tensor ``name``."""
    if name == "W_enc":
        return (d_in, d_sae)
    if name == "W_dec":
        return (d_sae, d_in)
    if name == "b_dec":
        return (d_in,)
    return (d_sae,)


def check_architecture(value: object, where: str) -> str:
    """``value`` if it is one of :data:`ARCHITECTURES`, else
    :class:`UnsupportedSAEError` naming it (``where`` says which field)."""
    if isinstance(value, str) and value in ARCHITECTURES:
        return value
    allowed = ", ".join(ARCHITECTURES)
    if value in _TRAINING_ONLY:
        raise UnsupportedSAEError(
            f"{where}: architecture {value!r} is a training-only architecture; save the "
            f"inference model, which is jumprelu (allowed: {allowed})"
        )
    if value in _TRANSCODERS:
        raise UnsupportedSAEError(
            f"{where}: architecture {value!r} is a transcoder (it reads one hook and writes "
            f"another), not an SAE polygram can run; allowed: {allowed}"
        )
    raise UnsupportedSAEError(
        f"{where}: architecture {value!r} is not supported; allowed: {allowed}"
    )


def check_normalize_activations(value: object, where: str) -> str:
    """A ``normalize_activations`` mode (pre-v6 booleans mapped, §1.3), else
    :class:`UnsupportedSAEError`."""
    if value is True:
        return "expected_average_only_in"
    if value is False or value is None:
        return "none"
    if isinstance(value, str) and value in NORMALIZE_MODES:
        return value
    raise UnsupportedSAEError(
        f"{where}: normalize_activations {value!r} is not supported; allowed: "
        f"{', '.join(NORMALIZE_MODES)}"
    )
