"""Agent-based model of elderly-care demand and supply in Taiyuan, Shanxi (Mesa)."""

from sim.model import CareModel
from sim.params import Params

__all__ = ["CareModel", "Params"]
