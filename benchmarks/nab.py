"""Run every online detector over the NAB files and score them with NAB's rules.

    .venv/bin/python benchmarks/nab.py --data ../shared/data/nab/data \\
        --labels ../shared/data/nab/labels [--detectors zscore,hybrid] [--per-file]
        [--set key=value ...] [--sensitivity] [--cv] [--loco] [--loco-select]

Each file is scored from a fresh detector, row by row as a stream would feed it (the
detector's ``score_series``, which equals ``update`` row by row). One threshold per profile
for the whole corpus, picked by NAB's sweep; ``std@live`` is the standard profile at the
detector's fixed live threshold (``LIVE_THRESHOLDS``) instead. rows/s is total rows over
total detector time.

``--sensitivity`` varies each main knob of the default detector alone and prints NAB
(standard, swept and at the live threshold) beside the synthetic check
(``granite_panel.evaluation.synthetic.synthetic_metrics``: event recall / point precision at
anomaly probabilities 0.05 and 0.01, the season estimated). ``--cv`` is the overfitting
check, leave-one-file-out: for each file, what is tuned is chosen on the other 17 files and
the file is scored with that choice; the 18 held-out scores are summed and normalised.
Two rows: only NAB's threshold tuned (the constants fixed), and the detector's two
operating knobs (``alert_level`` x ``refractory``, 21 settings) tuned with it.

``--loco`` is the headline generalisation check, leave-one-category-out over the top-level
folders (artificialNoAnomaly, artificialWithAnomaly, realAdExchange, realKnownCause,
realTraffic): for each category the corpus threshold (and, for the default detector, the
``CV_GRID`` knobs) is chosen on the other four only, then the held-out category is scored
with it; the figure is the normalised total over the held-out categories, per profile,
and a line below it gives each held-out category's own standard figure (for a category
without windows, which only false positives can score in, its raw score: 0 is no alarm).
``--loco-select`` does the same with the row itself (which detector or combination) chosen
per fold among every row of the run: the held-out figure of "take the best row", which a
row's own LOCO does not give when that row was picked as the best of many on all files.
memory/series is the pickle size in bytes of a detector's state after a 10,000-row series.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from granite_panel.evaluation.synthetic import synthetic_metrics  # noqa: E402
from granite_panel.settings import rows_per_day  # noqa: E402
from granite_panel.detection.detectors import (  # noqa: E402
    DEFAULT_DETECTOR,
    DETECTORS,
    LIVE_THRESHOLDS,
    SEVERITY_CUTOFFS,
    make_detector,
)
from granite_panel.evaluation.nab import (  # noqa: E402
    PROFILES,
    FileLabels,
    load_windows,
    normalize,
    score_corpus,
    score_file,
    sweep_threshold,
    window_indices,
)

STANDARD = PROFILES["standard"]

# knob -> values tried by --sensitivity (defaults marked by the detector itself)
SENSITIVITY = {
    "alert_level": (0.15, 0.2, 0.25, 0.3, 0.35),
    "refractory": (100, 288, 600),
    "spatial_tol": (0.02, 0.05, 0.1),
    "z_flag": (2.5, 3.0, 3.5, 4.0),
    "alpha": (0.2, 0.3, 0.5),
}
CV_GRID = {"alert_level": (0.15, 0.175, 0.2, 0.225, 0.25, 0.275, 0.3),
           "refractory": (100, 288, 600)}


def load_corpus(data_dir: Path, labels_dir: Path):
    """``{name: (timestamps, values, FileLabels)}`` for every CSV that has labels."""
    windows = load_windows(labels_dir)
    corpus = {}
    for path in sorted(data_dir.rglob("*.csv")):
        name = path.relative_to(data_dir).as_posix()
        if name not in windows:
            continue
        frame = pd.read_csv(path)
        ts = pd.to_datetime(frame["timestamp"]).to_numpy(dtype="datetime64[ns]")
        labels = FileLabels(len(frame), window_indices(ts, windows[name]), name=name)
        corpus[name] = (ts, frame["value"].to_numpy(dtype=float), labels)
    return corpus


def nab_inputs(name: str, values: np.ndarray, labels: FileLabels) -> dict:
    """What NAB's runner hands a ported detector before it starts on a file (its min / max
    and probation length): the reference setting, not available to a live stream."""
    if name == "cad_ose":
        return {"value_range": (float(np.nanmin(values)), float(np.nanmax(values))),
                "rest_period": labels.probation / 5.0}
    if name == "knn_cad":
        return {"probation": labels.probation}
    if name == "cad_likelihood":
        return {"probation": labels.probation,
                "value_range": (float(np.nanmin(values)), float(np.nanmax(values)))}
    if name == "relative_entropy":  # uses no probation (NAB only skips it when scoring)
        return {"input_min": float(np.nanmin(values)), "input_max": float(np.nanmax(values))}
    return {}


CACHE: Path | None = None  # --cache: raw scores per (detector, settings, file), reused


def _cache_path(name: str, fname: str, kwargs: dict, reference: bool) -> Path | None:
    if CACHE is None:
        return None
    import hashlib

    import granite_panel.detection as detection

    code = b"".join(p.read_bytes() for p in sorted(Path(detection.__file__).parent.glob("*.py")))
    key = repr((name, fname, sorted(kwargs.items()), reference)).encode() + code
    return CACHE / f"{name}-{hashlib.sha1(key).hexdigest()[:16]}.npy"


def run_detector(name: str, corpus, reference: bool = False, **kwargs) -> tuple[dict, float, int]:
    """Scores of every file by a fresh ``name`` detector; with ``reference`` the ported
    detectors get NAB's per-file inputs (``nab_inputs``). Seconds count scoring only."""
    scores, seconds, rows = {}, 0.0, 0
    for fname, (ts, values, labels) in corpus.items():
        path = _cache_path(name, fname, kwargs, reference)
        if path is not None and path.exists():
            cached = np.load(path)
            scores[fname] = (cached[1:], labels)
            seconds += float(cached[0])
            rows += len(values)
            continue
        extra = nab_inputs(name, values, labels) if reference else {}
        if kwargs.get("period") == "daily":  # the rows of a day, as a replay of the file sets
            extra["period"] = replay_season(ts)
        det = make_detector(name, **{**kwargs, **extra})
        t0 = time.perf_counter()
        s = det.score_series(values)
        dt = time.perf_counter() - t0
        scores[fname] = (s, labels)
        seconds += dt
        rows += len(values)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.concatenate([[dt], s]))
    return scores, seconds, rows


