"""Who is asking and what may they do: users, API tokens, roles, and Panel's login.

One ``Auth`` per served process (``install``/``current``), built from the settings at
start-up, where every problem is one ``AuthError`` line (exit 2):

- ``AUTH=none``: everyone is ``admin`` (allowed off loopback only with ``--insecure``).
- ``AUTH=basic``: Panel's login page (a ``BasicAuthProvider`` whose check is a scrypt hash
  from ``AUTH_USERS``, never a plain password) sets Panel's signed ``user`` cookie.
- ``AUTH=oauth``: Panel's generic OpenID Connect provider; a claim maps to a role.
- Machines use ``Authorization: Bearer TOKEN`` (``API_TOKENS``: only the token's sha256 is
  kept, compared with ``hmac.compare_digest``).

Roles are ordered: viewer (watch, export, read the API) < operator (+ Start/Stop/Reset,
acknowledge/mute, training) < admin (+ settings, tokens). The user and token files are
re-read when they change, so ``token revoke`` takes effect without a restart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import Settings, SettingsError

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")
SCOPES = ("ingest",)
# the least role each action needs (a token's ``ingest`` scope stands in for operator)
ACTIONS = {
    "watch": "viewer",
    "read": "viewer",
    "export": "viewer",
    "control": "operator",  # Start, Stop, Reset, open a file
    "acknowledge": "operator",
    "mute": "operator",
    "train": "operator",
    "ingest": "operator",
    "settings": "admin",
    "tokens": "admin",
}
SCOPED_ACTIONS = {"ingest": "ingest"}  # action -> the scope a token needs for it
# scrypt's cost (n=2**14, r=8, p=1: 16 MiB, ~50 ms here); stored in each hash, so raising
# it later leaves old hashes valid.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
COOKIE_SECRET_MIN = 32
COOKIE_MAX_AGE_DAYS = 7  # Panel's oauth_expiry: how long a login cookie is honoured


class AuthError(SettingsError):
    """A user or token file, or an auth setting, is not usable; one line for the user."""


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$digest`` (base64), for ``AUTH_USERS``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    kind, n, r, p, salt, digest = encoded.split("$")
    if kind != "scrypt":
        raise ValueError(kind)
    return int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(digest)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, encoded: str | None) -> bool:
    """Constant-time check; an unknown user (``encoded=None``) costs the same hash."""
    n, r, p, salt, digest = _parse_hash(encoded or _dummy_hash())
    given = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2**27,
                           dklen=len(digest))
    return hmac.compare_digest(given, digest) and encoded is not None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- identities


def role_rank(role: str) -> int:
    return ROLES.index(role)


@dataclass(frozen=True)
class Identity:
    """A logged-in user, a token's holder, or anyone (``AUTH=none``)."""

    name: str
    role: str
    scopes: tuple[str, ...] = ()
    via: str = "session"  # session | token | open

    def may(self, action: str) -> bool:
        if self.via == "token" and action in SCOPED_ACTIONS:
            return SCOPED_ACTIONS[action] in self.scopes
        return role_rank(self.role) >= role_rank(ACTIONS[action])


OPEN = Identity("anyone", "admin", SCOPES, via="open")


# ---------------------------------------------------------------- files


