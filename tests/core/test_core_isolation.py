import json
import subprocess
import sys

FORBIDDEN = ("ray", "mlflow", "optuna", "pyarrow")


def test_importing_mixup_core_pulls_in_no_orchestration_library():
    code = (
        "import json, sys, mixup_core, mixup_core.reproduce, mixup_core.training\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
