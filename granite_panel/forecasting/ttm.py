"""Granite TinyTimeMixer through tsfm_public: its toolkit imported once, a model loaded
from the hub or a folder (``get_model`` picks the revision), named honestly, and run on all
series in one batch."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .context import context_scale, fill_gaps

log = logging.getLogger(__name__)

_TSFM_IMPORT_LOCK = threading.Lock()
_TSFM: SimpleNamespace | None = None  # set once the toolkit is imported (and its logs quieted)
_TSFM_BACKGROUND: threading.Thread | None = None
_TSFM_STARTING = threading.Lock()


def import_tsfm():
    """Import tsfm_public's toolkit once, under a lock.

    The model loads in a background thread while the engine thread may need the conformal
    processor; two threads importing the same package at once can hit Python's import
    deadlock detection, which would look like a failed model load.
    """
    global _TSFM
    with _TSFM_IMPORT_LOCK:
        if _TSFM is None:
            from tsfm_public.toolkit.conformal import PostHocProbabilisticProcessor
            from tsfm_public.toolkit.get_model import get_model
            from tsfm_public.toolkit.time_series_preprocessor import DEFAULT_FREQUENCY_MAPPING

            quiet_tsfm_logging()  # once: each setLevel clears logging's caches (~40 ms a tick)
            _TSFM = SimpleNamespace(
                get_model=get_model,
                PostHocProbabilisticProcessor=PostHocProbabilisticProcessor,
                frequency_tokens=DEFAULT_FREQUENCY_MAPPING,
            )
    return _TSFM


def tsfm_if_imported() -> SimpleNamespace | None:
    """The toolkit if it is imported already; else None, and its import starts in the
    background. For the tick thread, which holds the engine's locks: importing tsfm there
    (or waiting for the model loader's import) held every push and status call for 30 s
    and more on a loaded machine (found by the fault tests)."""
    global _TSFM_BACKGROUND
    if _TSFM is not None:
        return _TSFM
    with _TSFM_STARTING:
        if _TSFM_BACKGROUND is None or not _TSFM_BACKGROUND.is_alive():
            _TSFM_BACKGROUND = threading.Thread(target=import_tsfm, name="tsfm-import",
                                                daemon=True)
            _TSFM_BACKGROUND.start()
    return None


def quiet_tsfm_logging() -> None:
    """tsfm_public logs every model choice at INFO; keep its warnings, drop the chatter."""
    if log.isEnabledFor(logging.DEBUG):
        return
    for name in list(logging.root.manager.loggerDict):
        if "tsfm_public" in name:
            logging.getLogger(name).setLevel(logging.WARNING)
        if "tsfm_public" in name and name.endswith("get_model.py"):
            # It warns at every load whose horizon is not one of TTM's own lengths; asking
            # for such a horizon (prediction_filter_length) is what the engine means to do.
            # Printed from the loader thread, it landed in whatever notebook cell ran then.
            logging.getLogger(name).setLevel(logging.ERROR)


def pick_device(use_gpu: bool) -> str:
    """``cuda`` when a GPU is present and allowed, else ``cpu``."""
    import torch

    return "cuda" if use_gpu and torch.cuda.is_available() else "cpu"


def is_hub_id(model_name: str) -> bool:
    """``owner/name`` that is not a folder here (paths starting with / . ~ are folders)."""
    if model_name.startswith(("/", ".", "~")) or Path(model_name).exists():
        return False
    return model_name.count("/") == 1


class TTMForecaster:
    """A loaded TinyTimeMixer: per-series standard scaling, all series in one batch."""

    def __init__(
        self, model, name: str, horizon: int, device: str = "cpu", freq_token: int | None = None
    ):
        import torch

        self._torch = torch
        self.model = model.to(device).eval()
        self.name = name
        self.device = device
        self.horizon = horizon
        # Revisions trained with frequency prefix tuning expect a token for the data's
        # resolution (tsfm_public's DEFAULT_FREQUENCY_MAPPING); the others take none.
        uses_token = bool(getattr(model.config, "resolution_prefix_tuning", False))
        self.freq_token = freq_token if uses_token else None
        self.min_context = int(model.config.context_length)
        self.model_horizon = int(
            getattr(model.config, "prediction_filter_length", None)
            or model.config.prediction_length
        )

    def predict(self, context: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``rows`` is not used: a TTM forecasts each window from that window alone."""
        torch = self._torch
        window = fill_gaps(context)[:, -self.min_context :]
        mean, std = context_scale(window)
        scaled = (window - mean) / std
        with torch.no_grad():
            past = torch.as_tensor(scaled[:, :, None], dtype=torch.float32, device=self.device)
            extra = {}
            if self.freq_token is not None:
                extra["freq_token"] = torch.full(
                    (past.shape[0],), self.freq_token, dtype=torch.long, device=self.device
                )
            output = self.model(past_values=past, **extra).prediction_outputs
        return output[:, : self.horizon, 0].float().cpu().numpy() * std + mean


def choose_revision(
    model_name: str,
    context_length: int,
    horizon: int,
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> str:
    """The TTM revision ``get_model`` picks for this context and horizon (no download).

    IBM's rules (tsfm_public ``get_model``): among the revisions whose context fits in
    ``context_length`` prefer the longest context (``prefer_longer_context``), then the
    shortest horizon >= ``horizon`` (a longer one is cut with ``prediction_filter_length``);
    ``freq_prefix_tuning`` prefers revisions trained with a frequency token; daily or
    slower data (``freq``) only gets the r2.1 revisions. A context shorter than the
    shortest revision (52) or a horizon longer than any revision is an error.
    """
    return _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning, True)


def _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning, key_only=False):
    """``get_model`` with our selection rules; ``key_only`` names the revision, loads nothing."""
    return import_tsfm().get_model(
        model_name,
        context_length=context_length,
        prediction_length=horizon,
        freq=freq,
        freq_prefix_tuning=freq_prefix_tuning,
        prefer_longer_context=True,
        return_model_key=key_only,
    )


