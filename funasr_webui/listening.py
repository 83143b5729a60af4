"""What the server listens on besides its page and API, as /health and the System tab show it: HTTPS (so that
browsers on other PCs allow the microphone) and FunASR's WebSocket listener (port, ws or wss, connections)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from .funasr_ws import FunasrListener


@dataclass
class HttpsState:
    enabled: bool
    self_signed: bool  # made by --ssl-self-signed (browsers warn once per PC)
    names: list[str]  # what the certificate is for: host names and addresses
    valid_until: str | None  # YYYY-MM-DD (UTC); None when it cannot be read


@dataclass
class FunasrState:
    url: str  # ws:// or wss://, the address the listener is bound to
    port: int
    secure: bool  # wss: FunASR's clients connect with their default --ssl 1
    connections: int  # open now
    max_connections: int


class Listening:
    """Set up by the server (server.create_app starts the FunASR listener and registers it here)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.funasr: FunasrListener | None = None

    def https(self) -> HttpsState:
        cert = self.settings.ssl_certfile
        if cert is None:
            return HttpsState(False, False, [], None)
        names, until = certificate_facts(cert)
        return HttpsState(True, bool(self.settings.ssl_self_signed), names, until)

    def funasr_ws(self) -> FunasrState | None:
        """None when --funasr-ws-port is not set (or the server has not started it)."""
        listener = self.funasr
        if listener is None:
            return None
        secure = listener.ssl_context is not None
        return FunasrState(listener.url, listener.port, secure, len(listener.connections), listener.max_connections)

    def health(self) -> dict[str, Any]:
        """For the open /health: no certificate names (host names are nobody's business there)."""
        https = self.https()
        funasr = self.funasr_ws()
        return {
            "https": {"enabled": https.enabled, "self_signed": https.self_signed, "valid_until": https.valid_until},
            "funasr_ws": None if funasr is None else {k: v for k, v in asdict(funasr).items() if k != "url"},
        }


def certificate_facts(cert) -> tuple[list[str], str | None]:
    """The names and addresses a certificate is for, and its last day; ([], None) if it cannot be read."""
    from cryptography import x509

    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return [], None
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        names = []
    return names, c.not_valid_after_utc.astimezone(dt.timezone.utc).date().isoformat()
