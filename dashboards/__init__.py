"""Reports of finished (or running) sweeps, drawn from their Parquet records.

``dashboards`` reads a sweep through its handle (``sweeps.load_sweep``) and draws with matplotlib
(``Figure`` objects, no pyplot state, so it runs headless). Nothing happens at import: sweeps,
Optuna (fANOVA) and MLflow are imported only by the functions that need them, and only
:func:`dashboards.report.log_report_to_mlflow` talks to MLflow.

Entry point: :func:`dashboards.report.build_report` (``mixup-sweep report NAME``).
"""
