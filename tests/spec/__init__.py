"""Tests of sweeps/spec."""
