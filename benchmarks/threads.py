"""One BLAS thread for every benchmark, set before NumPy loads.

On this shared 2-core box a second OpenBLAS (or OpenMP) thread that gets descheduled turns a
0.5 ms residual into 8 ms, and the noise lands on whichever tool happens to call BLAS. Every
benchmark imports this module before NumPy (the import pins the threads); child processes
inherit the setting through the environment. A value already in the environment wins, so
``OPENBLAS_NUM_THREADS=2 python -m benchmarks.harness`` still measures two threads.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["BLAS_THREAD_VARIABLES", "blas_threads", "pin_blas_threads"]

#: The variables OpenBLAS, MKL, OpenMP and the BLIS/Accelerate builds of NumPy read at load.
BLAS_THREAD_VARIABLES: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def pin_blas_threads(threads: int = 1) -> dict[str, str]:
    """Set every BLAS thread variable to ``threads`` unless the environment already sets it.

    Must run before NumPy is imported (BLAS reads these once, when it loads); warns if NumPy is
    already loaded, since the setting would then only reach child processes.
    """
    if "numpy" in sys.modules:
        warnings.warn(
            "NumPy was imported before pin_blas_threads(): the BLAS thread count of this "
            "process is already fixed; only child processes get the new setting",
            RuntimeWarning,
            stacklevel=2,
        )
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    return blas_threads()


def blas_threads() -> dict[str, str]:
    """The BLAS thread variables as this process sees them (for the record of a run)."""
    return {name: os.environ.get(name, "unset") for name in BLAS_THREAD_VARIABLES}


pin_blas_threads()
