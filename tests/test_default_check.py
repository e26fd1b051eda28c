"""benchmarks/default_check.py: the rule for choosing the default model, on synthetic reports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "default_check.py"
GROUPS = [(kind, bucket) for kind in ("strokes", "box") for bucket in ("5-15", "15-30", "30-45", "45-60")]


@pytest.fixture(scope="module")
def default_check():
    spec = importlib.util.spec_from_file_location("default_check", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(model: str, kind: str, bucket: str, **means: float) -> dict:
    return {"model": model, "kind": kind, "bucket": bucket, "metrics": {k: {"mean": v} for k, v in means.items()}}


def report(overall: dict[str, float], group_margins: list[float], *, drop: tuple[str, str] | None = None) -> dict:
    """telea and "cand": cand's overall means are telea's + `overall` margins, its hole PSNR per group
    telea's + the group's margin."""
    telea = {"psnr": 26.0, "psnr_hole": 20.0, "ssim_hole": 0.36, "ssim": 0.9, "texture_distance": 400.0}
    cand = {k: v + overall.get(k, 0.0) for k, v in telea.items()}
    rows = [row("telea", "all", "all", **telea), row("cand", "all", "all", **cand)]
    for (kind, bucket), margin in zip(GROUPS, group_margins, strict=True):
        rows.append(row("telea", kind, bucket, psnr_hole=20.0))
        if (kind, bucket) != drop:
            rows.append(row("cand", kind, bucket, psnr_hole=20.0 + margin))
    return {"quality": rows}


WINS = {"psnr": 0.3, "psnr_hole": 0.3, "ssim_hole": 0.005}
SIX_OF_EIGHT = [0.2, 0.1, 0.3, 0.1, 0.2, -0.06, 0.1, -0.2]


def verdict(default_check, rep: dict) -> dict:
    (result,) = default_check.check(rep, "telea")
    return result


def test_a_model_that_wins_overall_and_in_six_groups_qualifies(default_check):
    result = verdict(default_check, report(WINS, SIX_OF_EIGHT))
    assert result["fails"] == [] and result["groups_won"] == 6
    assert result["overall"] == pytest.approx(WINS)
    assert result["groups"]["box/15-30"] == pytest.approx(-0.06)


@pytest.mark.parametrize(
    ("overall", "reason"),
    [
        ({**WINS, "psnr": -0.01}, "overall PSNR -0.01"),
        ({**WINS, "psnr_hole": 0.0}, "overall PSNR hole +0"),  # a tie is not a win
        ({**WINS, "ssim_hole": -0.001}, "overall SSIM hole -0.001"),
    ],
)
def test_each_overall_clause_can_fail_alone(default_check, overall, reason):
    result = verdict(default_check, report(overall, SIX_OF_EIGHT))
    assert result["fails"] == [reason]


def test_five_groups_are_too_few(default_check):
    five = [0.2, 0.1, 0.3, 0.1, 0.2, -0.06, -0.1, -0.2]
    result = verdict(default_check, report(WINS, five))
    assert result["groups_won"] == 5
    assert result["fails"] == ["hole PSNR higher in 5 of 8 groups, fewer than 6"]
    assert verdict(default_check, report(WINS, [0.0] * 2 + [0.1] * 6))["fails"] == []  # ties lose, 6 wins remain
    assert default_check.check(report(WINS, five), "telea", min_groups=5)[0]["fails"] == []


def test_a_group_missing_from_the_report_counts_as_lost(default_check):
    result = verdict(default_check, report(WINS, SIX_OF_EIGHT, drop=("strokes", "5-15")))
    assert result["groups"]["strokes/5-15"] is None and result["groups_won"] == 5
    assert result["fails"] == ["hole PSNR higher in 5 of 8 groups, fewer than 6 (1 missing from the report)"]


def test_the_table_shows_the_margins_and_the_verdict(default_check):
    rep = report(WINS, SIX_OF_EIGHT)
    weak = report({"psnr": -1.0}, [-1.0] * 8)["quality"]
    rep["quality"] += [dict(r, model="weak") for r in weak if r["model"] == "cand"]
    text = default_check.markdown(default_check.check(rep, "telea"), "telea")
    lines = text.splitlines()
    assert lines[2] == "| cand | +0.30 dB | +0.30 dB | +0.005 | 6 of 8 | box/45-60 (-0.20 dB) | 400 | n/a | **yes** |"
    assert lines[3].startswith("| weak | -1.00 dB | +0.00 dB | +0.000 | 0 of 8 | strokes/5-15 (-1.00 dB) |")
    assert "no: overall PSNR -1" in lines[3]
    assert "| cand | +0.20 | +0.10 | +0.30 | +0.10 | +0.20 | -0.06 | +0.10 | -0.20 |" in lines


def test_main_reads_a_report_and_names_the_winners(default_check, tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report(WINS, SIX_OF_EIGHT)))
    assert default_check.main([str(path)]) == 0
    captured = capsys.readouterr()
    assert "**yes**" in captured.out and "qualifying: cand" in captured.err
    path.write_text(json.dumps({"results": []}))
    assert default_check.main([str(path)]) == 1
    assert "not an `inpaint benchmark --json` report" in capsys.readouterr().err
    assert default_check.main([str(path), "--baseline", "nope"]) == 1
    path.write_text(json.dumps(report(WINS, SIX_OF_EIGHT)))
    assert default_check.main([str(path), "--baseline", "nope"]) == 1
    assert "no rows of the baseline 'nope'" in capsys.readouterr().err
    assert default_check.main([str(tmp_path / "missing.json")]) == 1


def test_a_successor_needs_fifteen_percent_less_texture_distance_than_the_current_default(default_check):
    rep = report(WINS, SIX_OF_EIGHT)
    rep["quality"][1]["metrics"]["texture_distance"] = {"mean": 380.0}  # cand
    rep["quality"].append(row("current", "all", "all", texture_distance=440.0))
    (result,) = default_check.check(rep, "telea", current="current")  # the current default is not judged
    assert result["model"] == "cand" and result["texture_gain"] == pytest.approx(1 - 380 / 440)
    assert result["fails"] == ["texture 14% below current's, less than 15%"]
    rep["quality"][1]["metrics"]["texture_distance"] = {"mean": 374.0}  # exactly 15 %
    assert default_check.check(rep, "telea", current="current")[0]["fails"] == []
    assert default_check.check(rep, "telea")[0]["texture_gain"] is None  # no current: no texture clause
    with pytest.raises(ValueError, match="no texture distance of the current default 'nosuch'"):
        default_check.check(rep, "telea", current="nosuch")
