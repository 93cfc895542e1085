"""The tests run the model as its programs do: with `sim.configure()` applied."""

import sim

sim.configure()
