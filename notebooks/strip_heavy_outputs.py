"""Keep the stored notebooks small: drop the front-end payloads of display cells.

``extension(inline=True)`` puts BokehJS, HoloViews and Panel's JavaScript (about 3 MB) into
the output of the cell that calls it, and every displayed Panel/HoloViews object carries a
Bokeh document with random ids. Those cells are tagged ``nbval-ignore-output`` (their output
cannot be compared), so their stored rich output is worth nothing to the tests and only
bloats the repository. This script keeps only their ``text/plain`` form and records which
MIME types it removed in the cell's metadata (``granite_panel.stripped_outputs``), the
evidence ``tests/test_notebooks.py`` uses to accept the tag. It also removes nbclient's
per-cell execution timestamps.

Usage (after ``jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb``)::

    python notebooks/strip_heavy_outputs.py            # strip every notebook here, in place
    python notebooks/strip_heavy_outputs.py --check    # only report; exit 1 on a problem
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat

IGNORE_TAG = "nbval-ignore-output"
META_KEY = "granite_panel"
MAX_OUTPUT_BYTES = 200_000  # any single stored output above this is a problem
KEPT_MIME = "text/plain"
HERE = Path(__file__).resolve().parent


def output_size(output) -> int:
    return len(json.dumps(output, ensure_ascii=False).encode())


def strip_cell(cell) -> bool:
    """Strip one ignore-output cell in place; True when something changed."""
    removed = set(cell.metadata.get(META_KEY, {}).get("stripped_outputs", []))
    kept, changed = [], False
    for output in cell.outputs:
        data = output.get("data")
        if data is None:  # a stream (timing printed by the cell) or an error: keep
            kept.append(output)
            continue
        heavy = set(data) - {KEPT_MIME}
        if heavy:
            removed |= heavy
            changed = True
            output.data = {k: v for k, v in data.items() if k == KEPT_MIME}
            output.metadata = {}
        if output.data:
            kept.append(output)
        else:
            changed = True
    cell.outputs = kept
    if removed:
        cell.metadata.setdefault(META_KEY, {})["stripped_outputs"] = sorted(removed)
    return changed


def strip_notebook(nb) -> bool:
    changed = False
    for cell in nb.cells:
        if "execution" in cell.metadata:  # nbclient's timestamps: noise in every diff
            del cell.metadata["execution"]
            changed = True
        if cell.cell_type == "code" and IGNORE_TAG in cell.metadata.get("tags", []):
            changed |= strip_cell(cell)
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True
    return changed


def problems(nb, name: str = "notebook") -> list[str]:
    """What keeps a stored notebook from being small and clean (empty when all is well)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ignored = IGNORE_TAG in cell.metadata.get("tags", [])
        for output in cell.outputs:
            size = output_size(output)
            if size > MAX_OUTPUT_BYTES:
                found.append(f"{name} cell {index}: an output of {size:,} bytes (limit {MAX_OUTPUT_BYTES:,})")
            if ignored and set(output.get("data", {})) - {KEPT_MIME}:
                found.append(f"{name} cell {index}: ignored cell keeps {sorted(output['data'])}")
        if "execution" in cell.metadata:
            found.append(f"{name} cell {index}: execution timestamps in metadata")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="report problems, change nothing")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    failed = False
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            for problem in problems(nb, path.name):
                print(problem, file=sys.stderr)
                failed = True
            continue
        if strip_notebook(nb):
            nbformat.write(nb, path)
            print(f"stripped {path.name}: {path.stat().st_size:,} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
