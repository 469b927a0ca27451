"""Keys AWS services own ("AWS owned keys"): generated in the HSM, used by our services only.

CloudTrail signs its digest files with a key of its own and publishes only the public half
(ListPublicKeys); the account never sees that key in ListKeys, cannot use, disable or delete
it, and its use is not in the account's event history. A :class:`ServiceKeyring` holds such
keys by name (``cloudtrail-digest``), creates each on first use inside the token
(non-extractable, like every KMS key) and signs or encrypts with it there (S3 wraps its
SSE-S3 key with ``s3-sse-s3``). Records live in the KMS
store's ``service_keys`` table; they are not :class:`services.kms.domain.keys.Key` objects,
so no customer operation can reach them.

Transport: services/kms/service_keys_api.py (``strongroom.kms.v1.ServiceKeys``).
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from common.logging import get_logger
from services.kms.domain import errors
from services.kms.domain.specs import SPECS, KeyUsage, Kind, signing_input
from services.kms.hsm.port import Hsm, HsmAuthenticationError
from services.kms.store.sqlite import SqliteStore

log = get_logger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_OFFERED = {(Kind.SYMMETRIC, KeyUsage.ENCRYPT_DECRYPT), (Kind.RSA, KeyUsage.SIGN_VERIFY),
            (Kind.EC, KeyUsage.SIGN_VERIFY)}
_NONCE = 12
_TAG = 16
_MAX_PLAINTEXT = 4096


@dataclass(frozen=True, slots=True)
class ServiceKey:
    name: str
    key_id: str
    spec: str
    usage: str
    hsm_label: str
    public_key: bytes  # DER SubjectPublicKeyInfo
    created: str

    def to_doc(self) -> dict[str, str]:
        return {"name": self.name, "key_id": self.key_id, "spec": self.spec, "usage": self.usage,
                "hsm_label": self.hsm_label, "public_key": base64.b64encode(self.public_key).decode(),
                "created": self.created}

    @classmethod
    def from_doc(cls, doc: dict[str, str]) -> ServiceKey:
        return cls(doc["name"], doc["key_id"], doc["spec"], doc["usage"], doc["hsm_label"],
                   base64.b64decode(doc["public_key"]), doc["created"])


class ServiceKeyring:
    def __init__(self, store: SqliteStore, hsm: Hsm) -> None:
        self._store = store
        self._hsm = hsm
        self._keys: dict[str, ServiceKey] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        self._keys = {k.name: k for k in map(ServiceKey.from_doc, await self._store.service_keys())}

    async def get(self, name: str, spec: str, usage: str) -> ServiceKey:
        """The key named ``name``; created with ``spec`` / ``usage`` if there is none yet."""
        if not _NAME.match(name or ""):
            raise errors.ValidationException(
                "Service key names are 1 to 63 lowercase letters, digits, '.' or '-'.")
        key = self._keys.get(name)
        if key is None:
            async with self._lock:
                key = self._keys.get(name) or await self._create(name, spec, usage)
        if (spec and spec != key.spec) or (usage and usage != key.usage):
            raise errors.ConflictException(f"Service key {name} is a {key.spec} {key.usage} key.")
        return key

    async def _create(self, name: str, spec: str, usage: str) -> ServiceKey:
        info = SPECS.get(spec)
        if info is None or (info.kind, usage) not in _OFFERED:
            raise errors.ValidationException(
                "Service keys are SYMMETRIC_DEFAULT ENCRYPT_DECRYPT, or RSA / ECC SIGN_VERIFY keys; "
                f"{spec or 'no key spec'} / {usage or 'no key usage'} is not offered.")
        key_id = str(uuid.uuid4())
        label = f"service/{name}/{key_id}"
        public = await self._hsm.generate(label, spec, usage) or b""  # asymmetric: the public half
        key = ServiceKey(name, key_id, spec, usage, label, public,
                         datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            async with self._store.transaction() as tx:
                await tx.put_service_key(name, key.to_doc())
        except BaseException:
            await self._hsm.destroy(label)
            raise
        self._keys[name] = key
        log.info("service_key_created", name=name, key_spec=spec)
        return key

    def _existing(self, name: str, usage: str) -> ServiceKey:
        key = self._keys.get(name)
        if key is None:
            raise errors.NotFoundException(f"Service key {name} does not exist.")
        if key.usage != usage:
            raise errors.InvalidKeyUsageException(f"Service key {name} is a {key.usage} key.")
        return key

    async def sign(self, name: str, algorithm: str, message: bytes) -> bytes:
        key = self._existing(name, KeyUsage.SIGN_VERIFY)
        data = signing_input(key.spec, algorithm, "RAW", message)
        return await self._hsm.sign(key.hsm_label, key.spec, algorithm, data)

    async def encrypt(self, name: str, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM in the HSM: nonce || ciphertext || tag."""
        key = self._existing(name, KeyUsage.ENCRYPT_DECRYPT)
        if not 1 <= len(plaintext) <= _MAX_PLAINTEXT:
            raise errors.ValidationException(f"Plaintext must be 1 to {_MAX_PLAINTEXT} bytes.")
        nonce = await self._hsm.random(_NONCE)
        return nonce + await self._hsm.aes_gcm_encrypt(key.hsm_label, nonce, plaintext, aad)

    async def decrypt(self, name: str, ciphertext: bytes, aad: bytes) -> bytes:
        key = self._existing(name, KeyUsage.ENCRYPT_DECRYPT)
        if len(ciphertext) <= _NONCE + _TAG:
            raise errors.InvalidCiphertextException("")
        try:
            return await self._hsm.aes_gcm_decrypt(key.hsm_label, ciphertext[:_NONCE], ciphertext[_NONCE:], aad)
        except HsmAuthenticationError:
            raise errors.InvalidCiphertextException("") from None
