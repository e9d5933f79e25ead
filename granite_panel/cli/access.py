"""``granite-panel token ...`` and ``granite-panel user ...``: the API_TOKENS and AUTH_USERS
files. A token is printed once, at creation; only its sha256 is stored. A password is read
from the terminal (or one line of stdin with ``--password-stdin``), never from argv."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..server.auth import ROLES, SCOPES


def _default_file(setting: str, fallback: str) -> str:
    from .main import load_settings

    return getattr(load_settings(), setting) or fallback


def add_token_parser(commands) -> None:
    token = commands.add_parser("token", help="create, list or revoke API tokens (API_TOKENS)")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="make a new token and print it once")
    create.add_argument("name", help="who or what holds it (e.g. telegraf-host1)")
    create.add_argument("--role", required=True, choices=ROLES, help="what it may do")
    create.add_argument("--scope", action="append", default=[], choices=SCOPES,
                        help="an extra right: ingest lets it POST /api/ingest (repeatable)")
    listing = actions.add_parser("list", help="names, roles and scopes (never the tokens)")
    revoke = actions.add_parser("revoke", help="delete a token; it stops working at once")
    revoke.add_argument("name")
    for sub in (create, listing, revoke):
        sub.add_argument("--file", help="the tokens file (default: API_TOKENS or tokens.json)")
    token.set_defaults(func=token_command)


def token_command(args: argparse.Namespace) -> int:
    from ..server import auth

    path = args.file or _default_file("api_tokens", "tokens.json")
    if args.token_command == "create":
        token = auth.create_token(path, args.name, args.role, args.scope)
        print(token)
        print(f"token {args.name!r} ({args.role}{', scopes ' + ', '.join(args.scope) if args.scope else ''}) "
              f"stored as its sha256 in {path}; this is the only time it is shown",
              file=sys.stderr)
    elif args.token_command == "list":
        tokens = auth.list_tokens(path)
        for name, entry in sorted(tokens.items()):
            print(f"{name}\t{entry['role']}\t{','.join(entry['scopes']) or '-'}")
        if not tokens:
            print(f"no tokens in {path}", file=sys.stderr)
    else:
        auth.revoke_token(path, args.name)
        print(f"token {args.name!r} revoked in {path}", file=sys.stderr)
    return 0


def add_user_parser(commands) -> None:
    user = commands.add_parser("user", help="add or remove dashboard users (AUTH_USERS)")
    actions = user.add_subparsers(dest="user_command", required=True)
    add = actions.add_parser("add", help="add a user or set a user's password and role")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (scripts)")
    remove = actions.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    for sub in (add, remove):
        sub.add_argument("--file", help="the users file (default: AUTH_USERS or users.json)")
    user.set_defaults(func=user_command)


def user_command(args: argparse.Namespace) -> int:
    from ..server import auth

    path = args.file or _default_file("auth_users", "users.json")
    if args.user_command == "remove":
        auth.remove_user(path, args.name)
        print(f"user {args.name!r} removed from {path}", file=sys.stderr)
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("granite-panel: error: the passwords differ", file=sys.stderr)
            return 2
    new = auth.set_user(path, args.name, password, args.role)
    print(f"user {args.name!r} ({args.role}) {'added to' if new else 'updated in'} {path}",
          file=sys.stderr)
    return 0