def load_ttm(
    model_name: str,
    context_length: int,
    horizon: int,
    device: str = "cpu",
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> TTMForecaster:
    """Load a TTM through ``tsfm_public.toolkit.get_model``: a hub id or a local folder.

    For a hub id ``get_model`` picks the revision (see ``choose_revision``); the weights
    come from the Hugging Face cache or the hub (``HF_HUB_OFFLINE=1``: the cache only).
    For a local folder granite-tsfm 0.3.11 needs an explicit revision (it crashes on
    ``None``), so ``main`` is passed; a folder holds a single revision anyway.
    """
    tsfm = import_tsfm()
    token = tsfm.frequency_tokens.get(freq) if freq else None
    if is_hub_id(model_name):
        revision, model = hub_model(model_name, context_length, horizon, freq, freq_prefix_tuning)
        label = f"{model_label(model_name)} ({revision})"
    else:
        folder = Path(model_name).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {model_name!r} does not exist")
        check_folder_fits(folder, context_length, horizon)
        model = tsfm.get_model(
            str(folder), context_length=context_length, prediction_length=horizon,
            model_revision="main",
        )
        label = f"TTM (local: {folder.name})"
    return TTMForecaster(model, name=label, horizon=horizon, device=device, freq_token=token)


def hub_model(model_name, context_length, horizon, freq=None, freq_prefix_tuning=False):
    """(revision, model) of a hub id, chosen by ``get_model`` (see ``choose_revision``)."""
    revision = choose_revision(model_name, context_length, horizon, freq, freq_prefix_tuning)
    return revision, _get_model(model_name, context_length, horizon, freq, freq_prefix_tuning)


def check_folder_fits(folder: Path, context_length: int, horizon: int) -> None:
    """A saved TTM must see no more context than we keep and forecast at least the horizon."""
    import json

    config = json.loads((folder / "config.json").read_text())
    needs, reaches = config.get("context_length"), config.get("prediction_length")
    if needs is not None and needs > context_length:
        raise ValueError(
            f"the model in {folder.name} needs {needs} points of context; "
            f"CONTEXT_LENGTH is {context_length}"
        )
    if reaches is not None and reaches < horizon:
        raise ValueError(
            f"the model in {folder.name} forecasts {reaches} points; FORECAST_HORIZON is {horizon}"
        )


def fetch_model(
    model_name: str,
    dest: str | Path,
    context_length: int,
    horizon: int,
    freq: str | None = None,
    freq_prefix_tuning: bool = False,
) -> tuple[str, Path]:
    """Download the revision ``get_model`` picks and save it to ``dest`` for offline use."""
    revision, model = hub_model(model_name, context_length, horizon, freq, freq_prefix_tuning)
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    return revision, dest


IBM_RELEASES = {
    "ibm-granite/granite-timeseries-ttm-r2": "TTM-R2",
    "ibm-granite/granite-timeseries-ttm-r1": "TTM-R1",
}


def model_label(model_name: str) -> str:
    """What the UI calls a hub model: TTM-R2 only for IBM's R2 repository itself."""
    return IBM_RELEASES.get(model_name.rstrip("/"), f"TTM ({model_name})")


def describe_load_error(exc: BaseException) -> str:
    """A short reason for the UI: 'no network' for hub failures, else the error's first line."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 6:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain).lower()
    markers = ("couldn't connect", "offline", "connection", "name resolution", "timed out")
    if any(marker in text for marker in markers):
        return "no network (Hugging Face hub unreachable)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:200]
