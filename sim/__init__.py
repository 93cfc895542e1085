"""Agent-based model of elderly-care demand and supply in Taiyuan, Shanxi (Mesa).

`import sim` changes nothing in the process but where this package's compiled kernels are
cached; programs that run the model call `sim.configure()` first (sim/engine/process.py).
"""

from sim.engine import numba_cache

numba_cache.register()  # before any compiled function of the package is defined

from sim.core.model import CareModel  # noqa: E402
from sim.engine.process import configure  # noqa: E402
from sim.params.sections import Params  # noqa: E402

__all__ = ["CareModel", "Params", "configure"]
