"""``BlockFormation``: how a clustered dictionary cuts its features into
blocks of at most the encoding's capacity (spec 17 §17.2)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from polygram.clustered._checks import int_at_least, real_in
from polygram.errors import ClusteringError

__all__ = ["DEFAULT_MAX_EDGES", "MAX_EDGES_ENV", "STRATEGIES", "BlockFormation"]

STRATEGIES = ("cosine", "user_declared", "co_firing")
#: The edge budget when neither ``max_edges`` nor ``$POLYGRAM_MAX_EDGES`` sets one.
DEFAULT_MAX_EDGES = 50_000_000
MAX_EDGES_ENV = "POLYGRAM_MAX_EDGES"


@dataclass(frozen=True)
class BlockFormation:
    """Strategy and thresholds of a block partition.

    ``cosine_threshold`` tests the float32 decoder cosines c32: it defines the
    cosine strategy's graph and, for every strategy, the cross-block edges.
    ``block_size_max`` caps block sizes below the encoding's capacity.
    ``firing_corpus`` is provenance only (``co_firing``); ``co_firing_threshold``
    is the Jaccard threshold of ``co_firing``; ``max_edges`` the edge budget.
    """

    strategy: str
    cosine_threshold: float = 0.3
    block_size_max: int | None = None
    firing_corpus: tuple[str, ...] | None = None
    co_firing_threshold: float = 0.3
    max_edges: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, str) or self.strategy not in STRATEGIES:
            raise ClusteringError(
                f"BlockFormation.strategy: got {self.strategy!r}; allowed {', '.join(STRATEGIES)}"
            )
        put = object.__setattr__
        put(
            self,
            "cosine_threshold",
            real_in("BlockFormation.cosine_threshold", self.cosine_threshold, 0.0, 1.0),
        )
        if self.block_size_max is not None:
            put(
                self,
                "block_size_max",
                int_at_least("BlockFormation.block_size_max", self.block_size_max, 1),
            )
        if self.firing_corpus is not None:
            if self.strategy != "co_firing":
                raise ClusteringError(
                    f"BlockFormation.firing_corpus: got {self.firing_corpus!r} with strategy "
                    f"{self.strategy!r}; allowed only with strategy 'co_firing' (else None)"
                )
            put(self, "firing_corpus", _corpus(self.firing_corpus))
        put(
            self,
            "co_firing_threshold",
            real_in(
                "BlockFormation.co_firing_threshold",
                self.co_firing_threshold,
                0.0,
                1.0,
                lo_open=True,
            ),
        )
        if self.max_edges is not None:
            put(self, "max_edges", int_at_least("BlockFormation.max_edges", self.max_edges, 1))

    def resolved_max_edges(self) -> int:
        """The edge budget: ``max_edges``, else ``$POLYGRAM_MAX_EDGES``, else 50,000,000."""
        if self.max_edges is not None:
            return self.max_edges
        env = os.environ.get(MAX_EDGES_ENV, "").strip()
        if not env:
            return DEFAULT_MAX_EDGES
        try:
            v = int(env)
        except ValueError:
            v = 0
        if v < 1:
            raise ClusteringError(f"${MAX_EDGES_ENV}: got {env!r}; expected an integer >= 1")
        return v

    def cap(self, max_features: int) -> int:
        """Largest block size: ``block_size_max`` if set, else the encoding capacity."""
        return max_features if self.block_size_max is None else self.block_size_max


def _corpus(value: object) -> tuple[str, ...]:
    items: Iterable[object] = (value,) if isinstance(value, str) else value  # type: ignore[assignment]
    try:
        out = tuple(items)
    except TypeError:
        out = (value,)
    if not out or not all(isinstance(s, str) for s in out):
        raise ClusteringError(
            f"BlockFormation.firing_corpus: got {value!r}; expected None, a string or a "
            "sequence of strings"
        )
    return out  # type: ignore[return-value]
