"""Tests of mixup_core."""
