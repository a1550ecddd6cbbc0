"""The installation's secret for the keyed patient hash (issue 12, point 12).

``events.patient_key`` lets the store find a patient's earlier kartlegginger without another copy of the
fødselsnummer. An unsalted SHA-256 of an 11-digit number with a known structure is reversed by trying every
valid number (a few hundred million: minutes on a laptop), so the key is an HMAC with a secret that lives
*outside* the store (``GATEWAY_SECRET_FILE``): a stolen database or backup alone does not reveal who is in it.

The file is made at first start (32 random bytes, hex, mode 0600, created exclusively so replicas starting
together end with one secret). The store keeps only a fingerprint of it: a gateway started with another
secret (a lost file, a replica without a copy) refuses to start instead of silently losing every patient's
history.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from gateway.errors import ConfigurationError

SECRET_BYTES = 32


def _parse(text: str, path: Path) -> bytes:
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigurationError(f"{path} is not a gateway secret (expected {SECRET_BYTES * 2} hex digits)") from None
    if len(secret) < SECRET_BYTES:
        raise ConfigurationError(f"{path} is too short for a gateway secret (expected {SECRET_BYTES * 2} hex digits)")
    return secret


def read_secret(path: Path) -> bytes | None:
    """The secret, or None when the file does not exist yet (read-only tools never create it)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                                 f"make it readable by the gateway's user only: chmod 600 {path}")
    return _parse(path.read_text(encoding="ascii"), path)


def load_or_create_secret(path: Path) -> bytes:
    """The installation's secret, made (0600, exclusively) when the file does not exist."""
    found = read_secret(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica made it a moment ago
        again = read_secret(path)
        assert again is not None
        return again
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(SECRET_BYTES) + "\n")
        f.flush()
        os.fsync(f.fileno())
    made = read_secret(path)
    assert made is not None
    return made


def keyed_hash(secret: bytes, fnr: str) -> str:
    return hmac.new(secret, b"pakkeforlop-hjem/patient/" + fnr.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def fingerprint(secret: bytes) -> str:
    """What the store keeps to recognise its secret; reveals nothing of it."""
    return hmac.new(secret, b"pakkeforlop-hjem/store-fingerprint/1", hashlib.sha256).hexdigest()[:32]
