"""benchmarks/nab.py on the NAB subset in ../shared/data (present in CI and on this machine).

Pins the figures the README and the issue note state, so that a detector change that loses
them fails here rather than in a reader's hands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent / "shared" / "data" / "nab"
sys.path.insert(0, str(ROOT / "benchmarks"))

needs_nab = pytest.mark.skipif(not (NAB / "data").exists(), reason="shared NAB data not present")


@needs_nab
def test_benchmark_table_on_the_31_files(capsys):
    """The figures measured on the 31 files (realAdExchange and realTraffic added), not goals:
    the hybrid (the default until 2026-12-06) 70.6 standard in-sample and 70.6
    leave-one-category-out (ARTime publishes 73.6 on these files, CAD OSE 66.1), the ensemble
    (its alert tier without the spatial alert) 55.0, zscore 20.5; relative entropy 54.9 and
    the default ``hybrid_entropy`` (the hybrid with the relative entropy alarms it confirms,
    resting 52 points after an alert) 75.5 (LOCO 75.5: gains on realTraffic and
    realKnownCause, small losses on the other two). About 35 s here."""
    import nab
    from granite_panel.detection.detectors import DEFAULT_DETECTOR

    assert nab.main(["--data", str(NAB / "data"), "--labels", str(NAB / "labels"),
                     "--detectors", "zscore,ensemble,hybrid,relative_entropy,hybrid_entropy",
                     "--loco"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()]
    rows, loco, held_out, last = {}, {}, {}, None
    for row in lines:
        if row[0] in ("zscore", "ensemble", "hybrid", "relative_entropy", "hybrid_entropy") \
                and len(row) >= 4 and last is None:
            rows[row[0]], last = row, row[0]
        elif row[0] == "LOCO" and last is not None:
            loco[last] = row
        elif row[:2] == ["held", "out,"] and last is not None:
            held_out[last], last = " ".join(row), None
    standard = {name: float(row[1]) for name, row in rows.items()}
    assert standard["hybrid"] >= 70.0  # measured 70.6
    assert float(loco["hybrid"][1]) >= 70.0  # measured 70.6: every fold picks the same threshold
    # each held-out category's own figure; the two categories nothing was developed on:
    # realAdExchange 71.9, realTraffic 70.0 (realKnownCause 63.0, artificialWithAnomaly 92.7)
    figures = dict(part.rsplit(" ", 1) for part in held_out["hybrid"].split(": ", 1)[1]
                   .split(", ") if not part.endswith(")"))
    assert float(figures["realAdExchange"]) >= 71.0 and float(figures["realTraffic"]) >= 69.0
    assert "artificialNoAnomaly no windows (raw 0.00)" in held_out["hybrid"]  # no alarm
    assert standard["ensemble"] >= 54.5  # measured 55.0
    assert standard["zscore"] < 25.0  # measured 20.5
    assert 54.0 <= standard["relative_entropy"] <= 56.0  # measured 54.9
    assert DEFAULT_DETECTOR == "hybrid_entropy"  # the row below is the live default's
    assert standard["hybrid_entropy"] >= 75.0  # measured 75.5
    assert float(loco["hybrid_entropy"][1]) >= 74.5  # measured 75.5
    figures = dict(part.rsplit(" ", 1) for part in held_out["hybrid_entropy"].split(": ", 1)[1]
                   .split(", ") if not part.endswith(")"))
    assert float(figures["realTraffic"]) >= 85.0  # measured 87.2 (the hybrid: 70.0)
    assert float(figures["realKnownCause"]) >= 64.0  # measured 64.7 (63.0)
    assert float(figures["realAdExchange"]) < 71.9  # measured 70.7: below the hybrid's 71.9


def test_the_analyses_measure_the_first_detector_named_else_the_default():
    """``--sensitivity`` / ``--cv`` / ``--loco-knobs`` analyse the first of ``--detectors``
    (README commands that name ``hybrid`` still measure it), else the live default."""
    import nab
    from granite_panel.detection.detectors import DEFAULT_DETECTOR

    assert nab.analysed_detector("hybrid") == "hybrid"
    assert nab.analysed_detector(" ensemble , hybrid") == "ensemble"
    assert nab.analysed_detector(None) == nab.analysed_detector("") == DEFAULT_DETECTOR


def test_leave_one_file_out_picks_on_the_other_files():
    """Two candidates, two files: each file is scored with what wins on the other one."""
    import nab
    from granite_panel.evaluation.nab import FileLabels

    labels = FileLabels(1000, [(500, 519)], name="f")  # probation 150 rows, one window
    hit, miss = np.zeros(1000), np.zeros(1000)
    hit[505] = 1.0  # detects inside the window
    good_on_a = {"a": (hit, labels), "b": (miss, labels)}
    good_on_b = {"a": (miss, labels), "b": (hit, labels)}
    score, picks = nab.leave_one_file_out([good_on_a, good_on_b])
    # holding out "a" picks the candidate that wins on "b" (good_on_b), which misses "a";
    # and the other way round: both held-out files are missed
    assert picks == [1, 0]
    assert score == pytest.approx(0.0)


def test_leave_one_category_out_never_sees_the_scored_category():
    """Candidate 0 wins only on category A, candidate 1 only on B (two files each): held-out A
    must be scored with candidate 1 (what wins on B) and so be missed, and the other way round.
    Were the held-out category seen, each fold would pick its winner and score 100."""
    import nab
    from granite_panel.evaluation.nab import FileLabels

    labels = FileLabels(1000, [(500, 519)], name="f")
    hit, miss = np.zeros(1000), np.zeros(1000)
    hit[505] = 1.0
    files = ["A/1.csv", "A/2.csv", "B/1.csv", "B/2.csv"]
    wins_a = {f: ((hit if f.startswith("A") else miss), labels) for f in files}
    wins_b = {f: ((hit if f.startswith("B") else miss), labels) for f in files}
    per_category = {}
    score, picks = nab.leave_one_category_out([wins_a, wins_b], per_category=per_category)
    assert picks == [1, 0]
    assert score == pytest.approx(0.0)
    # each category's own held-out figure (normalised, raw): both windows missed, raw -2
    assert per_category == {"A": (pytest.approx(0.0), pytest.approx(-2.0)),
                            "B": (pytest.approx(0.0), pytest.approx(-2.0))}
    # a candidate good everywhere beats one that misses everywhere in every fold
    good = {f: (hit, labels) for f in files}
    blind = {f: (miss, labels) for f in files}
    score, picks = nab.leave_one_category_out([blind, good])
    assert picks == [1, 1] and score > 90.0


def test_loco_select_chooses_the_row_without_the_held_out_category():
    """--loco-select: the row (detector or combination) is itself chosen per fold. A row that
    wins only on the held-out category is never the one that fold chooses."""
    import nab
    from granite_panel.evaluation.nab import FileLabels

    labels = FileLabels(1000, [(500, 519)], name="f")
    hit, miss = np.zeros(1000), np.zeros(1000)
    hit[505] = 1.0
    files = ["A/1.csv", "B/1.csv", "C/1.csv"]
    rows = {
        "only_a": {f: ((hit if f.startswith("A") else miss), labels) for f in files},
        "b_and_c": {f: ((miss if f.startswith("A") else hit), labels) for f in files},
    }
    lines = nab.selection_cross_validation(rows)
    standard = next(line for line in lines if line.strip().startswith("standard"))
    # A held out: only b_and_c wins on B and C, so A is missed; B (or C) held out: each of
    # the two rows hits one of the two seen files, and the tie goes to the first, only_a,
    # which misses the held-out file too. Everything held out is missed.
    assert "A: b_and_c" in standard and "B: only_a" in standard
    assert float(standard.split()[1]) == pytest.approx(0.0)


@needs_nab
def test_a_variant_row_scores_the_detector_with_its_own_settings(capsys):
    """--variant NAME:KEY=VALUE,... is a row of NAME with those keyword arguments:
    hybrid_entropy without its rest scores as confirm:hybrid+relative_entropy (74.5), below
    its default (75.5). About 20 s."""
    import nab

    assert nab.main(["--data", str(NAB / "data"), "--labels", str(NAB / "labels"),
                     "--detectors", "hybrid_entropy", "--variant", "hybrid_entropy:rest=0",
                     "--combine", "confirm:hybrid+relative_entropy"]) == 0
    table = capsys.readouterr().out.split("total time")[0].strip().splitlines()[-3:]
    standard = {line.split()[0]: float(line.split()[1]) for line in table}
    assert standard["hybrid_entropy[rest=0]"] == standard["confirm:hybrid+relative_entropy"]
    assert standard["hybrid_entropy"] >= standard["hybrid_entropy[rest=0]"] + 1.0


def test_confirm_counts_an_alarm_only_where_the_first_member_flags_the_point():
    """confirm:a+b is a's score, 1.0 where b reaches its alarm level *and* a reaches its own
    live threshold (medium cut-off); alarm:a+b raises every b alarm."""
    import nab

    hybrid = np.array([0.1, 0.3, 0.3, 0.6, 0.1])  # live threshold 0.25 (medium)
    entropy = np.array([1.0, 1.0, 0.0, 0.0, 0.0])  # alarm 1.0
    names = ["hybrid", "relative_entropy"]
    assert nab.COMBINERS["confirm"]([hybrid, entropy], names).tolist() == [0.1, 1.0, 0.3, 0.6,
                                                                          0.1]
    assert nab.COMBINERS["alarm"]([hybrid, entropy], names).tolist() == [1.0, 1.0, 0.3, 0.6, 0.1]


def test_rank_combines_causal_ranks_that_later_scores_do_not_change():
    """rank:a+b averages each member's mid-rank among its own earlier scores: the first score
    is 0.5, a new maximum ranks 1.0, ties count half, and a point's rank does not depend
    on later points (a stream can compute it)."""
    import nab

    scores = np.array([0.2, 0.5, 0.5, 0.1, 0.9, 0.5])
    assert nab.causal_rank(scores).tolist() == [0.5, 1.0, 0.75, 0.0, 1.0, 0.6]
    longer = np.concatenate([scores, [0.0, 1.0, 0.3]])
    assert nab.causal_rank(longer)[:6].tolist() == nab.causal_rank(scores).tolist()
    other = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    # other's ranks: 0.5, 0.5, 1.0, 1/3, 1.5/4, 4.5/5
    assert nab.COMBINERS["rank"]([scores, other], ["hybrid", "relative_entropy"]) == (
        pytest.approx([0.5, 0.75, 0.875, 1 / 6, 0.6875, 0.75]))


@needs_nab
def test_w1acas_is_scored_causally_beside_the_default(capsys):
    """benchmarks/nab_w1acas.py: tsfm_public's W1ACAS on the hybrid's one-step residuals,
    scored like every detector (rows, LOCO), on two files of two categories; a point's
    p-value does not depend on later points (to float noise: its calibration window grows
    with the series it is given)."""
    import nab
    import nab_w1acas

    assert nab_w1acas.main(["--data", str(NAB / "data"), "--labels", str(NAB / "labels"),
                            "--only", "TravelTime_387,exchange-2_cpc"]) == 0
    out = capsys.readouterr().out
    assert "2 files" in out and "W1ACAS" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for row in ("w1acas", "w1acas_likelihood", "alarm:hybrid+w1acas_likelihood", "hybrid"):
        assert row in rows and "(" in rows[row]
    values = nab.load_corpus(NAB / "data", NAB / "labels")[
        "realTraffic/TravelTime_387.csv"][1]
    short, full = nab_w1acas.w1acas_scores(values[:700]), nab_w1acas.w1acas_scores(values)
    assert np.all((full >= 0) & (full <= 1))
    assert np.abs(short - full[:700]).max() < 1e-3


@needs_nab
def test_cad_ose_with_nabs_inputs_reproduces_its_published_score():
    """The CAD OSE port given what NAB's runner gives it (the file's min / max, its
    probation for the rest period) scores as NAB's published contextOSE results do on these
    31 files, 66.1 standard (../shared/data/README.md); measured 66.0. About 1-2 min."""
    import nab

    from granite_panel.evaluation.nab import score_corpus

    corpus = nab.load_corpus(NAB / "data", NAB / "labels")
    scores, _, _ = nab.run_detector("cad_ose", corpus, reference=True)
    assert abs(score_corpus(scores)["standard"].normalized - 66.1) <= 0.2


@needs_nab
def test_windowed_gaussian_reproduces_its_published_score():
    """NAB's standard profile, one corpus-wide threshold swept in-sample: the published result
    file scores 37.7 on these 31 files (../shared/data/README.md); measured 37.70. About 5 s."""
    import nab

    from granite_panel.evaluation.nab import score_corpus

    corpus = nab.load_corpus(NAB / "data", NAB / "labels")
    assert len(corpus) == 31
    scores, _, _ = nab.run_detector("windowed_gaussian", corpus)
    # 37.7 is rounded to 0.1: a port within 0.05 of it rounds the same
    assert abs(score_corpus(scores)["standard"].normalized - 37.7) <= 0.05
