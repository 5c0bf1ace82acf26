"""Ed25519 manifest signing: the key, the signed envelope and its verification."""

import base64
import hashlib
import json
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ENV_KEY = "MMOSHARD_RELEASE_SIGNING_KEY"
DEV_KEY_FILE = "release-signing.pem"
ALGORITHM = "Ed25519"


class SigningKeyError(Exception):
    """The signing key is missing, unreadable or not an Ed25519 key."""


class BadManifest(Exception):
    """A manifest envelope that is malformed or whose signature does not verify."""


def _parsePrivate(data, where):
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            raw = base64.b64decode(data, validate=True)
            key = Ed25519PrivateKey.from_private_bytes(raw)
    except Exception as e:
        raise SigningKeyError(f"{where}: not an Ed25519 private key: {e}")
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: not an Ed25519 private key")
    return key


def generateKeyFile(path):
    """Write a new Ed25519 private key as PKCS#8 PEM to C{path} (mode 0600)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def loadSigningKey(path=None, env=None, devPath=None):
    """
    The release signing key, from the first of: the PEM file at C{path}
    (config C{version.signing_key}); the C{MMOSHARD_RELEASE_SIGNING_KEY}
    environment variable (PEM text or base64 of the 32-byte seed); a
    development key at C{devPath}, generated on first use.

    @raise SigningKeyError: when the key cannot be read, or none is
        configured and C{devPath} is None (a shared deployment).
    """
    env = os.environ if env is None else env
    if path:
        try:
            with open(path, "rb") as f:
                return _parsePrivate(f.read(), path)
        except OSError as e:
            raise SigningKeyError(f"{path}: cannot read the signing key: {e.strerror}")
    if env.get(ENV_KEY):
        return _parsePrivate(env[ENV_KEY].encode(), ENV_KEY)
    if devPath is None:
        raise SigningKeyError(
            "no release signing key: set version.signing_key (a PEM file) or "
            f"{ENV_KEY}; a development key is generated only on the embedded "
            "default (memory:// volatile store)"
        )
    if not os.path.exists(devPath):
        os.makedirs(os.path.dirname(devPath) or ".", exist_ok=True)
        try:
            return generateKeyFile(devPath)
        except FileExistsError:
            pass
    with open(devPath, "rb") as f:
        return _parsePrivate(f.read(), devPath)


def publicKeyBytes(key):
    """@return: the 32 raw bytes of the public half of C{key} (private or public)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def publicKeyPEM(key):
    """@return: the public key as SubjectPublicKeyInfo PEM text."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def keyId(key):
    """@return: the key's id: the first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(publicKeyBytes(key)).hexdigest()[:16]


def canonicalJSON(data):
    """@return: C{data} as UTF-8 JSON with sorted keys and no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signManifest(key, manifest):
    """
    @return: the signed envelope (bytes) of C{manifest}: JSON
        C{{"alg", "key_id", "payload", "signature"}} where C{payload} is the
        base64 of the canonical manifest JSON and C{signature} the base64
        Ed25519 signature of exactly those payload bytes.
    """
    payload = canonicalJSON(manifest)
    envelope = {
        "alg": ALGORITHM,
        "key_id": keyId(key),
        "payload": base64.b64encode(payload).decode(),
        "signature": base64.b64encode(key.sign(payload)).decode(),
    }
    return canonicalJSON(envelope)


def envelopeETag(envelope):
    """@return: the strong ETag (quoted) of a signed envelope."""
    return '"' + hashlib.sha256(envelope).hexdigest()[:32] + '"'


def loadPublicKey(data):
    """@return: an Ed25519 public key from PEM or base64 of the 32 raw bytes."""
    data = data.strip() if isinstance(data, bytes) else data.strip().encode()
    if data.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
    else:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verifyManifest(publicKey, envelope, platform=None, build=None):
    """
    Check a signed envelope with C{publicKey} and return the manifest it carries.

    @param platform: when given, the manifest must be for this platform.
    @param build: when given, the manifest must be for this build (text).
    @raise BadManifest: when the envelope is malformed, the signature does
        not verify, or the manifest is for another platform or build.
    """
    try:
        data = json.loads(envelope)
        if data.get("alg") != ALGORITHM:
            raise BadManifest(f"unsupported algorithm {data.get('alg')!r}")
        payload = base64.b64decode(data["payload"], validate=True)
        signature = base64.b64decode(data["signature"], validate=True)
    except BadManifest:
        raise
    except Exception as e:
        raise BadManifest(f"malformed manifest envelope: {e}")
    try:
        publicKey.verify(signature, payload)
    except InvalidSignature:
        raise BadManifest("manifest signature does not verify")
    manifest = json.loads(payload)
    if platform is not None and manifest.get("platform") != platform:
        raise BadManifest(f"manifest is for platform {manifest.get('platform')!r}")
    if build is not None and manifest.get("build") != build:
        raise BadManifest(f"manifest is for build {manifest.get('build')!r}")
    return manifest
