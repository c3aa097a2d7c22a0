"""Stubs of the compiled module ``polygram._core`` (kept honest by tests/test_stubs.py)."""

from typing import Final, final

import numpy as np
import numpy.typing as npt

__version__: Final[str]

class KernelError(ValueError):
    """A kernel argument is out of its domain."""

@final
class Encoder:
    """An encoding: how knob rows become states."""

    def __new__(
        cls,
        kind: str,
        n_qubits: int = 3,
        depth: int = 1,
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
        slots: list[list[int]],
        values: list[npt.NDArray[np.float64]],
        clusters: list[int],
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
