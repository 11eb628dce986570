"""Tests of mixup_cli and the deploy configs."""
