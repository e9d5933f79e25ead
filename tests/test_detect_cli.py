"""``detect`` subcommand: output format, causality, malformed input -> one line + exit 2."""

import argparse
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from granite_panel.cli.detect import add_detect_parser, main, run_detect


def write_csv(path, n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S"),
            "value": np.sin(np.arange(n) / 10) + 0.1 * rng.standard_normal(n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def detect(argv):
    parser = argparse.ArgumentParser()
    add_detect_parser(parser.add_subparsers(dest="command"))
    return run_detect(parser.parse_args(["detect", *argv]))


def test_subprocess_writes_scores(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = write_csv(src)
    proc = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "detect", str(src), "-o", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    res = pd.read_csv(out)
    assert list(res.columns) == ["timestamp", "value", "anomaly_score"]
    assert len(res) == len(frame) and res["anomaly_score"].between(0, 1).all()
    pd.testing.assert_series_equal(res["value"], frame["value"])


@pytest.mark.parametrize(
    "options",
    [["--detector", "zscore"], ["--detector", "forecast"], ["--detector", "ensemble"], [],
     ["--season", "24"]],
    ids=["zscore", "forecast", "ensemble", "hybrid (default)", "hybrid told the season"],
)
def test_causal_changing_later_rows_keeps_earlier_scores(tmp_path, options):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    frame = write_csv(a)
    frame.loc[400:, "value"] = 1000.0 + np.arange(len(frame) - 400)
    frame.to_csv(b, index=False)
    assert detect([str(a), "-o", str(tmp_path / "sa.csv"), *options]) == 0
    assert detect([str(b), "-o", str(tmp_path / "sb.csv"), *options]) == 0
    sa = pd.read_csv(tmp_path / "sa.csv")["anomaly_score"].to_numpy()
    sb = pd.read_csv(tmp_path / "sb.csv")["anomaly_score"].to_numpy()
    np.testing.assert_array_equal(sa[:400], sb[:400])


def test_stdout_when_no_output(tmp_path, capsys):
    src = tmp_path / "in.csv"
    write_csv(src, n=20)
    assert main([str(src), "--detector", "zscore"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "timestamp,value,anomaly_score"


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("", "empty"),
        ("timestamp,value\n", "no data rows"),
        ("a,b\nx,2\n", "no timestamp column found"),
        ("timestamp,value\n2024-01-01,x\n2024-01-02,y\n", "'value' holds text such as 'x'"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,abc\n", "not a number"),
        ("timestamp,value\nnot-a-date,1\n", "not a date"),
    ],
)
def test_malformed_input_exits_2_with_one_line(tmp_path, capsys, content, fragment):
    src = tmp_path / "bad.csv"
    src.write_text(content)
    assert detect([str(src), "-o", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_missing_file_and_unknown_detector_exit_2(tmp_path, capsys):
    assert detect([str(tmp_path / "nope.csv")]) == 2
    src = tmp_path / "in.csv"
    write_csv(src, n=10)
    assert detect([str(src), "--detector", "zscor"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "did you mean 'zscore'" in err[1]


def test_subprocess_malformed_one_line_exit_2(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("a,b\n1,2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "granite_panel.cli", "detect", str(src)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_season_tells_the_hybrid_its_period(tmp_path, capsys):
    from granite_panel.detection.detectors import make_detector

    src = tmp_path / "in.csv"
    frame = write_csv(src)
    assert detect([str(src), "-o", str(tmp_path / "o.csv"), "--season", "24"]) == 0
    got = pd.read_csv(tmp_path / "o.csv")["anomaly_score"].to_numpy()
    want = make_detector("hybrid", period=24).score_series(frame["value"].to_numpy(dtype=float))
    np.testing.assert_allclose(got, want)
    assert not np.allclose(got, make_detector("hybrid").score_series(frame["value"].to_numpy()))
    # the hybrids built on the hybrid take it too
    assert detect([str(src), "-o", str(tmp_path / "e.csv"), "--season", "24",
                   "--detector", "hybrid_entropy"]) == 0
    got = pd.read_csv(tmp_path / "e.csv")["anomaly_score"].to_numpy()
    want = make_detector("hybrid_entropy", period=24).score_series(frame["value"].to_numpy())
    np.testing.assert_allclose(got, want)
    for bad, fragment in ((["--detector", "zscore", "--season", "24"], "hybrid"),
                          (["--season", "0"], ">= 1")):
        assert detect([str(src), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0]


def test_a_file_shorter_than_the_learning_period_gets_one_note(tmp_path, capsys):
    """The hybrid family raises no alert in a series' first 288 values; a short file says
    so on stderr (one line, exit 0) instead of leaving its missing alerts unexplained."""
    from granite_panel.detection.detectors import make_detector

    assert make_detector("hybrid_entropy").learning_points == 288
    assert make_detector("ensemble").learning_points == 288
    assert make_detector("zscore").learning_points == 0
    short, long_ = tmp_path / "short.csv", tmp_path / "long.csv"
    write_csv(short, n=200)
    write_csv(long_, n=400)
    assert detect([str(short), "-o", str(tmp_path / "a.csv")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["granite-panel detect: note: the series has fewer than 288 values, the "
                   "hybrid_entropy detector's learning period: there it flags points "
                   "(score >= 0.25) but raises no alert (score 1)"]
    assert detect([str(long_), "-o", str(tmp_path / "b.csv")]) == 0
    assert capsys.readouterr().err == ""
    assert detect([str(short), "--detector", "zscore", "-o", str(tmp_path / "c.csv")]) == 0
    assert capsys.readouterr().err == ""  # the z-score has no learning period
    many = pd.concat([pd.DataFrame({"unique_id": name, "ds": pd.read_csv(path)["timestamp"],
                                    "y": pd.read_csv(path)["value"]})
                      for name, path in (("a", short), ("b", long_), ("c", long_))])
    many.to_csv(tmp_path / "many.csv", index=False)
    assert detect([str(tmp_path / "many.csv"), "-o", str(tmp_path / "d.csv")]) == 0
    assert "1 of 3 series have fewer than 288 values" in capsys.readouterr().err


def test_rows_out_of_time_order_are_scored_in_time_order(tmp_path, capsys):
    """An export whose rows are not sorted (merged logs, a reversed dump) is scored as the
    stream it records: each row's score is the one it gets in the sorted file, written back on
    its own row, and one note says so. Before, the rows were scored top to bottom."""
    frame = write_csv(tmp_path / "sorted.csv")
    frame.loc[450, "value"] += 5.0  # a spike the detector flags in time order
    frame.to_csv(tmp_path / "sorted.csv", index=False)
    shuffled = frame.sample(frac=1.0, random_state=3)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    assert detect([str(tmp_path / "sorted.csv"), "-o", str(tmp_path / "a.csv")]) == 0
    assert "time order" not in capsys.readouterr().err
    assert detect([str(tmp_path / "shuffled.csv"), "-o", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert "not in time order: each series was scored in time order" in err
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert b["timestamp"].tolist() == shuffled["timestamp"].tolist()  # the file's row order
    by_time = b.sort_values("timestamp", kind="stable").reset_index(drop=True)
    np.testing.assert_array_equal(by_time["anomaly_score"], a["anomaly_score"])
    assert a["anomaly_score"].iloc[450] >= 0.25


def test_long_files_are_put_in_time_order_per_series(tmp_path, capsys):
    rows = []
    for name, offset in (("a", 0.0), ("b", 3.0)):
        part = write_csv(tmp_path / f"{name}.csv", n=400, seed=int(offset))
        part.insert(0, "series", name)
        part["value"] += offset
        rows.append(part)
    ordered = pd.concat(rows, ignore_index=True)
    ordered.to_csv(tmp_path / "ordered.csv", index=False)
    mixed = pd.concat([rows[0], rows[1].iloc[::-1]], ignore_index=True)  # b written backwards
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    assert detect([str(tmp_path / "ordered.csv"), "-o", str(tmp_path / "o.csv")]) == 0
    assert detect([str(tmp_path / "mixed.csv"), "-o", str(tmp_path / "m.csv")]) == 0
    assert "the rows of 1 of 2 series are not in time order" in capsys.readouterr().err
    o, m = pd.read_csv(tmp_path / "o.csv"), pd.read_csv(tmp_path / "m.csv")
    key = ["series", "timestamp"]
    o, m = o.sort_values(key).reset_index(drop=True), m.sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(m["anomaly_score"], o["anomaly_score"])


def test_utc_offsets_that_change_at_a_dst_switch_and_any_case_of_names(tmp_path, capsys):
    """A local-time export across the spring DST switch (+01:00, then +02:00), with a BOM and
    capitalised headers (as spreadsheets write them): read, ordered by the instant, no
    warning. Before: a pandas FutureWarning (an error in pandas 3), and 'missing column'."""
    instants = pd.date_range("2026-03-28 12:00", periods=48, freq="30min", tz="UTC")
    local = instants.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S%z")
    local = [t[:-2] + ":" + t[-2:] for t in local]  # +0100 -> +01:00
    assert {t[-6:] for t in local} == {"+01:00", "+02:00"}
    text = "\ufeffTimestamp,Value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(local))
    (tmp_path / "dst.csv").write_text(text, encoding="utf-8")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # pandas' mixed-offset warning
        assert detect([str(tmp_path / "dst.csv"), "-o", str(tmp_path / "o.csv"),
                       "--detector", "zscore"]) == 0
    err = capsys.readouterr().err
    assert "time order" not in err and "error" not in err
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out.columns)[1:] == ["Value", "anomaly_score"] and len(out) == 48
