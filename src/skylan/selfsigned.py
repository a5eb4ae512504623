"""Self-signed TLS certificates for skylan's own servers (the controller,
a relay's TLS fallback): made on first start, kept in the server's
directory, the key readable by its owner only. Clients do not trust them
by name: they pin their fingerprint (the controller's) or authenticate the
peer inside the stream (a relay's)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from skylan.privatefile import write_private


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint_of_pem(self.cert.read_bytes())


def fingerprint_of_pem(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))


def fingerprint_of_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def ensure_certificate(
    data_dir: Path, extra_names: list[str] | None = None, *, name: str = "skylan controller"
) -> TlsFiles:
    """Return the certificate in ``data_dir``, creating a self-signed one if absent."""
    files = TlsFiles(data_dir / "tls.crt", data_dir / "tls.key")
    if files.cert.exists() and files.key.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    for extra in extra_names or []:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(extra)))
        except ValueError:
            names.append(x509.DNSName(extra))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