def replay_season(timestamps: np.ndarray) -> int:
    """The season a replay of the file gives its detectors with DETECTOR_SEASON=fixed
    (``Settings.for_replay``): the rows of a day at the file's median step."""
    step = np.median(np.diff(timestamps)) / np.timedelta64(1, "s")
    return rows_per_day(float(step)) or 24


def _or(parts, names):
    """The first member's score, raised to each other member's score where that reaches the
    member's own alarm level (its critical cut-off, ``SEVERITY_CUTOFFS``)."""
    out = parts[0].copy()
    for part, name in zip(parts[1:], names[1:]):
        out = np.maximum(out, np.where(part >= SEVERITY_CUTOFFS[name][2], part, 0.0))
    return out


def _vote(parts, names):
    """Share of the members at or above their own alarm level (critical cut-off)."""
    return np.mean([p >= SEVERITY_CUTOFFS[n][2] for p, n in zip(parts, names)], axis=0)


def _alarm(parts, names):
    """The first member's score, 1.0 where another member reaches its own alarm level."""
    out = parts[0].copy()
    for part, name in zip(parts[1:], names[1:]):
        out = np.where(part >= SEVERITY_CUTOFFS[name][2], 1.0, out)
    return out


def _confirm(parts, names):
    """``_alarm``, counting another member's alarm only where the first member flags the
    point too (reaches its own live threshold, the medium cut-off): two detectors agree."""
    out = parts[0].copy()
    flagged = parts[0] >= SEVERITY_CUTOFFS[names[0]][0]
    for part, name in zip(parts[1:], names[1:]):
        out = np.where(flagged & (part >= SEVERITY_CUTOFFS[name][2]), 1.0, out)
    return out


