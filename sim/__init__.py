"""Agent-based model of elderly-care demand and supply in Taiyuan, Shanxi (Mesa)."""

from sim.allocator import keep_freed_memory

keep_freed_memory()

from sim.model import CareModel  # noqa: E402
from sim.params import Params  # noqa: E402

__all__ = ["CareModel", "Params"]
