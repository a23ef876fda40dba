"""Sweeps: a grid of `launch.run_experiment` runs (grid expansion and naming, sweep.json)."""