def _read_json(path: Path, what: str, setting: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthError(f"{setting}={str(path)!r}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"{setting}={str(path)!r}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise AuthError(f"{setting}={str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AuthError(f"{setting}={str(path)!r} is not allowed: expected a JSON object of "
                        f"{what}s by name")
    return data


def _check_role(setting: str, path: Path, name: str, role) -> str:
    if role not in ROLES:
        raise AuthError(f"{setting}={str(path)!r}: {name!r} has role {role!r}; expected one of "
                        + ", ".join(ROLES))
    return role


def parse_users(data: dict, path: Path) -> dict[str, dict]:
    """name -> {"password_hash", "role"}, every entry checked."""
    users = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise AuthError(f"AUTH_USERS={str(path)!r}: user {name!r} is not allowed: expected "
                            '{"password_hash": ..., "role": ...}')
        encoded = entry.get("password_hash")
        try:
            _parse_hash(str(encoded))
        except (ValueError, TypeError):
            raise AuthError(f"AUTH_USERS={str(path)!r}: user {name!r} has no valid password_hash "
                            "(expected scrypt$...; make one with granite-panel user add)") from None
        users[name] = {"password_hash": encoded,
                       "role": _check_role("AUTH_USERS", path, name, entry.get("role"))}
    return users


def parse_tokens(data: dict, path: Path) -> dict[str, dict]:
    """name -> {"sha256", "role", "scopes"}, every entry checked."""
    tokens = {}
    for name, entry in data.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise AuthError(f"API_TOKENS={str(path)!r}: token {name!r} has no valid sha256 "
                            "(expected 64 hex digits; make one with granite-panel token create)")
        scopes = entry.get("scopes", [])
        if not isinstance(scopes, list) or any(s not in SCOPES for s in scopes):
            raise AuthError(f"API_TOKENS={str(path)!r}: token {name!r} has scopes {scopes!r}; "
                            "expected a list of " + ", ".join(SCOPES))
        tokens[name] = {"sha256": digest.lower(), "scopes": scopes,
                        "role": _check_role("API_TOKENS", path, name, entry.get("role"))}
    return tokens


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


class WatchedFile:
    """A JSON file parsed once and again whenever it changes on disk.

    A change that does not parse keeps the previous contents (with a warning): a typo in
    a running server's user file must not lock everyone out or let anyone in.
    """

    def __init__(self, path: str | os.PathLike, parse, what: str, setting: str):
        self.path, self._parse, self._what, self._setting = Path(path), parse, what, setting
        self._lock = threading.Lock()
        self._stamp = None
        self._data = self._load()

    def _load(self) -> dict:
        stamp = self._stat()
        data = self._parse(_read_json(self.path, self._what, self._setting), self.path)
        self._stamp = stamp
        return data

    def _stat(self):
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def get(self) -> dict:
        with self._lock:
            if self._stat() != self._stamp:
                try:
                    self._data = self._load()
                    log.info("%s reloaded (%d entries)", self._setting, len(self._data))
                except AuthError as exc:
                    log.warning("%s changed but is not usable, keeping the previous one: %s",
                                self._setting, exc)
                    self._stamp = self._stat()
            return self._data


# ---------------------------------------------------------------- the policy


def parse_role_map(text: str) -> dict[str, str]:
    """``OAUTH_ROLES`` 'ops=operator,sre=admin' -> {'ops': 'operator', 'sre': 'admin'}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        value, _, role = part.rpartition("=")
        if not value or role not in ROLES:
            raise AuthError(f"OAUTH_ROLES entry {part!r} is not allowed: expected CLAIM_VALUE=ROLE "
                            "with a role of " + ", ".join(ROLES))
        mapping[value.strip()] = role
    return mapping


@dataclass
class Auth:
    """The auth of one served process (``AUTH=none`` unless ``install``ed otherwise)."""

    mode: str = "none"
    cookie_secret: str = ""
    users: WatchedFile | None = None
    tokens: WatchedFile | None = None
    role_claim: str = "groups"
    role_map: dict = field(default_factory=dict)
    default_role: str = "viewer"
    user_key: str = "email"

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        """Check everything once, at start-up: AuthError (one line) for what is unusable."""
        mode = settings.auth
        if mode != "none":
            if not settings.cookie_secret:
                raise AuthError(f"AUTH={mode} needs COOKIE_SECRET (at least {COOKIE_SECRET_MIN} "
                                "characters, e.g. python -c 'import secrets; "
                                "print(secrets.token_urlsafe(32))')")
            if len(settings.cookie_secret) < COOKIE_SECRET_MIN:
                raise AuthError(f"COOKIE_SECRET is too short ({len(settings.cookie_secret)} "
                                f"characters): expected at least {COOKIE_SECRET_MIN}")
        users = None
        if mode == "basic":
            users = WatchedFile(settings.auth_users, parse_users, "user", "AUTH_USERS")
        role_map = {}
        if mode == "oauth":
            missing = [name.upper() for name in ("oauth_key", "oauth_secret",
                                                  "oauth_authorize_url", "oauth_token_url")
                       if not getattr(settings, name)]
            if missing:
                raise AuthError("AUTH=oauth needs " + ", ".join(missing))
            role_map = parse_role_map(settings.oauth_roles)
        tokens = None
        if settings.api_tokens:
            tokens = WatchedFile(settings.api_tokens, parse_tokens, "token", "API_TOKENS")
        return cls(mode=mode, cookie_secret=settings.cookie_secret, users=users, tokens=tokens,
                   role_claim=settings.oauth_role_claim, role_map=role_map,
                   default_role=settings.oauth_default_role, user_key=settings.oauth_user_key)

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    # ------------------------------------------------------------ who is it

    def check_password(self, username: str, password: str) -> bool:
        entry = (self.users.get() if self.users else {}).get(username)
        ok = verify_password(password, entry["password_hash"] if entry else None)
        if not ok:
            log.warning("failed login for user %r", username[:64])
        return ok

    def user_identity(self, name: str | None, claims: dict | None = None) -> Identity | None:
        """The identity of a logged-in user (Panel's ``user`` cookie, OAuth claims)."""
        if not self.enabled:
            return OPEN
        if not name or name == "guest":
            return None
        if self.mode == "basic":
            entry = self.users.get().get(name) if self.users else None
            return Identity(name, entry["role"]) if entry else None
        role = self.role_from_claims(claims or {})
        return Identity(name, role) if role else None

    def role_from_claims(self, claims: dict) -> str | None:
        """The highest role OAUTH_ROLES gives the claim's value(s); else the default role."""
        value = claims.get(self.role_claim)
        values = value if isinstance(value, list) else [value] if value is not None else []
        matched = [self.role_map[str(v)] for v in values if str(v) in self.role_map]
        if matched:
            return max(matched, key=role_rank)
        return None if self.default_role == "none" else self.default_role

    def token_identity(self, token: str) -> Identity | None:
        """The holder of a bearer token; every stored digest is compared (constant time)."""
        if not self.tokens or not token:
            return None
        given = token_digest(token)
        found = None
        for name, entry in self.tokens.get().items():
            if hmac.compare_digest(given, entry["sha256"]):
                found = Identity(name, entry["role"], tuple(entry["scopes"]), via="token")
        return found

    def session_identity(self) -> Identity | None:
        """The identity of the current Panel session (``pn.state.user``/``user_info``)."""
        if not self.enabled:
            return OPEN
        import panel as pn

        return self.user_identity(pn.state.user, pn.state.user_info)

    def request_identity(self, handler) -> tuple[Identity | None, str]:
        """(identity, why none) for a Tornado request: bearer token, else Panel's cookie."""
        if not self.enabled:
            return OPEN, ""
        header = handler.request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                return None, "only Authorization: Bearer TOKEN is accepted"
            identity = self.token_identity(token.strip())
            return identity, "" if identity else "the token is not valid (or was revoked)"
        name = self._signed_cookie(handler, "user")
        if name is None:
            return None, "no credentials: log in, or send Authorization: Bearer TOKEN"
        identity = self.user_identity(name, self._cookie_claims(handler))
        return identity, "" if identity else f"user {name!r} has no role here"

    def _signed_cookie(self, handler, name: str) -> str | None:
        from tornado.web import decode_signed_value

        raw = handler.get_cookie(name)
        value = raw and decode_signed_value(self.cookie_secret, name, raw,
                                            max_age_days=COOKIE_MAX_AGE_DAYS)
        return value.decode("utf-8") if value else None

    def _cookie_claims(self, handler) -> dict:
        """The OAuth id_token's claims, read as Panel's ``state.user_info`` reads them."""
        if self.mode != "oauth":
            return {}
        from tornado.web import decode_signed_value
        import panel as pn
        from panel.util import decode_token

        raw = handler.get_cookie("id_token")
        value = raw and decode_signed_value(self.cookie_secret, "id_token", raw,
                                            max_age_days=COOKIE_MAX_AGE_DAYS)
        if not value:
            return {}
        try:
            return decode_token(pn.state._decrypt_cookie(value))
        except Exception:  # a cookie we cannot read grants nothing
            return {}

    # ------------------------------------------------------------ Panel's side

    def panel_options(self, settings: Settings) -> dict:
        """The ``pn.serve`` keywords that turn Panel's own login on (with COOKIE_SECRET)."""
        if self.mode == "basic":
            return {"auth_provider": PasswordFileProvider()}
        if self.mode == "oauth":
            import panel as pn

            if settings.oauth_encryption_key:
                pn.config.oauth_encryption_key = settings.oauth_encryption_key
            extra = {"AUTHORIZE_URL": settings.oauth_authorize_url,
                     "TOKEN_URL": settings.oauth_token_url,
                     "USER_KEY": settings.oauth_user_key,
                     "scope": settings.oauth_scope.split()}
            if settings.oauth_user_url:
                extra["USER_URL"] = settings.oauth_user_url
            options = {"oauth_provider": "generic", "oauth_key": settings.oauth_key,
                       "oauth_secret": settings.oauth_secret, "oauth_extra_params": extra}
            if settings.oauth_redirect_uri:
                options["oauth_redirect_uri"] = settings.oauth_redirect_uri
            return options
        return {}


@functools.cache
def _panel_basic_classes():
    """Panel's basic login, checking ``AUTH_USERS`` hashes instead of plain passwords."""
    from panel.auth import BasicAuthProvider, BasicLoginHandler

    class PasswordFileLoginHandler(BasicLoginHandler):
        def _validate(self, username, password):
            return current().check_password(username, password)

    class PasswordFileProvider(BasicAuthProvider):
        @property
        def login_handler(self):
            super().login_handler  # noqa: B018 - sets the endpoint and template Panel uses
            return PasswordFileLoginHandler

    return PasswordFileProvider


def PasswordFileProvider():  # noqa: N802 - a class built on first use (Panel imports late)
    return _panel_basic_classes()()


# ---------------------------------------------------------------- the process's auth

_current = Auth()


def install(auth: Auth) -> Auth:
    global _current
    _current = auth
    return auth


def current() -> Auth:
    return _current


# ---------------------------------------------------------------- file edits (CLI)


def _write_json_atomic(path: Path, data: dict) -> None:
    """Written beside and renamed over, readable by the owner only (it holds hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(temporary, path)


def _existing(path: Path, setting: str, what: str) -> dict:
    return _read_json(path, what, setting) if path.exists() else {}


def create_token(path: str | os.PathLike, name: str, role: str, scopes=()) -> str:
    """A new random token for ``name`` (returned once); only its sha256 is stored."""
    path = Path(path)
    _check_role("--role", path, name, role)
    for scope in scopes:
        if scope not in SCOPES:
            raise AuthError(f"--scope {scope!r} is not allowed: expected one of " + ", ".join(SCOPES))
    tokens = _existing(path, "API_TOKENS", "token")
    parse_tokens(tokens, path)
    if name in tokens:
        raise AuthError(f"token {name!r} exists in {path}; revoke it first (granite-panel token "
                        f"revoke {name})")
    token = secrets.token_urlsafe(32)
    tokens[name] = {"sha256": token_digest(token), "role": role, "scopes": sorted(set(scopes))}
    _write_json_atomic(path, tokens)
    return token


def list_tokens(path: str | os.PathLike) -> dict[str, dict]:
    path = Path(path)
    return parse_tokens(_existing(path, "API_TOKENS", "token"), path)


def revoke_token(path: str | os.PathLike, name: str) -> None:
    path = Path(path)
    tokens = _existing(path, "API_TOKENS", "token")
    if name not in tokens:
        known = ", ".join(sorted(tokens)) or "none"
        raise AuthError(f"token {name!r} not found in {path} (tokens: {known})")
    del tokens[name]
    _write_json_atomic(path, tokens)


def set_user(path: str | os.PathLike, name: str, password: str, role: str) -> bool:
    """Add or replace a user; True when the user was new."""
    path = Path(path)
    _check_role("--role", path, name, role)
    if not name or not password:
        raise AuthError("a user needs a non-empty name and password")
    users = _existing(path, "AUTH_USERS", "user")
    new = name not in users
    users[name] = {"password_hash": hash_password(password), "role": role}
    _write_json_atomic(path, users)
    return new


def remove_user(path: str | os.PathLike, name: str) -> None:
    path = Path(path)
    users = _existing(path, "AUTH_USERS", "user")
    if name not in users:
        raise AuthError(f"user {name!r} not found in {path} (users: {', '.join(sorted(users)) or 'none'})")
    del users[name]
    _write_json_atomic(path, users)
