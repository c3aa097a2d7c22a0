"""Q-Orca ``.q.orca.md`` emission and verification.

Polygram defines no file format: a dictionary is written as a standard Q-Orca
markdown machine (MPS layout for MPSRung1 / Rung3, HEA layout for HEA_Rung2)
and checked with the ``q-orca`` package's own parser, verifier and Gram helpers.
"""

from polygram.qorca.emit import render_machine, write_qorca
from polygram.qorca.verify import QorcaVerification, verify_qorca

__all__ = ["QorcaVerification", "render_machine", "verify_qorca", "write_qorca"]
