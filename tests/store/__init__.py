"""Tests of sweeps/store."""
