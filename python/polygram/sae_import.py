"""Polygram 0.0.1's module path for the SAE importer; every public name of
:mod:`polygram.sae` (the canonical home) is re-exported here."""

from __future__ import annotations

from polygram.sae import *  # noqa: F403
from polygram.sae import __all__ as __all__