def causal_rank(scores: np.ndarray) -> np.ndarray:
    """Each score's mid-rank among the scores before it, in [0, 1] (0.5 for the first):
    a rank a stream can compute, unlike a rank over the whole file."""
    seen: list[float] = []
    out = np.empty(len(scores))
    for i, s in enumerate(scores.tolist()):
        lo, hi = bisect.bisect_left(seen, s), bisect.bisect_right(seen, s)
        out[i] = (lo + 0.5 * (hi - lo)) / len(seen) if seen else 0.5
        bisect.insort(seen, s)
    return out


def _rank(parts, names):
    """Mean of the members' causal ranks (``causal_rank``): scores on different scales
    combined by how unusual each is for its own detector so far."""
    return np.mean([causal_rank(p) for p in parts], axis=0)


COMBINERS = {"max": lambda parts, names: np.maximum.reduce(parts),
             "rank": _rank,
             "vote": _vote,
             "alarm": _alarm,
             "confirm": _confirm,
             "mean": lambda parts, names: np.mean(parts, axis=0),
             "or": _or}


def combine(how: str, names: list[str], corpus, reference: bool = False, **kwargs):
    """Per-row ``max``, ``mean``, ``rank`` (``_rank``), ``or`` (``_or``), ``alarm``
    (``_alarm``), ``confirm`` (``_confirm``) or ``vote`` (``_vote``) of several detectors'
    scores (each from a fresh detector per file); seconds are the members' total."""
    if how not in COMBINERS:
        raise SystemExit(f"unknown combination {how!r}; allowed: {', '.join(COMBINERS)}")
    names = [n.strip() for n in names]
    runs = [run_detector(n, corpus, reference, **kwargs) for n in names]
    scores = {f: (COMBINERS[how]([r[0][f][0] for r in runs], names), runs[0][0][f][1])
              for f in corpus}
    return scores, sum(r[1] for r in runs), runs[0][2]


def score_at(scores: dict, threshold: float, profile=STANDARD) -> float:
    """Normalised NAB score of ``{name: (scores, labels)}`` at one fixed threshold."""
    raw = sum(score_file(s, lab, threshold, profile).score for s, lab in scores.values())
    n_windows = sum(len(lab.scored_windows) for _, lab in scores.values())
    return normalize(raw, -profile.a_fn * n_windows, profile.a_tp * n_windows)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def analysed_detector(detectors: str | None) -> str:
    """The detector ``--sensitivity``, ``--cv`` and ``--loco-knobs`` analyse: the first of
    ``--detectors`` when given (so a command naming ``hybrid`` keeps measuring the hybrid
    after the default changed), else the live default."""
    names = [name.strip() for name in (detectors or "").split(",") if name.strip()]
    return names[0] if names else DEFAULT_DETECTOR


def sensitivity(corpus, name: str = DEFAULT_DETECTOR) -> list[str]:
    live = LIVE_THRESHOLDS.get(name, 0.5)
    header = (f"{'knob':<12}{'value':>8}{'NAB std':>9}{'std@live':>10}"
              f"{'rec .05':>9}{'prec .05':>9}{'rec .01':>9}{'prec .01':>9}")
    lines = [f"sensitivity of {name!r} (one knob at a time, others at their defaults)",
             header, "-" * len(header)]
    print("\n".join(lines), flush=True)
    for knob, values in SENSITIVITY.items():
        for v in values:
            kw = {knob: v}
            scores, _, _ = run_detector(name, corpus, **kw)
            nab = sweep_threshold(scores, STANDARD).normalized
            syn = [synthetic_metrics(name, live, anomaly_probability=p, **kw) for p in (0.05, 0.01)]
            line = (f"{knob:<12}{v:>8}{nab:>9.1f}{score_at(scores, live):>10.1f}"
                    + "".join(f"{m.event_recall:>9.3f}{m.point_precision:>9.3f}" for m in syn))
            lines.append(line)
            print(line, flush=True)
    return lines


