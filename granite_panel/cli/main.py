"""``granite-panel``: serve the dashboard, fetch a TTM for offline use, score a CSV."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from .access import add_token_parser, add_user_parser
from .detect import add_detect_parser
from .forecast import add_forecast_parser
from .train import add_train_parser
from ..settings import Settings, SettingsError
from ..sources.points import SourceError
from ..store.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="granite-panel",
        description="Live Granite TTM-R2 forecasting and anomaly detection dashboard.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the dashboard and the REST API")
    serve.add_argument("--port", type=int, help="TCP port (default: PORT or 5006)")
    serve.add_argument("--address", help="listen address (default: ADDRESS or localhost)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument(
        "--autostart", action="store_true", help="start the stream at once (or AUTOSTART=true)"
    )
    serve.add_argument(
        "--source",
        help="synthetic (default), push, prometheus, or a .csv/.parquet/.xlsx/.json file to "
        "replay (or SOURCE=...)",
    )
    serve.add_argument(
        "--speed",
        help="file replay: rows per second, or max for as fast as the engine takes them "
        "(default: one row per tick)",
    )
    serve.add_argument("--timestamp-column", help="file replay: the timestamp column")
    serve.add_argument(
        "--value-columns", help="file replay: comma-separated value columns of a wide file"
    )
    serve.add_argument("--label-column", help="file replay: a 0/1 anomaly label column")
    serve.add_argument("--sheet", help="file replay, spreadsheets: the sheet, by name or "
                       "number (1 = the first, the default; or SHEET)")
    serve.add_argument("--timezone", help="file replay: the IANA zone (Europe/Berlin) of times "
                       "written without a UTC offset (or TIMEZONE; default UTC)")
    serve.add_argument("--max-series", type=int, help="most series kept (default: MAX_SERIES or 1000)")
    serve.add_argument("--database-url", help="where points are stored (default: DATABASE_URL, "
                       "sqlite:///granite-panel.db; memory keeps nothing)")
    serve.add_argument(
        "--session-check-ms",
        type=int,
        default=2000,
        help="how often closed browser sessions are released (milliseconds)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow AUTH=none on a non-loopback address (anyone who reaches it may control it)",
    )
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a host a browser page may reach the dashboard as (repeatable; adds to "
        "ALLOW_WEBSOCKET_ORIGIN; localhost and ADDRESS:PORT are always allowed)",
    )
    serve.set_defaults(func=serve_command)
    fetch = commands.add_parser(
        "fetch-model",
        help="save the TTM revision chosen for CONTEXT_LENGTH/FORECAST_HORIZON to a folder",
    )
    fetch.add_argument("--dest", help="folder to save into (default: models/<revision>)")
    fetch.set_defaults(func=fetch_command)
    add_detect_parser(commands)
    add_forecast_parser(commands)
    add_train_parser(commands)
    add_token_parser(commands)
    add_user_parser(commands)
    return parser


def load_settings(**overrides) -> Settings:
    """Settings from .env and the environment, then command-line overrides."""
    settings = Settings.from_env()
    given = {k: v for k, v in overrides.items() if v is not None and v is not False}
    if not given:
        return settings
    try:  # through the constructor, so that every check runs on the overrides too
        return Settings(**{**settings.given(), **given})
    except SettingsError:
        raise
    except ValueError as exc:  # param's own bound/type checks
        raise SettingsError(str(exc).strip().splitlines()[0]) from None


def configure_logging(debug: bool) -> None:
    """INFO for our own messages (DEBUG with DEBUG=true); libraries only when they warn."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        for noisy in ("tsfm_public", "p-", "bokeh", "tornado.access", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings(
        port=args.port,
        address=args.address,
        autostart=args.autostart,
        source=args.source,
        replay_speed=args.speed,
        timestamp_column=args.timestamp_column,
        value_columns=args.value_columns,
        label_column=args.label_column,
        timezone=args.timezone,
        sheet=args.sheet,
        max_series=args.max_series,
        database_url=args.database_url,
    )
    configure_logging(settings.debug)
    from ..server import auth, hardening

    # every refusal comes before the engine and the model load: one line, exit 2
    access = auth.install(auth.Auth.from_settings(settings))
    if not access.enabled and not hardening.is_loopback(settings.address):
        if not args.insecure:
            raise SettingsError(
                f"ADDRESS={settings.address!r} is not a loopback address and AUTH=none: anyone "
                "who reaches it could control the stream; set AUTH=basic or AUTH=oauth "
                "(README: Security), or pass --insecure"
            )
        print(f"granite-panel: warning: serving {settings.address} without authentication "
              "(--insecure): anyone who reaches it may control the stream", file=sys.stderr,
              flush=True)
    import panel as pn

    from ..server import api, app, runtime

    engine = runtime.shared_engine(settings)  # a bad source fails here: one line, exit 2
    if settings.autostart:
        engine.start()
    # SIGTERM (a deploy, systemd, docker stop) ends like Ctrl-C: the engine checkpoints and
    # commits what is queued before the process exits.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from ..server.gc_policy import freeze_after_start_up

    freeze_after_start_up(engine)
    try:
        _serve(pn, settings, args, app, api)
    finally:
        runtime.discard_shared_engine()
    return 0


