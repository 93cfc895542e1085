"""Agent-based model of elderly-care demand and supply in Taiyuan, Shanxi (Mesa)."""

from sim.engine.allocator import keep_freed_memory
from sim.engine.numba_cache import use_versioned_cache

keep_freed_memory()
use_versioned_cache()  # before any module with compiled functions is imported

from sim.core.model import CareModel  # noqa: E402
from sim.params.sections import Params  # noqa: E402

__all__ = ["CareModel", "Params"]