def leave_one_file_out(candidates: list[dict]) -> tuple[float, list[int]]:
    """Normalised standard score of the 18 held-out files, each scored with the candidate
    (a ``{name: (scores, labels)}`` dict) and threshold that do best on the other files."""
    files = sorted(candidates[0])
    raw, n_windows, picks = 0.0, 0, []
    for held in files:
        best = None
        for i, cand in enumerate(candidates):
            r = sweep_threshold({f: cand[f] for f in files if f != held}, STANDARD)
            if best is None or r.normalized > best[0] + 1e-12:
                best = (r.normalized, i, r.threshold)
        scores, labels = candidates[best[1]][held]
        raw += score_file(scores, labels, best[2], STANDARD).score
        n_windows += len(labels.scored_windows)
        picks.append(best[1])
    return normalize(raw, -STANDARD.a_fn * n_windows, STANDARD.a_tp * n_windows), picks


def category(name: str) -> str:
    """The NAB category of a corpus file name (its top-level folder)."""
    return name.split("/", 1)[0]


def leave_one_category_out(candidates: list[dict], profile=STANDARD,
                           per_category: dict | None = None) -> tuple[float, list[int]]:
    """Normalised score of every category held out in turn, each scored with the candidate
    (a ``{name: (scores, labels)}`` dict) and threshold that do best on the other categories
    only: nothing of the held-out category is seen when choosing. ``per_category``, a dict
    if given, receives per held-out category ``(normalised score, raw score)``; the first
    is None for a category without windows, which only false positives can score in."""
    files = sorted(candidates[0])
    raw, n_windows, picks = 0.0, 0, []
    for held in sorted({category(f) for f in files}):
        seen = [f for f in files if category(f) != held]
        best = None
        for i, cand in enumerate(candidates):
            r = sweep_threshold({f: cand[f] for f in seen}, profile)
            if best is None or r.normalized > best[0] + 1e-12:
                best = (r.normalized, i, r.threshold)
        held_raw, held_windows = 0.0, 0
        for f in files:
            if category(f) == held:
                scores, labels = candidates[best[1]][f]
                held_raw += score_file(scores, labels, best[2], profile).score
                held_windows += len(labels.scored_windows)
        raw, n_windows = raw + held_raw, n_windows + held_windows
        if per_category is not None:
            per_category[held] = (normalize(held_raw, -profile.a_fn * held_windows,
                                            profile.a_tp * held_windows)
                                  if held_windows else None, held_raw)
        picks.append(best[1])
    return normalize(raw, -profile.a_fn * n_windows, profile.a_tp * n_windows), picks


def memory_per_series(name: str, rows: int = 10_000, **kwargs) -> int:
    """Bytes of pickled detector state after ``rows`` rows of a noisy daily-seasonal series."""
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    if kwargs.get("period") == "daily":  # the series is a day of 288 five-minute points
        kwargs = {**kwargs, "period": 288}
    det = make_detector(name, **kwargs)
    det.score_series(10 + np.sin(2 * np.pi * t / 288) + 0.1 * rng.standard_normal(rows))
    return len(pickle.dumps(det))


def cross_validation(corpus, name: str = DEFAULT_DETECTOR) -> list[str]:
    default = run_detector(name, corpus)[0]
    grid = [dict(zip(CV_GRID, combo)) for combo in itertools.product(*CV_GRID.values())]
    runs = [run_detector(name, corpus, **kw)[0] for kw in grid]
    in_sample = [sweep_threshold(r, STANDARD).normalized for r in runs]
    fixed, _ = leave_one_file_out([default])
    nested, picks = leave_one_file_out(runs)
    chosen = sorted({tuple(grid[i].values()) for i in picks})
    lines = [
        f"leave-one-file-out check of {name!r} (standard profile)",
        f"  in-sample, defaults, threshold swept on all 18 files:      "
        f"{sweep_threshold(default, STANDARD).normalized:6.1f}",
        f"  held out, threshold chosen on the other 17:                 {fixed:6.1f}",
        f"  held out, {' x '.join(CV_GRID)} ({len(grid)} settings) and threshold "
        f"chosen on the other 17: {nested:6.1f}",
        f"  (in-sample over that grid: best {max(in_sample):.1f}, worst {min(in_sample):.1f}; "
        f"folds chose {chosen})",
    ]
    print("\n".join(lines), flush=True)
    return lines


