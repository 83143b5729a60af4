"""HTTPS: a certificate given (`--ssl-certfile/--ssl-keyfile`), or a self-signed one made once for this machine's
names and addresses (`--ssl-self-signed`), kept beside the database.

Why: browsers give a page the microphone only on https:// or http://localhost, so from another PC of the office
network (http://server-ip:7860) live dictation and recording are refused without it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from .security import host_name, is_ip
from .settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

VALID_DAYS = 825  # the longest validity browsers accept for a server certificate


class TlsError(ValueError):
    pass


def resolve(settings: Settings) -> Settings:
    """The settings with the certificate files to serve with (made when --ssl-self-signed asks), checked now:
    a bad file fails at start-up with one line, not at the first connection."""
    if settings.ssl_self_signed and settings.ssl_certfile is None:
        cert, key = self_signed_paths(settings.db)
        ensure_self_signed(cert, key, *machine_names(settings))
        settings = settings.model_copy(update={"ssl_certfile": cert, "ssl_keyfile": key})
    if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
        raise TlsError("--ssl-keyfile needs --ssl-certfile (the certificate it belongs to)")
    if settings.ssl_certfile is not None:
        server_context(settings)  # raises TlsError for a missing or mismatched file
    return settings


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the FunASR WebSocket listener (the page's is uvicorn's, from the same files)."""
    if settings.ssl_certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as e:
        raise TlsError(f"cannot use the certificate {settings.ssl_certfile}: {e}") from e
    return context


def self_signed_paths(db: Path | str) -> tuple[Path, Path]:
    """history.db -> history-https.crt, history-https.key beside it (a PostgreSQL history: in the project folder)."""
    if not isinstance(db, Path):
        db = PROJECT_ROOT / "history.db"
    return db.with_name(db.stem + "-https.crt"), db.with_name(db.stem + "-https.key")


def machine_names(settings: Settings) -> tuple[list[str], list[str]]:
    """Host names and IP addresses this server is reached by: loopback, the machine's names, its addresses
    (including the one other PCs of the network use), --host and --allowed-host."""
    names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    ips = {"127.0.0.1", "::1"}
    for value in [settings.host, *settings.allowed_hosts]:
        name = host_name(value)
        if name in ("0.0.0.0", "::", "", "*"):
            continue
        (ips if is_ip(name) else names).add(name)
    for name in list(names):
        try:
            ips |= {
                info[4][0] for info in socket.getaddrinfo(name, None) if info[0] in (socket.AF_INET, socket.AF_INET6)
            }
        except OSError:
            pass
    ips |= _outbound_addresses()
    ips = {ip.split("%", 1)[0] for ip in ips}
    return sorted(n for n in names if n and not is_ip(n)), sorted(ips)


def _outbound_addresses() -> set[str]:
    """The address the machine uses towards the network (a UDP socket only picks a route: nothing is sent)."""
    found = set()
    for family, target in ((socket.AF_INET, "10.255.255.255"), (socket.AF_INET6, "fd00::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                found.add(s.getsockname()[0])
        except OSError:
            pass
    return found


def ensure_self_signed(cert: Path, key: Path, names: list[str], ips: list[str]) -> None:
    """Keep the certificate made before while it covers every name and address now (browsers remember the
    exception made for it); make a new one otherwise."""
    if cert.is_file() and key.is_file():
        covered = certificate_names(cert)
        if covered is not None and set(names) | set(ips) <= covered:
            return
        log.info("the self-signed certificate %s does not cover this machine's names and addresses: renewing", cert)
    make_self_signed(cert, key, names, ips)
    log.info("made a self-signed certificate for %s: %s", ", ".join(names + ips), cert)


def certificate_names(cert: Path) -> set[str] | None:
    """The DNS names and IP addresses a certificate is for; None if it cannot be read or has expired."""
    from cryptography import x509

    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    if c.not_valid_after_utc < dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1):
        return None
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def make_self_signed(cert: Path, key: Path, names: list[str], ips: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "funasr-webui"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "funasr-webui (self-signed)")])  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(private, hashes.SHA256())
    )
    key.parent.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key is readable by this user only
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
