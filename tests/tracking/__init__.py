"""Tests of sweeps/tracking."""