def category_cross_validation(corpus, name: str = DEFAULT_DETECTOR) -> list[str]:
    """LOCO with the ``CV_GRID`` knobs chosen per fold beside the threshold, every profile."""
    grid = [dict(zip(CV_GRID, combo)) for combo in itertools.product(*CV_GRID.values())]
    runs = [run_detector(name, corpus, **kw)[0] for kw in grid]
    lines = [f"leave-one-category-out of {name!r}, {' x '.join(CV_GRID)} ({len(grid)} settings)"
             " and threshold chosen on the other 4 categories"]
    for p, prof in PROFILES.items():
        score, picks = leave_one_category_out(runs, prof)
        chose = [tuple(grid[i].values()) for i in picks]
        lines.append(f"  {p:<20}{score:6.1f}  folds chose {chose}")
    print("\n".join(lines), flush=True)
    return lines


def selection_cross_validation(rows: dict[str, dict]) -> list[str]:
    """LOCO of the choice itself: for each held-out category, the row (a detector or a
    combination) and its threshold are both picked on the other four categories, so a
    figure chosen as the best of many rows is scored on a category it was not chosen on."""
    names = list(rows)
    lines = [f"leave-one-category-out with the row chosen per fold among {len(names)} rows "
             "(and its threshold) on the other 4 categories"]
    folds = sorted({category(f) for f in next(iter(rows.values()))})
    for p, prof in PROFILES.items():
        score, picks = leave_one_category_out([rows[n] for n in names], prof)
        chose = ", ".join(f"{fold}: {names[i]}" for fold, i in zip(folds, picks))
        lines.append(f"  {p:<20}{score:6.1f}  held out -> chosen: {chose}")
    print("\n".join(lines), flush=True)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="NAB data folder")
    parser.add_argument("--labels", type=Path, required=True, help="NAB labels folder or file")
    parser.add_argument(
        "--detectors", default=None,
        help="comma-separated detector names (default: every registered detector); the first "
             "is the one --sensitivity, --cv and --loco-knobs analyse")
    parser.add_argument("--per-file", action="store_true", help="per-file TP/FN/FP (standard)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a detector keyword argument (repeatable), for every detector")
    parser.add_argument("--sensitivity", action="store_true", help="score vs each main knob")
    parser.add_argument("--cv", action="store_true", help="leave-one-file-out check")
    parser.add_argument("--loco", action="store_true",
                        help="leave-one-category-out, every profile, beside in-sample")
    parser.add_argument("--loco-knobs", action="store_true",
                        help="LOCO of the analysed detector with its CV_GRID knobs chosen per "
                             "fold")
    parser.add_argument("--loco-select", action="store_true",
                        help="LOCO with the row itself (detector or combination) chosen per "
                             "fold among every row scored, beside the threshold")
    parser.add_argument("--nab-inputs", action="store_true",
                        help="give cad_ose / knn_cad / cad_likelihood / relative_entropy the "
                             "file's min, max and probation, as "
                             "NAB's runner does (the reference setting; live has no such oracle)")
    parser.add_argument("--variant", action="append", default=[],
                        metavar="NAME:KEY=VALUE,...",
                        help="a row of detector NAME with these keyword arguments, e.g. "
                             "'hybrid_entropy:rest=288,rest_after=own' (repeatable); "
                             "period=daily: each file's rows a day, as a replay with "
                             "DETECTOR_SEASON=fixed scores it")
    parser.add_argument("--combine", default="",
                        help="combinations to score beside the detectors, e.g. "
                             "'max:cad_ose+hybrid;rank:cad_ose+knn_cad' (how: " +
                             ", ".join(COMBINERS) + ")")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for raw scores per file, reused while the code is unchanged")
    args = parser.parse_args(argv)
    analysed = analysed_detector(args.detectors)
    args.detectors = args.detectors or ",".join(DETECTORS)
    global CACHE
    CACHE = args.cache
    kwargs = dict((k, _value(v)) for k, v in (s.split("=", 1) for s in args.set))

    t_start = time.perf_counter()
    corpus = load_corpus(args.data, args.labels)
    n_windows = sum(len(lab.scored_windows) for _, _, lab in corpus.values())
    print(f"{len(corpus)} files, {n_windows} windows, "
          f"{sum(len(v) for _, v, _ in corpus.values())} rows")
    header = (f"{'detector':<10}" + "".join(f"{p:>20}" for p in PROFILES)
              + f"{'std thresh':>11}{'std@live':>10}{'rows/s':>11}")
    lines = [header, "-" * len(header)]
    rows_of = [(name, None) for name in args.detectors.split(",") if name.strip()]
    rows_of += [(spec, spec.split(":", 1)) for spec in args.combine.split(";") if spec.strip()]
    variants = {}  # row name -> (detector, its keyword arguments), from --variant
    for spec in args.variant:
        name, _, settings = spec.partition(":")
        variants[f"{name.strip()}[{settings.strip()}]"] = (name.strip(), {
            key.strip(): _value(value.strip()) for key, _, value in
            (item.partition("=") for item in settings.split(",") if item.strip())})
    rows_of += [(row, None) for row in variants]
    every_row: dict[str, dict] = {}  # row name -> its scores, for --loco-select
    for name, combo in rows_of:
        name = name.strip()
        detector, own = variants.get(name, (name, {}))
        if combo is None:
            scores, seconds, rows = run_detector(detector, corpus, args.nab_inputs,
                                                 **{**kwargs, **own})
        else:
            scores, seconds, rows = combine(combo[0], combo[1].split("+"), corpus,
                                            args.nab_inputs, **kwargs)
        every_row[name] = scores
        results = score_corpus(scores)
        std = results["standard"]
        line = f"{name:<10}" + "".join(f"{results[p].normalized:>20.1f}" for p in PROFILES)
        at_live = ("-" if combo is None and detector not in LIVE_THRESHOLDS else
                   f"{score_at(scores, LIVE_THRESHOLDS[detector]):.1f}" if combo is None else "-")
        line += (f"{std.threshold:>11.4g}{at_live:>10}"
                 f"{rows / seconds:>11,.0f}")
        lines.append(line)
        print(line, flush=True)
        if args.loco:
            held_out: dict = {}
            loco = {p: leave_one_category_out([scores], prof,
                                              held_out if p == "standard" else None)[0]
                    for p, prof in PROFILES.items()}
            memory = (memory_per_series(detector, **{**kwargs, **own}) if combo is None else
                      sum(memory_per_series(n.strip(), **kwargs) for n in combo[1].split("+")))
            line = (f"{'  LOCO':<10}" + "".join(f"{loco[p]:>20.1f}" for p in PROFILES)
                    + f"{'':>21}{'':>11}  memory/series {memory:,} B")
            lines.append(line)
            print(line, flush=True)
            line = "    held out, standard: " + ", ".join(
                f"{held} {f'no windows (raw {raw:.2f})' if figure is None else f'{figure:.1f}'}"
                for held, (figure, raw) in held_out.items())
            lines.append(line)
            print(line, flush=True)
        if args.per_file:
            print(f"  standard threshold {std.threshold:.6g}, raw {std.raw:.3f}")
            for fname, fs in std.files.items():
                print(f"  {fname:<55} score {fs.score:7.3f} tp {fs.tp} fn {fs.fn} fp {fs.fp}")
    print()
    print("\n".join(lines))
    if args.sensitivity:
        print()
        sensitivity(corpus, analysed)
    if args.cv:
        print()
        cross_validation(corpus, analysed)
    if args.loco_knobs:
        print()
        category_cross_validation(corpus, analysed)
    if args.loco_select:
        print()
        selection_cross_validation(every_row)
    print(f"\ntotal time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
