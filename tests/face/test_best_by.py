"""``best NAME --by KEY``: the per-key summary on demand (table with 4 significant digits, JSON
and CSV at full precision), a one-line refusal for a key that was not searched, and sampled
config values printed with 4 significant digits in ``best``'s table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from sweeps.store.records import TrialRecord
from tests.sweep_helpers import mixup_sweep, write_finished_sweep

METRIC = "val/acc_rare"
ALPHAS = (0.1, 1.0, 4.0)
STOPS = (200, None)
SEEDS = (0, 1, 2)


def value(alpha: float, stop: int | None, repeat: int) -> float:
    """The switch-off epoch drives the metric; α barely; digits past the 4th on purpose."""
    return 0.3 + 0.6 * (stop is None) + 0.01 * alpha + 0.0123456789 * repeat


def spec_text(name: str, space: dict[str, dict[str, object]], algorithm: str = "grid") -> str:
    return yaml.safe_dump({"name": name, "seeds": list(SEEDS),
                           "search": {"algorithm": algorithm},
                           "objective": {"metric": METRIC, "mode": "max"},
                           "search_space": space})


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished grid sweep, α × switch-off epoch, each point run three times (as repeats of
    a grid with num_samples 3), three seeds a trial; and a sampled one (uniform α)."""
    root = tmp_path_factory.mktemp("best_by")
    records = [TrialRecord(f"g{i:02d}", {"mixup.alpha": a, "mixup.stop_epoch": s},
                           status="TERMINATED",
                           epochs={10: {"epoch": 10, METRIC: value(a, s, r),
                                        METRIC + "_std": 0.01}})
               for i, (a, s, r) in enumerate((a, s, r) for a in ALPHAS for s in STOPS
                                             for r in range(3))]
    write_finished_sweep(root, "grid", records, seeds=SEEDS, spec_text=spec_text("grid", {
        "mixup.alpha": {"kind": "grid", "values": list(ALPHAS)},
        "mixup.stop_epoch": {"kind": "grid", "values": list(STOPS)}}))
    sampled = [TrialRecord(f"s{i:02d}", {"mixup.alpha": 0.1 * (i + 1), "mixup.stop_epoch": None},
                           status="TERMINATED",
                           epochs={10: {"epoch": 10, METRIC: 0.5 + 0.01 * i,
                                        METRIC + "_std": 0.01}})
               for i in range(12)]
    write_finished_sweep(root, "sampled", sampled, seeds=SEEDS, spec_text=spec_text(
        "sampled", {"mixup.alpha": {"kind": "uniform", "low": 0.05, "high": 2.0}}, "random"))
    return root


def best(storage: Path, name: str, *args: str) -> str:
    out = mixup_sweep("best", name, "--storage", str(storage), *args, cwd=storage)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_best_by_a_key_prints_its_levels_with_mean_interval_and_n(storage: Path) -> None:
    out = best(storage, "grid", "--by", "mixup.alpha")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("key "))
    assert lines[header].split() == ["key", "level", "mean", "95%", "interval", "n", "trials",
                                     "seed", "runs"]
    rows = [line.split() for line in lines[header + 1:header + 4]]
    assert [r[1] if i == 0 else r[0] for i, r in enumerate(rows)] == ["0.1", "1.0", "4.0"]
    first = rows[0]
    assert first[0] == "mixup.alpha" and first[-3:] == ["6", "6", "18"]  # points, trials, runs
    means = [sum(value(0.1, s, r) for s in STOPS for r in range(3)) / 6]
    assert first[2] == f"{means[0]:.4g}"
    low, high = (float(x) for x in first[3].strip("[,").split() + first[4].strip("]").split())
    assert 0.0 <= low < means[0] < high <= 1.0
    assert "mixup.stop_epoch" not in out.split("Reading:")[0]  # only the key asked for
    assert lines[-1].startswith("Reading: mixup.alpha moves the mean val/acc_rare across its "
                                "levels (")


def test_best_by_all_is_every_searched_key_and_the_sentence_names_the_one_that_drives_it(
        storage: Path) -> None:
    out = best(storage, "grid", "--by", "all")
    assert "mixup.alpha" in out and "mixup.stop_epoch" in out and "never" in out
    reading = out.strip().splitlines()[-1]
    assert reading.startswith("Reading: mixup.stop_epoch moves the mean val/acc_rare most (")
    assert "intervals do not overlap); mixup.alpha least (" in reading


def test_an_unknown_key_is_one_line_naming_it_and_the_searched_keys(storage: Path) -> None:
    out = mixup_sweep("best", "grid", "--storage", str(storage), "--by", "mixup.nope",
                      cwd=storage)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert "--by mixup.nope: not a searched key" in out.stderr
    assert "(searched: mixup.alpha, mixup.stop_epoch)" in out.stderr


def test_json_and_csv_keep_full_precision(storage: Path) -> None:
    doc = json.loads(best(storage, "grid", "--by", "mixup.alpha", "--format", "json"))
    assert doc["metric"] == METRIC and doc["column"] == f"best/{METRIC}" and doc["seeds"] == 3
    assert doc["sentence"].startswith("mixup.alpha moves the mean")
    first = doc["levels"][0]
    exact = sum(value(0.1, s, r) for s in STOPS for r in range(3)) / 6
    assert (first["key"], first["level"], first["value"]) == ("mixup.alpha", "0.1", 0.1)
    assert first["mean"] == pytest.approx(exact, rel=1e-15)  # not rounded to 4 digits
    assert round(first["mean"], 4) != first["mean"]
    assert 0 <= first["ci_low"] < first["mean"] < first["ci_high"] <= 1
    assert (first["points"], first["trials"], first["seed_runs"]) == (6, 6, 18)
    rows = list(csv.DictReader(io.StringIO(best(storage, "grid", "--by", "mixup.alpha",
                                                 "--format", "csv"))))
    assert [r["level"] for r in rows] == ["0.1", "1.0", "4.0"]
    assert float(rows[0]["mean"]) == first["mean"] and float(rows[0]["ci_low"]) == first["ci_low"]


def test_a_sampled_key_is_binned_and_its_values_print_with_four_significant_digits(
        storage: Path) -> None:
    out = best(storage, "sampled", "--by", "mixup.alpha")
    levels = [line.split()[-6] for line in out.splitlines()
              if line.lstrip().startswith("[") or line.startswith("mixup.alpha")]
    # 12 trials: 4 bins of 3 (5 would leave bins of 2, too few for an interval)
    assert len(levels) == 4 and all(len(v) <= 8 for v in levels), out
    assert "no interval" not in out
    table = best(storage, "sampled", "--top", "12")
    assert "0.30000000000000004" not in table and "0.7000000000000001" not in table
    alpha_cells = [line.split()[-1] for line in table.splitlines() if line[:1].isdigit()]
    assert "0.3" in alpha_cells and "0.7" in alpha_cells, table
    rows = json.loads(best(storage, "sampled", "--top", "12", "--json"))
    alphas = {r["config"]["mixup.alpha"] for r in rows}
    assert 0.30000000000000004 in alphas  # JSON keeps every digit
