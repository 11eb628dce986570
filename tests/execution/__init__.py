"""Tests of sweeps/execution."""
