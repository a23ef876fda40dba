"""Sweeps: a grid of `launch.run_experiment` runs (grid expansion and naming, planning and
validating each point, running them on a backend, sweep.json)."""
