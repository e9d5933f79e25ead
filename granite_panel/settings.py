"""Settings from the environment and a ``.env`` file, validated with clear messages.

Each setting is a declared ``param`` field: its ``doc`` is the documentation (and the
``.env.example`` comment), its type and bounds are the validation. ``Settings.from_env``
turns raw strings into values and, on the first bad one, raises ``SettingsError`` with a
single line that names the variable, the value given and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import param

DEFAULT_MODEL_NAME = "ibm-granite/granite-timeseries-ttm-r2"
FALLBACK_MODELS = ("auto", "AutoETS", "AutoTheta", "MSTL", "SeasonalNaive")
TRAINING_MODES = ("auto", "off")
AUTH_MODES = ("none", "basic", "oauth")
# An older name still read: SECRET_KEY -> COOKIE_SECRET.
ALIASES = {"SECRET_KEY": "COOKIE_SECRET"}
# granite_panel.detectors.DETECTORS, in the order shown (a test keeps them in sync).
DETECTORS = ("hybrid_entropy", "hybrid", "zscore", "ensemble", "forecast", "cad_ose", "knn_cad",
             "cad_likelihood", "hybrid_cad", "windowed_gaussian", "relative_entropy")
# tsfm_public's DEFAULT_FREQUENCY_MAPPING keys (a test keeps them in sync; no torch here).
FREQUENCIES = ("oov", "min", "2min", "5min", "10min", "15min", "30min", "h", "d", "W")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value that is not allowed; the message is one line for the user."""


