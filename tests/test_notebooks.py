"""The notebooks stay honest about the code, small in the repository, and strictly checked.

nbval (wired in pyproject.toml) runs them and compares outputs; these tests check what nbval
cannot: that every name a notebook imports from granite_panel still exists (a rename fails
here with the notebook and the name, before any kernel starts), that stored outputs are small,
and that ``nbval-ignore-output`` is used only where an output cannot be compared.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
MAX_NOTEBOOK_BYTES = 500_000
IGNORE_TAG = "nbval-ignore-output"
NBVAL_TAGS = {IGNORE_TAG, "nbval-skip", "nbval-raises-exception", "nbval-check-output", "raises-exception"}
# Outputs that prove a cell displayed a Panel/HoloViews object (or loaded their front end).
DISPLAY_MIME = {
    "application/javascript",
    "application/vnd.holoviews_exec.v0+json",
    "application/vnd.holoviews_load.v0+json",
}
TIMING = re.compile(r"\btime\.(perf_counter|monotonic|time)\(|inference_ms")

sys.path.insert(0, str(NOTEBOOKS_DIR))
import strip_heavy_outputs  # noqa: E402

sys.path.pop(0)


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(path: Path):
    return [cell for cell in read(path).cells if cell.cell_type == "code"]


def granite_panel_names(source: str) -> list[tuple[str, str | None]]:
    """(module, name) for every granite_panel import and module attribute a cell uses.

    ``from granite_panel.x import a`` gives ("granite_panel.x", "a"); ``import granite_panel.x
    as gx`` gives ("granite_panel.x", None) and ("granite_panel.x", "attr") for each
    ``gx.attr`` in the cell; ``from granite_panel import x`` is a module or a name.
    """
    tree = ast.parse(source)
    used, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "granite_panel":
            for alias in node.names:
                used.append((node.module, alias.name))
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "granite_panel":
                    used.append((alias.name, None))
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id)
            if target and _is_module(target):
                used.append((target, node.attr))
    return used


def _is_module(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def test_there_is_a_course_of_six_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_forecasting_with_ttm.ipynb",
        "03_anomaly_detection.ipynb",
        "04_rest_and_events.ipynb",
        "05_your_own_data.ipynb",
        "06_fleet.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_granite_panel_name_a_notebook_uses_exists(path):
    missing = []
    for index, cell in enumerate(code_cells(path)):
        for module_name, name in granite_panel_names(cell.source):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                missing.append(f"cell {index}: import {module_name} ({exc})")
                continue
            if name is not None and not hasattr(module, name) and not _is_module(f"{module_name}.{name}"):
                missing.append(f"cell {index}: {module_name}.{name}")
    assert not missing, f"{path.name} uses names granite_panel no longer has: {missing}"


def test_the_import_check_sees_a_renamed_function():
    names = granite_panel_names(
        "from granite_panel.engine.core import Engine, no_such_thing\n"
        "import granite_panel.forecasting as fc\nfc.renamed_loader('x')\n"
    )
    assert ("granite_panel.engine.core", "no_such_thing") in names
    assert ("granite_panel.forecasting", "renamed_loader") in names
    import granite_panel.engine.core as engine

    assert not hasattr(engine, "no_such_thing")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_and_stripped(path):
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    assert strip_heavy_outputs.problems(read(path), path.name) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_come_from_one_run_top_to_bottom(path):
    counts = [cell.execution_count for cell in code_cells(path)]
    assert counts == list(range(1, len(counts) + 1)), "re-execute the whole notebook (see notebooks/README.md)"
    nb = read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    errors = [o for c in code_cells(path) for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_output_is_ignored_only_where_it_cannot_be_compared(path):
    """Only cells that displayed Panel/HoloViews objects (random ids) or print wall-clock
    timings may skip the comparison; every other cell's output is checked by nbval."""
    ignored = 0
    for index, cell in enumerate(code_cells(path)):
        tags = set(cell.metadata.get("tags", []))
        assert tags & NBVAL_TAGS <= {IGNORE_TAG}, f"cell {index}: only {IGNORE_TAG} is used"
        stripped = set(cell.metadata.get("granite_panel", {}).get("stripped_outputs", []))
        if IGNORE_TAG in tags:
            ignored += 1
            displays = bool(stripped & DISPLAY_MIME)
            times = bool(TIMING.search(cell.source))
            assert displays or times, (
                f"{path.name} cell {index} ignores its output but displayed no Panel/HoloViews "
                f"object and prints no timing:\n{cell.source}"
            )
        else:
            assert not stripped, f"cell {index}: outputs were stripped from a compared cell"
            rich = {k for o in cell.outputs for k in o.get("data", {})} & DISPLAY_MIME
            assert not rich, f"{path.name} cell {index} displays {rich} but is compared"
    compared = len(code_cells(path)) - ignored
    assert compared >= 2 * ignored, f"{path.name}: most cells must be compared"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_works_offline_from_its_first_cell(path):
    """HF_HUB_OFFLINE is set before anything imports huggingface_hub (or granite_panel)."""
    first = code_cells(path)[0].source
    assert 'os.environ.setdefault("HF_HUB_OFFLINE", "1")' in first
    before = first.split("HF_HUB_OFFLINE")[0]
    assert "granite_panel" not in before and "tsfm" not in before and "transformers" not in before
    text = "\n".join(cell.source for cell in read(path).cells)
    assert "get_rdataset" not in text and "urlretrieve" not in text  # nothing downloaded


def test_notebooks_that_show_charts_load_the_front_end_inline():
    for path in NOTEBOOKS:
        sources = [cell.source for cell in code_cells(path)]
        if any("extension(" in source for source in sources):
            assert all(
                "inline=True" in source for source in sources if re.search(r"\bextension\(", source)
            ), f"{path.name}: offline JupyterLab needs extension(inline=True)"


def test_the_test_command_runs_the_notebooks_strictly():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"]
    addopts = options["addopts"].split()
    assert "--nbval" in addopts and "--nbval-lax" not in addopts
    assert "--nbval-current-env" in addopts
    sanitize = addopts[addopts.index("--nbval-sanitize-with") + 1]
    assert (ROOT / sanitize).is_file()
