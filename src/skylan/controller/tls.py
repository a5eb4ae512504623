"""The controller's TLS certificate: self-signed on first start unless given.

Agents pin it by the SHA-256 fingerprint embedded in join tokens (like
``kubeadm join --discovery-token-ca-cert-hash``), so a self-signed
certificate is as safe as one from a CA for the agent channel.
"""

from __future__ import annotations

from skylan.selfsigned import TlsFiles, ensure_certificate, fingerprint_of_der, fingerprint_of_pem

__all__ = ["TlsFiles", "ensure_certificate", "fingerprint_of_der", "fingerprint_of_pem"]