class Settings(param.Parameterized):
    """Every knob of granite-panel; the env var of a field is its name in upper case."""

    port = param.Integer(default=5006, bounds=(1, 65535), doc="TCP port of the dashboard server.")
    address = param.String(default="localhost", doc="Address the server listens on.")
    debug = param.Boolean(
        default=False, doc="Verbose (DEBUG) logging, tsfm_public's own messages included."
    )
    cookie_secret = param.String(
        default="",
        doc="Secret that signs the login cookies (at least 32 characters; required when AUTH "
        "is on). SECRET_KEY, its older name, is still read.",
    )
    auth = param.Selector(
        default="none",
        objects=list(AUTH_MODES),
        doc="Who may use the dashboard and the API: none (anyone who can reach it; allowed "
        "without --insecure only on a loopback address), basic (a login page checking "
        "AUTH_USERS) or oauth (Panel's generic OpenID Connect provider, OAUTH_* settings).",
    )
    auth_users = param.String(
        default="users.json",
        doc="AUTH=basic: JSON file of users, name -> {password_hash, role} (granite-panel user "
        "add writes it; roles: viewer, operator, admin).",
    )
    api_tokens = param.String(
        default="",
        doc="JSON file of API tokens for machines, name -> {sha256, role, scopes} (granite-panel "
        "token create writes it); empty: no tokens.",
    )
    oauth_key = param.String(default="", doc="AUTH=oauth: the client id registered at the provider.")
    oauth_secret = param.String(default="", doc="AUTH=oauth: the client secret.")
    oauth_authorize_url = param.String(
        default="", doc="AUTH=oauth: the provider's authorization endpoint."
    )
    oauth_token_url = param.String(default="", doc="AUTH=oauth: the provider's token endpoint.")
    oauth_user_url = param.String(
        default="", doc="AUTH=oauth: the provider's userinfo endpoint (optional with an id_token)."
    )
    oauth_redirect_uri = param.String(
        default="",
        doc="AUTH=oauth: this server's /login URL as registered at the provider (empty: derived "
        "from the request).",
    )
    oauth_scope = param.String(
        default="openid email profile", doc="AUTH=oauth: the scopes asked for, space-separated."
    )
    oauth_user_key = param.String(
        default="email", doc="AUTH=oauth: the claim that names the user."
    )
    oauth_role_claim = param.String(
        default="groups", doc="AUTH=oauth: the claim (a string or a list) mapped to a role."
    )
    oauth_roles = param.String(
        default="",
        doc="AUTH=oauth: claim value -> role, comma-separated (e.g. ops=operator,sre=admin); the "
        "highest role matched wins.",
    )
    oauth_default_role = param.Selector(
        default="viewer",
        objects=["none", "viewer", "operator", "admin"],
        doc="AUTH=oauth: the role of a user no OAUTH_ROLES entry matches (none: refused).",
    )
    oauth_encryption_key = param.String(
        default="",
        doc="AUTH=oauth: Fernet key that encrypts the provider's tokens in cookies (optional).",
    )
    allow_websocket_origin = param.String(
        default="",
        doc="Comma-separated host[:port] a browser page may open the dashboard's websocket "
        "from, besides localhost, 127.0.0.1 and ADDRESS:PORT (serve --allow-websocket-origin "
        "adds to it); * allows any, which is never the default.",
    )
    autostart = param.Boolean(default=False, doc="Start the stream as soon as the server starts.")
    model_name = param.String(
        default=DEFAULT_MODEL_NAME,
        doc="Hugging Face hub id or local folder of a TinyTimeMixer model.",
    )
    freq = param.Selector(
        default="h",
        objects=list(FREQUENCIES),
        doc="Resolution of the data, for TTM revisions that take a frequency token "
        "(tsfm_public's DEFAULT_FREQUENCY_MAPPING; oov = unknown).",
    )
    freq_prefix_tuning = param.Boolean(
        default=False, doc="Prefer TTM revisions trained with a frequency token (-ft-)."
    )
    forecast_horizon = param.Integer(default=96, bounds=(1, 720), doc="Points forecast ahead.")
    forecast_every = param.Integer(
        default=1,
        bounds=(1, 3600),
        doc="Ticks between two forecasts of one series: each tick forecasts every "
        "FORECAST_EVERY-th series in turn (round robin, one batched model call), so a tick "
        "costs about 1/FORECAST_EVERY of a forecast of all series and no forecast is older "
        "than FORECAST_EVERY ticks. 1: every series every tick. 1,000 series at 1 s: 10.",
    )
    context_length = param.Integer(
        default=512, bounds=(16, 4096), doc="Points of history the model sees per forecast."
    )
    data_generation_interval = param.Number(
        default=2.0,
        bounds=(0.01, 31 * 86400),
        doc="Seconds between ticks of the stream (one new point per series per tick), and the "
        "width of one slot of the time grid for pushed and Prometheus points.",
    )
    base_value = param.Number(default=100.0, doc="Level around which synthetic series move.")
    noise_level = param.Number(default=5.0, bounds=(0, None), doc="Std. dev. of synthetic noise.")
    trend_enabled = param.Boolean(default=True, doc="Add a slow linear trend to synthetic data.")
    seasonality_enabled = param.Boolean(default=True, doc="Add daily and weekly cycles.")
    season_length = param.Integer(
        default=24,
        bounds=(1, 10_000),
        doc="Points per main cycle (used by the fallback model, the accuracy scale and the "
        "hybrid detector's seasonal forecast). Unset, a replayed file's is a day of its rows "
        "(288 at 5 minutes; 1 for daily data) and its detectors estimate each series' own.",
    )
    anomaly_probability = param.Number(
        default=0.05, bounds=(0, 1), doc="Chance that a synthetic point starts an anomaly."
    )
    detector = param.Selector(
        default="hybrid_entropy",
        objects=list(DETECTORS),
        doc="Live anomaly detector: hybrid_entropy (the hybrid plus the relative entropy "
        "alarms it confirms; best held out on NAB, see the README), hybrid (robust seasonal "
        "forecast surprise plus NAB-scored alerts), zscore (the seed's rolling z-score), "
        "ensemble, forecast, or the published cad_ose, knn_cad and cad_likelihood; hybrid_cad "
        "is the hybrid plus CAD OSE's alarms (about a tenth of the hybrid's speed); "
        "windowed_gaussian is NAB's sliding z-score baseline; relative_entropy is NAB's "
        "windowed-histogram hypothesis test (alarms only, 0 or 1).",
    )
    detector_season = param.Selector(
        default="fixed",
        objects=["fixed", "estimate"],
        doc="Season of the hybrid detectors (hybrid, hybrid_entropy, hybrid_cad): fixed = "
        "SEASON_LENGTH for every series; estimate = each series' own, from the "
        "autocorrelation of its values (after 900 points, again every 1,000), as "
        "`granite-panel detect` does. Unset: fixed, but estimate for a replayed file when "
        "SEASON_LENGTH is unset too.",
    )
    anomaly_threshold_multiplier = param.Number(
        default=3.0,
        bounds=(0.1, 100),
        doc="DETECTOR=zscore: a point is an anomaly when abs(z) reaches this many standard "
        "deviations.",
    )
    anomaly_window_size = param.Integer(
        default=50, bounds=(2, 100_000), doc="DETECTOR=zscore: points in the rolling z-score window."
    )
    no_data_after = param.Number(
        default=0.0,
        bounds=(0, None),
        doc="Seconds a live series (SOURCE=push or prometheus) may go without a new point "
        "before a 'no data' incident opens for it (closed when a point comes back); 0: off.",
    )
    incident_gap = param.Integer(
        default=5,
        bounds=(0, 100_000),
        doc="Unflagged slots an incident may have since its last flagged point and stay open "
        "(one event whose score dips under the threshold for a moment stays one incident); "
        "one more and it closes. 0: only consecutive flagged points make one incident.",
    )
    interval_level = param.Number(
        default=0.8, bounds=(0.5, 0.99), doc="Nominal coverage of the forecast's conformal band."
    )
    accuracy_window = param.Integer(
        default=50, bounds=(1, 100_000), doc="Matured forecasts in the rolling MAE/MASE/coverage."
    )
    use_gpu = param.Boolean(default=True, doc="Run TTM on a CUDA GPU when one is present.")
    n_series = param.Integer(default=1, bounds=(1, 100_000), doc="Number of series streamed.")
    history_limit = param.Integer(
        default=2048, bounds=(16, 10_000_000), doc="Points kept per series (older ones drop)."
    )
    backfill = param.Boolean(
        default=True,
        doc="Generate one context of history at start so the first tick has a forecast.",
    )
    seed = param.Integer(default=42, doc="Seed of the synthetic source (same seed, same stream).")
    source = param.String(
        default="synthetic",
        doc="Where points come from: synthetic (the demo stream), push (only what "
        "/api/ingest receives), prometheus (PROMETHEUS_URL + PROMETHEUS_QUERY), or the path "
        "of a .csv/.parquet/.xlsx/.json file to replay (wide or long format). Pushes are "
        "accepted with every source.",
    )
    replay_speed = param.String(
        default="",
        doc="File replay: rows per second, or max (as fast as the engine takes them: a "
        "backtest). Empty: one row per tick.",
    )
    timestamp_column = param.String(
        default="", doc="File replay: the timestamp column (default: found by name or type)."
    )
    value_columns = param.String(
        default="",
        doc="File replay, wide files: comma-separated value columns (default: every numeric "
        "column but the timestamp and label).",
    )
    timezone = param.String(
        default="",
        doc="Files and frames: the IANA zone (Europe/Berlin, America/New_York) of times "
        "written without a UTC offset, as loggers and spreadsheets write the local clock; "
        "they are converted to UTC, the hour repeated when summer time ends told apart by "
        "its order. Empty: such times are UTC. Times with an offset and epoch numbers are "
        "read as they are.",
    )
    display_timezone = param.String(
        default="browser",
        doc="The zone the dashboard shows times in (chart, incident feed, mutes, stored "
        "history): browser (each viewer's own browser zone) or an IANA zone for everyone "
        "(UTC, Europe/Berlin). The API, the store and downloads keep UTC.",
    )
    sheet = param.String(
        default="",
        doc="File replay, spreadsheets: the sheet to read, by name or number (1 = the first). "
        "Empty: the first.",
    )
    label_column = param.String(
        default="label",
        doc="File replay: a 0/1 anomaly label column, when present, feeds the live "
        "precision/recall.",
    )
    prometheus_url = param.String(
        default="", doc="SOURCE=prometheus: base URL of the Prometheus server."
    )
    prometheus_query = param.String(
        default="", doc="SOURCE=prometheus: a PromQL query; every label set is a series."
    )
    max_series = param.Integer(
        default=1000,
        bounds=(1, 100_000),
        doc="Most series one engine keeps; a new name past it is refused and counted.",
    )
    ingest_max_bytes = param.Integer(
        default=16 * 1024 * 1024,
        bounds=(1024, 1024**3),
        doc="Largest body /api/ingest accepts (bytes); larger ones get 413. Also the largest "
        "file opened in the dashboard, whose content may unpack to at most 8 times this "
        "(a compressed CSV, a workbook, Parquet).",
    )
    fallback_model = param.Selector(
        default="auto",
        objects=list(FALLBACK_MODELS),
        doc="statsforecast model used while TTM is loading or unavailable; auto = the one with "
        "the lowest backtest MASE on the series' own history (SeasonalNaive, AutoTheta, "
        "AutoETS, MSTL; seasonal naive serves until the backtest has run).",
    )
    training = param.Selector(
        default="auto",
        objects=list(TRAINING_MODES),
        doc="auto: serve trains a TTM on the history of all series in the background once a "
        "series has enough of it (context + horizon + 2 horizons, plus a held-out fifth: "
        "1000 points at 512/96; fine-tunes TTM-R2 when its weights are loaded), again every "
        "RETRAIN_HOURS and when live accuracy decays, and promotes it only when it validates "
        "better than the serving model; off: never train (a promoted model still serves).",
    )
    train_threads = param.Integer(
        default=0,
        bounds=(0, 1024),
        doc="CPU threads for training; 0 = all cores but one (at least 1), leaving a core "
        "to the stream.",
    )
    train_isolation = param.Selector(
        default="process",
        objects=["process", "thread"],
        doc="Where a training run executes: process (a spawned child with its own interpreter: "
        "the training loop never holds the server's GIL; ~5 s to start on a quiet machine; the "
        "child ends if the server dies) or thread (in the server process, as before).",
    )
    train_seconds = param.Number(
        default=300.0, bounds=(1, 86_400), doc="Time budget of one training run, in seconds."
    )
    retrain_hours = param.Number(
        default=24.0,
        bounds=(0.01, 10_000),
        doc="Hours between training runs; a run comes early (after a quarter of this) when the "
        "serving model's live MASE reaches 1.",
    )
    models_dir = param.String(
        default="models",
        doc="Folder where trained models are saved (save_pretrained + model_card.json); the "
        "promoted one is loaded at start.",
    )

    database_url = param.String(
        default="sqlite:///granite-panel.db",
        doc="Where points, forecasts and incidents are stored: sqlite:///PATH (default, a file "
        "in the working directory), postgresql+psycopg://USER@HOST/DB, or memory (nothing kept).",
    )
    retention = param.String(
        default="30d",
        doc="Stored rows older than this are trimmed in the background: a number with a unit "
        "s, m, h, d or w (e.g. 30d), or 0 to keep everything.",
    )
    notify_config = param.String(
        default="",
        doc="Path of a YAML or JSON file of webhook receivers (json, slack or alertmanager "
        "format) and routes (min severity, series pattern) that incidents are sent to; empty: "
        "no notifications.",
    )
    public_url = param.String(
        default="",
        doc="The dashboard's address as people reach it (e.g. https://panel.example.com/), for "
        "the link to the series in notifications; empty: http://ADDRESS:PORT/.",
    )
    latency_probe = param.Boolean(
        default=False,
        doc="Measure point-to-pixel latency in each browser: every tick's server time rides to "
        "the page in a tiny data source, which records when the chart is next drawn "
        "(benchmarks/latency.py). Off: pages carry nothing extra.",
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | os.PathLike | None = ".env"
    ) -> Settings:
        """Build settings from ``env_file`` (if it exists) overlaid by ``environ``."""
        raw = read_env_file(env_file) if env_file else {}
        raw.update(os.environ if environ is None else environ)
        for old_name, new_name in ALIASES.items():
            if raw.get(old_name, "").strip() and not raw.get(new_name, "").strip():
                raw[new_name] = raw[old_name]
        values = {}
        for name in field_names():
            key = name.upper()
            if key in raw and raw[key].strip() != "":
                values[name] = parse_value(cls.param[name], key, raw[key])
        return cls(**values)

    def __init__(self, **params):
        super().__init__(**params)
        self._given = frozenset(params)  # set by the user (environment, .env, flags, code)
        if self.replay_speed not in ("", "max"):
            try:
                speed = float(self.replay_speed)
            except ValueError:
                speed = float("nan")
            if not speed > 0 or speed == float("inf"):
                raise SettingsError(
                    f"REPLAY_SPEED={self.replay_speed!r} is not allowed: expected rows per "
                    "second (a number > 0) or max"
                )
        if self.history_limit < self.context_length:
            raise SettingsError(
                f"HISTORY_LIMIT={self.history_limit} is not allowed: it must be at least "
                f"CONTEXT_LENGTH ({self.context_length})"
            )

        self.timezone = self._zone("timezone")
        if self.display_timezone.strip().lower() in ("", "browser"):
            self.display_timezone = "browser"
        else:
            self.display_timezone = self._zone("display_timezone", ", or browser")
        parse_retention(self.retention)
        if self.public_url.strip() and not self.public_url.strip().startswith(
                ("http://", "https://")):
            raise SettingsError(
                f"PUBLIC_URL={self.public_url!r} is not allowed: expected an http:// or "
                "https:// URL (or empty)"
            )
    @property
    def resolved_train_threads(self) -> int:
        """TRAIN_THREADS, with 0 meaning all cores but one (at least 1)."""
        return self.train_threads or max(1, (os.cpu_count() or 2) - 1)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in field_names()}

    def given(self) -> dict:
        """The settings the user set (the rest are defaults), for a copy with changes that
        still knows which were chosen."""
        return {name: getattr(self, name) for name in field_names()
                if name in getattr(self, "_given", field_names())}

    def _zone(self, name: str, or_else: str = "") -> str:
        """Setting ``name`` as an IANA zone this machine knows (empty stays empty), or
        ``SettingsError`` saying what is allowed (``or_else``: its other values)."""
        from .sources.local_time import check_timezone
        from .sources.points import InputError

        value = getattr(self, name)
        try:
            return check_timezone(value)
        except InputError as exc:
            raise SettingsError(
                f"{name.upper()}={value!r} is not allowed: {exc}{or_else}") from None

    def for_replay(self, step_seconds: float) -> Settings:
        """These settings for a replayed file or frame whose rows are ``step_seconds`` apart:
        where the user left them at their defaults, the season is the data's, not the
        synthetic stream's 24 hourly points. SEASON_LENGTH becomes the rows of a day when a
        day is a whole number of steps (288 at 5 minutes, 24 hourly; 1 for daily or coarser
        data, up to 10,000), as ``granite-panel forecast`` chooses it, and DETECTOR_SEASON
        ``estimate`` (each series' own, from its values, as ``granite-panel detect`` and the
        NAB benchmark score it). Either one set by the user stays, and a SEASON_LENGTH the
        user sets is the detectors' too (as ``detect --season``)."""
        changes = {}
        given = getattr(self, "_given", frozenset(field_names()))
        if "season_length" not in given:
            season = rows_per_day(step_seconds)
            if season is not None:
                changes["season_length"] = season
        if "detector_season" not in given and "season_length" not in given:
            changes["detector_season"] = "estimate"
        if not changes:
            return self
        return Settings(**{**self.given(), **changes})


