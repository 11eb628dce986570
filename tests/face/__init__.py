"""Tests of sweeps/sweep.py and sweeps/__init__.py (the Sweep handle, sweeps.run)."""
