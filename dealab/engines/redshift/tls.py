"""TLS for the Postgres-wire endpoints: a dealab certificate authority and a server certificate it signs.

redshift_connector asks for TLS by default and verifies the server against the CAs OpenSSL trusts (its own
bundle of Amazon's CAs plus the default verify paths). So the stack makes one CA per state folder, signs a
certificate for 127.0.0.1 and localhost with it, and writes a bundle of the system's CAs plus this one;
`dealab env` exports it as SSL_CERT_FILE, which OpenSSL reads in place of its default bundle, so every other
HTTPS client of the shell keeps trusting what it trusted. psql and psycopg take `sslrootcert=<folder>/ca.pem`.
The keys never leave the state folder (mode 0600)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dealab.wire.store import write_atomic

CA_FILE, CERT_FILE, KEY_FILE, BUNDLE_FILE = "ca.pem", "server.pem", "server-key.pem", "ca-bundle.pem"
VALID_DAYS = 3650
SERVER_NAMES = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dealab"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write_secret(path: Path, data: bytes) -> None:
    write_atomic(path, data)
    os.chmod(path, 0o600)


def ensure_certificates(folder: Path) -> Path:
    """The folder's CA, server certificate and bundle, made on first need; returns the folder."""
    if all((folder / name).exists() for name in (CA_FILE, CERT_FILE, KEY_FILE, BUNDLE_FILE)):
        return folder
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("dealab local CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
              .add_extension(x509.SubjectAlternativeName(SERVER_NAMES), critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    _write_secret(folder / KEY_FILE, _pem_key(server_key))
    write_atomic(folder / CERT_FILE, server.public_bytes(serialization.Encoding.PEM) + ca_pem)
    write_atomic(folder / BUNDLE_FILE, Path(certifi.where()).read_bytes() + b"\n" + ca_pem)
    write_atomic(folder / CA_FILE, ca_pem)  # last: its presence says the set is whole
    return folder


def server_context(folder: Path) -> ssl.SSLContext:
    ensure_certificates(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(folder / CERT_FILE, folder / KEY_FILE)
    return context
