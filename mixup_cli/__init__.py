"""The ``mixup-sweep`` command line: the top layer, over sweeps, cluster and dashboards.

``mixup_core`` ← ``sweeps`` ← {``dashboards``, ``cluster``} ← ``mixup_cli``: this package only
parses arguments, calls the typed functions of the layers below and prints what they return.
"""