def _serve(pn, settings, args, app, api) -> None:
    from ..server import auth, hardening

    allowed = settings.allow_websocket_origin.split(",") + list(args.allow_websocket_origin)
    origins = hardening.websocket_origins(settings.address, settings.port, allowed)
    access = auth.current()
    print(f"granite-panel: serving on http://{settings.address}:{settings.port}/"
          f" (auth: {access.mode})", flush=True)
    server = pn.serve(
        {"/": app.serve_page},
        port=settings.port,
        address=settings.address,
        show=args.show,
        title=app.TITLE,
        extra_patterns=api.ROUTES,
        websocket_origin=origins,
        check_unused_sessions_milliseconds=args.session_check_ms,
        unused_session_lifetime_milliseconds=args.session_check_ms,
        http_server_kwargs=hardening.http_server_options(settings.ingest_max_bytes),
        websocket_max_message_size=hardening.websocket_message_limit(settings.ingest_max_bytes),
        verbose=False,
        start=False,
        **({"cookie_secret": settings.cookie_secret} if settings.cookie_secret else {}),
        **access.panel_options(settings),
    )
    hardening.add_security_headers(server)
    server.start()
    server.io_loop.start()


def quiet_hub_logging() -> None:
    """The hub client logs every retry; the command prints one line of its own instead."""
    for name in ("huggingface_hub", "transformers"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import huggingface_hub.utils.logging as hub_logging

    hub_logging.set_verbosity_error()
    hub_logging.disable_progress_bars() if hasattr(hub_logging, "disable_progress_bars") else None


def fetch_command(args: argparse.Namespace) -> int:
    """Download once (where the hub is reachable), then run offline with MODEL_NAME=DEST."""
    settings = load_settings()
    quiet_hub_logging()
    from ..forecasting.ttm import describe_load_error, fetch_model, is_hub_id

    if not is_hub_id(settings.model_name):
        print(
            f"granite-panel: error: MODEL_NAME={settings.model_name!r} is a local folder "
            "already; fetch-model needs a hub id",
            file=sys.stderr,
        )
        return 2
    try:
        revision, dest = fetch_model(
            settings.model_name,
            args.dest or Path("models") / "pending",
            settings.context_length,
            settings.forecast_horizon,
            settings.freq,
            settings.freq_prefix_tuning,
        )
    except Exception as exc:
        print(
            f"granite-panel: error: cannot fetch {settings.model_name}: {describe_load_error(exc)}",
            file=sys.stderr,
        )
        return 1
    if args.dest is None:
        dest = dest.rename(dest.parent / revision)
    print(f"saved {settings.model_name} ({revision}) to {dest}; use MODEL_NAME={dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SettingsError, SourceError, StoreError) as exc:
        print(f"granite-panel: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `granite-panel detect x.csv | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
