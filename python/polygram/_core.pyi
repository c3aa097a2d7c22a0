"""Stubs of the compiled module ``polygram._core`` (kept honest by tests/test_stubs.py)."""

from collections.abc import Sequence
from typing import Any, Final, final

import numpy as np
import numpy.typing as npt

__version__: Final[str]
HEA_MAX_QUBITS: Final[int]
HEA_MAX_DEPTH: Final[int]
HEA_MAX_ROTATIONS: Final[int]
SCAN_MAX_AXES: Final[int]
MAX_CLUSTERS: Final[int]
BUDGET_SMALL_BYTES: Final[int]

class KernelError(ValueError):
    """A kernel argument is out of its domain."""

class MemoryBudgetError(KernelError):
    """The work would need more memory than the budget allows; refused before allocating."""

@final
class Encoder:
    """An encoding: how knob rows become states."""

    def __new__(
        cls,
        kind: str,
        n_qubits: int | None = None,
        depth: int | None = None,
        rotations: list[str] = ...,
        entangler: str = "ring",
    ) -> Encoder: ...
    @property
    def width(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def states(self, params: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]: ...
    def gram(self, params: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]: ...
    def gram_batch(self, tables: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]: ...
    def branch_law(
        self, params: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
    def schmidt_ranks(self, params: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]: ...

@final
class Scan:
    """A grid of knob writes over a base knob table, with the dictionary's tiers."""

    def __new__(
        cls,
        encoder: Encoder,
        base: npt.NDArray[np.float64],
        slots: Sequence[Sequence[int]],
        values: list[npt.NDArray[np.float64]],
        clusters: Sequence[int],
        n_clusters: int,
    ) -> Scan: ...
    @property
    def n_points(self) -> int: ...
    def sweep(
        self, target: tuple[int, int]
    ) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.uint8], npt.NDArray[np.float64]]: ...
    def grid(
        self, target: tuple[int, int], preserve_tiers: bool, with_knobs: bool = True
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.float64] | None,
        int,
    ]: ...

def set_num_threads(n: int) -> None: ...
def num_threads() -> int: ...
def memory_budget(override_bytes: int | None = None) -> tuple[int, str]:
    """``(bytes, source)`` one result may use (override, ``$POLYGRAM_MAX_GRID_BYTES`` or
    half of physical memory), never above :func:`memory_headroom`."""

def memory_headroom() -> tuple[int, str]:
    """``(bytes, source)`` any one call may allocate now: the least of available memory,
    ``RLIMIT_AS`` above the process size and the memory cgroup's room."""

def connected_components(
    edges: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Components of an (E, 2) edge array as CSR ``(members, offsets)``."""

def cosine_pair_graph(rows: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    """Every ``(a, b)``, ``a < b``, of unit-normalised rows with ``cos >= threshold``."""

def select_panels(
    rows: npt.NDArray[np.float32],
    priority: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    panel_size: int,
    n_visits: int,
    n_panels_max: int,
    coverage_target: float,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    float,
    int,
    int,
    bool,
]:
    """Greedy seeded panels: ``(anchors, members, offsets, cosines, coverage,
    n_covered, n_edges, single_feature)`` in row positions."""

# --- clustered dictionaries (spec 17 §17.13; rust/polygram-py/src/clustered.rs) ---

def pair_graph(
    rows: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    threshold: float,
    max_edges: int | None = None,
) -> tuple[npt.NDArray[np.int64] | None, float | None, int | None]:
    """Tiled pair pass: ``(edges (E, 2) or None over budget, max_c32 or None,
    count reached or None)``."""

def cluster_blocks(
    rows: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    threshold: float,
    max_edges: int,
    cap: int,
    strategy: str,
    *,
    members: npt.NDArray[np.int64] | None = None,
    offsets: npt.NDArray[np.int64] | None = None,
    fires: npt.NDArray[np.uint8] | None = None,
    co_firing_threshold: float = 0.3,
    encoder: Encoder | None = None,
    table: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """The block build: partition, canonical cross edges, c64 cosines, max_c32,
    tier statistics; or only ``over_budget = (graph, reached)``."""

def block_grams(
    encoder: Encoder,
    table: npt.NDArray[np.float64],
    members: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.int64]]:
    """Every block's Gram, flattened, and the start of each."""

def edge_cosines(
    rows: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    i: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Float64 cosines of row pairs."""

def kmeans_assign(
    rows: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    centroids: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Nearest centroid (ties: lowest) and the squared distance to it."""

def route_batch(
    feature_to_expert: npt.NDArray[np.int64],
    n_experts: int,
    activations: npt.NDArray[np.float64],
    top_k: int,
) -> npt.NDArray[np.int64]:
    """Top-``top_k`` experts per row by summed member activation."""
