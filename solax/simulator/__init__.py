"""A stateful fake SolaX Cloud (VPP control API + EV charger API) served over real HTTP.

    python -m solax.simulator --port 8765 --seed 1 --fleet demo

Python: `solax.simulator.testing.running_simulator(**knobs)`; knobs in `solax.simulator.config.SimConfig`;
control API under `/_sim/` (see `solax.simulator.app`).
"""

from __future__ import annotations

from .config import DEFAULT_TOKEN, FaultRule, SimConfig
from .core import Simulator
from .fleets import FLEETS

__all__ = ["DEFAULT_TOKEN", "FLEETS", "FaultRule", "SimConfig", "Simulator"]
