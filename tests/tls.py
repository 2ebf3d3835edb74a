"""A throwaway certificate authority and a private redis-server that accepts only TLS, for tests.

The certificates come from the `openssl` command line, and the server from `redis-server` on
PATH. `start_tls_server` raises `TLSUnavailableError` when either tool is missing or the server
cannot serve TLS, so that tests can skip with its message as the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from oxanus_sync.devserver import DevServerError, RedisProcess

OPENSSL_TIMEOUT_S = 30.0
"""Maximum time in seconds for one `openssl` command to create a key or certificate."""

CERTIFICATE_DAYS = 2
"""Validity of the certificates in days: they live only as long as a test session."""

# Extensions of the server certificate. The IP address lets clients that check the host name
# connect to 127.0.0.1, as redis-py 8 does by default (ssl_check_hostname=True).
_SERVER_EXTENSIONS = """\
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


class TLSUnavailableError(Exception):
    """`openssl` or `redis-server` is missing, or redis-server cannot serve TLS."""


@dataclass(frozen=True)
class Certificates:
    """PEM files of a test certificate authority and of a server certificate it signed."""

    ca_path: Path
    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class TLSServer:
    """A running redis-server that listens only on a TLS port of 127.0.0.1.

    `url` does not name the CA file, so clients must pass `ssl_ca_certs`. `url_with_ca` names
    it in the `ssl_ca_certs` query argument.
    """

    process: RedisProcess
    port: int
    certificates: Certificates
    url: str
    url_with_ca: str

    def stop(self) -> None:
        self.process.stop()


def make_certificates(directory: Path) -> Certificates:
    """Create a CA and a server certificate for 127.0.0.1 in `directory` with `openssl`.

    Raises TLSUnavailableError when `openssl` is not on PATH.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSUnavailableError("the openssl command is not on PATH")

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ca_cert = directory / "ca.pem"
    server_key = directory / "server.key"
    server_request = directory / "server.csr"
    server_cert = directory / "server.pem"
    extensions = directory / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS)

    # P-256 keys, because generating them takes milliseconds where RSA keys take up to seconds.
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_openssl(
        [
            *[openssl, "req", "-x509", *new_key, "-keyout", str(ca_key), "-out", str(ca_cert)],
            *["-days", str(CERTIFICATE_DAYS), "-subj", "/CN=oxanus_sync test CA"],
        ]
    )
    _run_openssl(
        [
            *[openssl, "req", *new_key, "-keyout", str(server_key), "-out", str(server_request)],
            *["-subj", "/CN=127.0.0.1"],
        ]
    )
    _run_openssl(
        [
            *[openssl, "x509", "-req", "-in", str(server_request), "-CA", str(ca_cert)],
            *["-CAkey", str(ca_key), "-CAcreateserial", "-out", str(server_cert)],
            *["-days", str(CERTIFICATE_DAYS), "-extfile", str(extensions)],
        ]
    )
    return Certificates(ca_path=ca_cert, cert_path=server_cert, key_path=server_key)


def start_tls_server(directory: Path) -> TLSServer:
    """Create certificates in `directory` and start a redis-server that accepts only TLS.

    The server has no plain TCP port, does not ask clients for certificates, and keeps no
    data on disk. It replies to PING over TLS before this returns, or this raises.

    Raises TLSUnavailableError when `openssl` or `redis-server` is not on PATH, or when the
    server fails to start and its log mentions TLS.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise TLSUnavailableError("redis-server is not on PATH")
    certificates = make_certificates(directory)

    port = _free_port()
    command = [
        binary,
        *["--port", "0"],
        *["--tls-port", str(port)],
        *["--tls-cert-file", str(certificates.cert_path)],
        *["--tls-key-file", str(certificates.key_path)],
        *["--tls-ca-cert-file", str(certificates.ca_path)],
        *["--tls-auth-clients", "no"],
        *["--bind", "127.0.0.1"],
        *["--save", ""],
        *["--appendonly", "no"],
        *["--dir", str(directory)],
        *["--logfile", str(directory / "redis.log")],
    ]
    url = f"rediss://127.0.0.1:{port}/0"
    url_with_ca = f"{url}?ssl_ca_certs={quote(str(certificates.ca_path), safe='/')}"
    # RedisProcess waits for PING at its URL, so it gets the one that trusts the test CA.
    process = RedisProcess(command, url_with_ca, directory, port=port)
    server = TLSServer(process, port, certificates, url, url_with_ca)

    try:
        process.start()
    except DevServerError as error:
        # NOTE: the only sign of a redis-server built without TLS support is a log that
        # mentions TLS, so a bad certificate also makes the tests skip.
        if "tls" in str(error).lower():
            raise TLSUnavailableError(f"redis-server failed to serve TLS: {error}") from error
        raise
    return server


def _run_openssl(command: list[str]) -> None:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=OPENSSL_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with exit status {result.returncode}:\n{result.stderr}"
        )


def _free_port() -> int:
    # NOTE: another process can take the port before redis-server binds it. The server then
    # fails to start, and the error quotes "Address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
