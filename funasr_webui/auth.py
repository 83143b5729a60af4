"""Access control: page users (`--auth`) and API keys (`--api-key`), each given inline or as a file.

Secrets are compared in constant time: every configured secret is compared, whatever matched, and the
comparisons run on fixed-length SHA-256 digests so the lengths leak nothing either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _lines(value: str) -> list[str]:
    """The non-empty, non-comment lines of the file `value` names, or `value` itself when it is no file."""
    path = Path(value).expanduser()
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if not lines:
            raise ValueError(f"{path} holds no entries")
        return lines
    return [value.strip()]


def parse_users(value: str | None) -> dict[str, str]:
    """`user:password`, or a file with one such line per user (blank lines and # comments skipped)."""
    users: dict[str, str] = {}
    for line in _lines(value) if value else []:
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError("--auth takes user:password, or a file of user:password lines")
        users[user.strip()] = password
    return users


def parse_keys(value: str | None) -> list[str]:
    """One key, or a file with one key per line (blank lines and # comments skipped)."""
    keys = _lines(value) if value else []
    if any(not k or any(c.isspace() for c in k) for k in keys):
        raise ValueError("--api-key takes a key without spaces, or a file of such keys, one per line")
    return keys


@dataclass
class Credentials:
    """Who may use the page and the API. Nothing configured = open (the default loopback bind)."""

    users: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._users = [(_digest(u), _digest(p)) for u, p in self.users.items()]
        self._keys = [_digest(k) for k in self.keys]

    @classmethod
    def from_settings(cls, auth: str | None, api_key: str | None) -> Credentials:
        return cls(parse_users(auth), parse_keys(api_key))

    @property
    def api_open(self) -> bool:
        return not self._users and not self._keys

    def page_login(self, username: str, password: str) -> bool:
        """For Gradio's login form."""
        user, pw = _digest(username), _digest(password)
        ok = False
        for u, p in self._users:  # no early exit: the time does not depend on which user matched
            ok |= hmac.compare_digest(u, user) & hmac.compare_digest(p, pw)
        return ok

    def key_ok(self, key: str) -> bool:
        given = _digest(key)
        ok = False
        for k in self._keys:
            ok |= hmac.compare_digest(k, given)
        return ok

    def bearer_ok(self, authorization: str | None) -> bool:
        """`Authorization: Bearer <api key>` with a configured key."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and bool(value.strip()) and self.key_ok(value.strip())

    def api_allows(self, authorization: str | None) -> bool:
        """`Authorization: Bearer <api key>`, or `Basic` with a page user: --auth alone never leaves the API open."""
        if self.api_open:
            return True
        scheme, _, value = (authorization or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            return self.bearer_ok(authorization)
        if scheme == "basic" and value:
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return bool(sep) and self.page_login(user, password)
        return False


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_warnings(host: str, creds: Credentials, tls: bool = False) -> list[str]:
    """What is reachable without credentials from other machines when binding to `host`."""
    if is_loopback(host):
        return []
    if creds.api_open:
        return [
            f"WARNING: listening on {host} with neither --auth nor --api-key: anyone who can reach this machine "
            "can use the page and the API, and read or delete the transcription history."
        ]
    warnings = []
    if not creds.users:
        warnings.append(
            f"WARNING: listening on {host} without --auth: the web page (which can read and delete the history) "
            "is open to anyone who can reach this machine; only the API needs a key."
        )
    if not tls:
        warnings.append(
            "note: traffic is plain HTTP (passwords and keys included): use --ssl-self-signed or --ssl-certfile, "
            "or a TLS proxy, on an untrusted network."
        )
    return warnings
