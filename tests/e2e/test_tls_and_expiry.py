"""HTTPS with --tls-cert/--tls-key, and tokens that expire."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import NewSite, RunningSite, SiteProcess


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path


def test_serve_over_tls(new_site: NewSite, tmp_path: Path) -> None:
    site_dir, token, port = new_site.site_dir, new_site.token, new_site.port
    cert, key = self_signed(tmp_path)
    proc = SiteProcess(site_dir, port, "--tls-cert", str(cert), "--tls-key", str(key),
                       scheme="https")
    proc.start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=proc.url, verify=ctx,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/api/v1/whoami").json()["user"] == "admin"
        plain = f"http://127.0.0.1:{port}"
        try:
            httpx.get(f"{plain}/healthz", timeout=5)
            raise AssertionError("plain HTTP must not be served on a TLS port")
        except httpx.HTTPError:
            pass
    finally:
        proc.stop()


def test_expired_token_is_refused(running_site: RunningSite) -> None:
    assert running_site.site is not None
    with running_site.client() as c:
        made = c.post("/api/v1/tokens", json={"user": "admin", "name": "short",
                                              "expires_in_days": 1}).json()
    with running_site.client(made["token"]) as c:
        assert c.get("/api/v1/whoami").status_code == 200
        real_clock = running_site.site.clock
        running_site.site.clock = lambda: real_clock() + 2 * 86400
        try:
            r = c.get("/api/v1/whoami")
        finally:
            running_site.site.clock = real_clock
        assert r.status_code == 401 and "expired" in r.json()["message"]