_RETENTION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_retention(text: str) -> float | None:
    """Seconds of history kept for a RETENTION value (``None`` keeps everything)."""
    cleaned = str(text).strip().lower()
    if cleaned in ("0", "none", "forever"):
        return None
    number, unit = cleaned[:-1], cleaned[-1:]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _RETENTION_UNITS or not value > 0 or value == float("inf"):
        raise SettingsError(
            f"RETENTION={text!r} is not allowed: expected a positive number with a unit "
            "s, m, h, d or w (e.g. 30d, 12h, 2w), or 0 to keep everything"
        )
    return value * _RETENTION_UNITS[unit]


def field_names() -> list[str]:
    return [name for name in Settings.param if name != "name"]


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """Key/value pairs of a ``.env`` file; an absent file gives none."""
    path = Path(path)
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def parse_value(parameter: param.Parameter, key: str, text: str):
    """Convert one raw string to the field's type, or raise a one-line ``SettingsError``."""
    text = text.strip()
    if isinstance(parameter, param.Boolean):
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return _fail(key, text, "one of true/false, yes/no, on/off, 1/0")
    if isinstance(parameter, param.Selector):
        for allowed in parameter.objects:
            if text.lower() == str(allowed).lower():
                return allowed
        return _fail(key, text, "one of " + ", ".join(map(str, parameter.objects)))
    if isinstance(parameter, param.Integer):
        try:
            value = int(text)
        except ValueError:
            return _fail(key, text, "a whole number" + _bounds_text(parameter))
        return _check_bounds(parameter, key, text, value, "a whole number")
    if isinstance(parameter, param.Number):
        try:
            value = float(text)
        except ValueError:
            return _fail(key, text, "a number" + _bounds_text(parameter))
        if value != value or value in (float("inf"), float("-inf")):
            return _fail(key, text, "a finite number" + _bounds_text(parameter))
        return _check_bounds(parameter, key, text, value, "a number")
    return text


