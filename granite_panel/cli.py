"""``granite-panel``: serve the dashboard (more subcommands come with later issues)."""

from __future__ import annotations

import argparse
import logging
import sys

from .settings import Settings, SettingsError


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
        "--session-check-ms",
        type=int,
        default=2000,
        help="how often closed browser sessions are released (milliseconds)",
    )
    return parser


def load_settings(**overrides) -> Settings:
    """Settings from .env and the environment, then command-line overrides."""
    settings = Settings.from_env()
    for name, value in overrides.items():
        if value is not None and value is not False:
            setattr(settings, name, value)
    return settings


def configure_logging(debug: bool) -> None:
    """INFO for our own messages (DEBUG with DEBUG=true); libraries only when they warn."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        for noisy in ("tsfm_public", "p-", "bokeh", "tornado.access", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(port=args.port, address=args.address, autostart=args.autostart)
    configure_logging(settings.debug)
    import panel as pn

    from . import api, app, runtime

    engine = runtime.shared_engine(settings)
    if settings.autostart:
        engine.start()
    origins = {f"localhost:{settings.port}", f"127.0.0.1:{settings.port}"}
    origins.add(f"{settings.address}:{settings.port}")
    if settings.address in ("0.0.0.0", "::"):
        origins = {"*"}
    print(f"granite-panel: serving on http://{settings.address}:{settings.port}/", flush=True)
    pn.serve(
        {"/": app.serve_page},
        port=settings.port,
        address=settings.address,
        show=args.show,
        title=app.TITLE,
        extra_patterns=api.ROUTES,
        websocket_origin=sorted(origins),
        check_unused_sessions_milliseconds=args.session_check_ms,
        unused_session_lifetime_milliseconds=args.session_check_ms,
        cookie_secret=settings.secret_key or None,
        verbose=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
    except SettingsError as exc:
        print(f"granite-panel: error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
