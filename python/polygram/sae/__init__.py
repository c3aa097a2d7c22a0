"""SAEs: the ``SAE`` value object, ``load_sae`` (every source), the one
forward (``polygram.sae.forward``), ``write_sae``; and the decoder-row import
(records, toy JSON, ``from_sae_lens``).  See docs/saes.md and
docs/sae-import.md."""

from __future__ import annotations

from polygram.sae import forward
from polygram.sae.architecture import ARCHITECTURES, NORMALIZE_MODES, REQUIRED_TENSORS
from polygram.sae.checkpoint import CANONICAL_KEYS, SAE_KEY_ALIASES, load_sae_checkpoint
from polygram.sae.importer import SelectionReport, from_sae_lens, kmeans_partition
from polygram.sae.load import load_sae
from polygram.sae.records import SAEFeatureRecord
from polygram.sae.saelens import (
    SAELensConfig,
    layer_from_hook,
    load_sae_lens_folder,
    parse_sae_lens_config,
    read_sae_lens_config,
)
from polygram.sae.safetensors_io import (
    DECODER_KEYS,
    SafetensorsHeader,
    TensorInfo,
    load_sae_safetensors,
    read_safetensors_header,
)
from polygram.sae.settings import SAESettings, Setting
from polygram.sae.toy import dumps_toy_sae, load_toy_sae, toy_sae_document, write_toy_sae
from polygram.sae.value import SAE, SAESource, TensorLayout
from polygram.sae.write import WrittenSAE, write_sae

__all__ = [
    "ARCHITECTURES",
    "CANONICAL_KEYS",
    "DECODER_KEYS",
    "NORMALIZE_MODES",
    "REQUIRED_TENSORS",
    "SAE",
    "SAE_KEY_ALIASES",
    "SAEFeatureRecord",
    "SAELensConfig",
    "SAESettings",
    "SAESource",
    "SafetensorsHeader",
    "SelectionReport",
    "Setting",
    "TensorInfo",
    "TensorLayout",
    "WrittenSAE",
    "dumps_toy_sae",
    "forward",
    "from_sae_lens",
    "kmeans_partition",
    "layer_from_hook",
    "load_sae",
    "load_sae_checkpoint",
    "load_sae_lens_folder",
    "load_sae_safetensors",
    "load_toy_sae",
    "parse_sae_lens_config",
    "read_sae_lens_config",
    "read_safetensors_header",
    "toy_sae_document",
    "write_sae",
    "write_toy_sae",
]