def _check_bounds(parameter, key, text, value, kind):
    low, high = parameter.bounds or (None, None)
    if (low is not None and value < low) or (high is not None and value > high):
        return _fail(key, text, kind + _bounds_text(parameter))
    return value


def _bounds_text(parameter) -> str:
    low, high = parameter.bounds or (None, None)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


MAX_DAILY_SEASON = 10_000  # rows a day beyond which a daily season is no use as one


def rows_per_day(step_seconds: float) -> int | None:
    """The season of data ``step_seconds`` apart: the rows of a day when a day is a whole
    number of steps (288 at 5 minutes, 24 hourly), 1 for daily or coarser data, ``None``
    where no daily season fits (a step that does not divide a day, or more than
    ``MAX_DAILY_SEASON`` rows a day: a season longer than any history kept)."""
    per_day = 86400.0 / step_seconds if step_seconds > 0 else 0.0
    if per_day <= 1.0:
        return 1
    whole = round(per_day)
    if abs(per_day - whole) < 1e-9 * per_day and whole <= MAX_DAILY_SEASON:
        return int(whole)
    return None


def _fail(key: str, text: str, allowed: str):
    raise SettingsError(f"{key}={text!r} is not allowed: expected {allowed}")


# settings whose default a replayed file's own data replaces (``Settings.for_replay``):
# ``.env.example`` leaves them commented out, since a copy that set them would pin them
FOLLOW_THE_DATA = ("season_length", "detector_season")


def env_example() -> str:
    """The text of ``.env.example``: every setting, its meaning and its default."""
    lines = [
        "# granite-panel settings. Copy to .env and edit; the environment overrides .env.",
        "# Generated from granite_panel/settings.py (tests keep the two in sync).",
        "",
    ]
    for name in field_names():
        parameter = Settings.param[name]
        default = parameter.default
        if isinstance(default, bool):
            default = str(default).lower()
        allowed = ""
        if isinstance(parameter, param.Selector):
            allowed = f" One of: {', '.join(map(str, parameter.objects))}."
        elif isinstance(parameter, param.Number) and parameter.bounds:
            allowed = _bounds_text(parameter).replace(" from", " Allowed: from")
            allowed = allowed.replace(" >=", " Allowed: >=") + ("." if allowed else "")
        lines.append(f"# {parameter.doc}{allowed}")
        unset = "# " if name in FOLLOW_THE_DATA else ""  # set, they would stop following it
        lines.append(f"{unset}{name.upper()}={default}")
        lines.append("")
    return "\n".join(lines)
