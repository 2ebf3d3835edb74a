"""HMAC signatures of payloads, so that a Runner runs only jobs enqueued by holders of the key.

A signature is `v1:<key id>:<hex HMAC-SHA256 of the payload>`, where the key id is the first 8
hex digits of the key's SHA-256. Payloads are signed with the first key of the list and
verified with any key of it, so a key is rotated in three steps: add the new key first to every
Client and Runner, wait until no job signed with the old key remains, then remove the old key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from oxanus_sync.errors import ConfigurationError

MIN_KEY_BYTES = 16
_VERSION = "v1"


class Signer:
    """Signs payloads with the first key and verifies them with any of the keys."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes) or not keys:
            raise ConfigurationError(
                "signing_keys must be a non-empty list of keys, newest first, "
                "for example signing_keys=[os.environ['OXANUS_SIGNING_KEY']]"
            )
        self._keys: dict[str, bytes] = {}
        for key in keys:
            secret = key.encode() if isinstance(key, str) else key
            if len(secret) < MIN_KEY_BYTES:
                raise ConfigurationError(
                    f"a signing key is {len(secret)} bytes long; use at least {MIN_KEY_BYTES} "
                    "random bytes, for example secrets.token_hex(32)"
                )
            self._keys.setdefault(_key_id(secret), secret)
        self._signing_id = _key_id(keys[0].encode() if isinstance(keys[0], str) else keys[0])

    def sign(self, payload: bytes) -> bytes:
        """Return the signature of `payload` made with the first key."""
        digest = hmac.new(self._keys[self._signing_id], payload, hashlib.sha256).hexdigest()
        return f"{_VERSION}:{self._signing_id}:{digest}".encode()

    def check(self, payload: bytes, signature: bytes | None) -> str | None:
        """Return None when `signature` is valid for `payload`, else the reason it is not."""
        if not signature:
            return "the payload is not signed, and this Runner accepts only signed payloads"

        version, _, rest = signature.decode("ascii", "replace").partition(":")
        key_id, _, digest = rest.partition(":")
        if version != _VERSION:
            return f"the signature format {version!r} is not supported"
        secret = self._keys.get(key_id)
        if secret is None:
            return f"the payload was signed with key {key_id!r}, which this Runner does not have"

        expected = hmac.new(secret, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return "the signature does not match the payload: it was altered or forged"
        return None


def _key_id(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:8]
