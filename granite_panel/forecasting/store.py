"""Trained models on disk: ``save_pretrained`` folders under MODELS_DIR, each with a card.

A card (``model_card.json``) says what the model is, on what it was trained and how it
validated against the serving model and seasonal naive, and whether it was promoted and
why. ``promoted.json`` in MODELS_DIR names the folder that serves; it is loaded back
through ``load_ttm`` (tsfm_public's ``get_model`` on a local folder), the same code path as
a model fetched from the hub.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

CARD_FILE = "model_card.json"
PROMOTED_FILE = "promoted.json"
TRAINED_HERE = "TTM trained here"


def fine_tuned_label(base_name: str) -> str:
    """What a fine-tuned model is called: its base's own name, so a local folder's TTM is
    never called TTM-R2 ("TTM-R2 (512-96-r2) fine-tuned here", "TTM (local: x) fine-tuned here")."""
    return f"{base_name} fine-tuned here"


def save_model(model, models_dir: str | Path, card: dict) -> Path:
    """Save ``model`` and its card in a new folder of ``models_dir``; returns the folder."""
    root = Path(models_dir).expanduser()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    folder = root / f"ttm-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"ttm-{stamp}-{n}"
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    card = {**card, "folder": folder.name}
    write_card(folder, card)
    return folder


def write_card(folder: Path, card: dict) -> None:
    (Path(folder) / CARD_FILE).write_text(json.dumps(card, indent=2, default=float) + "\n")


def read_card(folder: str | Path) -> dict:
    return json.loads((Path(folder) / CARD_FILE).read_text())


def mark_promoted(models_dir: str | Path, folder: str | Path) -> None:
    root = Path(models_dir).expanduser()
    (root / PROMOTED_FILE).write_text(json.dumps({"folder": Path(folder).name}) + "\n")


def promoted_folder(models_dir: str | Path | None) -> Path | None:
    """The folder ``promoted.json`` names, or None when nothing was promoted."""
    if not models_dir:
        return None
    marker = Path(models_dir).expanduser() / PROMOTED_FILE
    if not marker.is_file():
        return None
    return marker.parent / json.loads(marker.read_text())["folder"]


def load_promoted(models_dir, context_length: int, horizon: int, device: str = "cpu"):
    """(forecaster, card) of the promoted model, or (None, None) when there is none.

    Raises when the promoted folder cannot be loaded (deleted, corrupt weights, bad card):
    the caller falls back and shows the reason.
    """
    from .ttm import load_ttm

    folder = promoted_folder(models_dir)
    if folder is None:
        return None, None
    card = read_card(folder)
    forecaster = load_ttm(str(folder), context_length, horizon, device)
    forecaster.name = card.get("label", TRAINED_HERE)
    return forecaster, card


def describe_card(card: dict) -> str:
    """'TTM trained here on 14 days of 3 series (validation MASE 0.71; AutoTheta 0.93; ...)'."""
    validation = card.get("validation", {})
    parts = [f"validation MASE {validation.get('candidate', float('nan')):.2f}"]
    serving = card.get("compared_with")
    if serving and serving != "SeasonalNaive" and "serving" in validation:
        parts.append(f"{serving} {validation['serving']:.2f}")
    parts.append("seasonal naive 1.00")
    span = card.get("data_span", "")
    return f"{card.get('label', TRAINED_HERE)} on {span} of {card.get('series', '?')} series ({'; '.join(parts)})"
