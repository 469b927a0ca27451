"""PKCS#11 adapter (python-pkcs11): owns the module, its sessions and its threads.

Threading model (why: python-pkcs11 initialises the module with ``C_Initialize(NULL)``, i.e.
without OS locking, and SoftHSM2 then crashes when two threads call it):

* After python-pkcs11 loads the module we finalise it and initialise it again ourselves
  through ctypes with ``CKF_OS_LOCKING_OK`` (before any session exists), so the module
  protects its own state and several threads may call it, each on its own session.
* Cheap symmetric operations (AES-GCM of <= 4 KiB, HMAC, random: tens of microseconds) run
  inline on the event-loop thread, on a session owned by that thread: a thread hop would
  cost more than the operation.
* Everything slow (key generation, RSA/EC private-key operations, ECDH, unwrapping,
  destruction) runs on a small pool of worker threads, each with its own session, so an
  RSA-4096 signature never holds up the event loop or the cheap operations.

Object handles are cached per session by (label, class); destroying a label drops it from
every cache. Keys are created as token objects with CKA_SENSITIVE=true and
CKA_EXTRACTABLE=false; nothing here ever reads a secret value back. Secret and private keys
are used through a session-object copy (C_CopyObject with CKA_TOKEN=false, checked to be
still sensitive and non-extractable): SoftHSM2's file store re-reads a token object's file
under a lock on every use, which was half the cost of an AES-GCM call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pkcs11
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, PKCS11Error
from pkcs11.mechanisms import KDF, GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from services.kms.domain.specs import SPECS, Kind, KeyUsage
from services.kms.hsm.codec import DIGEST_INFO, ec_spki, ecdsa_der, oaep_decode, rsa_spki
from services.kms.hsm.port import HsmAuthenticationError, HsmError

T = TypeVar("T")

CKF_OS_LOCKING_OK = 0x2
CKR_OK = 0
CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191

_HASH_MECH = {"sha1": Mechanism.SHA_1, "sha256": Mechanism.SHA256, "sha384": Mechanism.SHA384,
              "sha512": Mechanism.SHA512}
_MGF = {"sha1": MGF.SHA1, "sha256": MGF.SHA256, "sha384": MGF.SHA384, "sha512": MGF.SHA512}
_HMAC_MECH = {"sha224": Mechanism.SHA224_HMAC, "sha256": Mechanism.SHA256_HMAC,
              "sha384": Mechanism.SHA384_HMAC, "sha512": Mechanism.SHA512_HMAC}
_DIGEST_SIZE = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
_EC_FIELD_BYTES = {"secp256r1": 32, "secp384r1": 48, "secp521r1": 66, "secp256k1": 32}
_ED25519_OID = "1.3.101.112"


class _InitArgs(ctypes.Structure):
    _fields_ = [("CreateMutex", ctypes.c_void_p), ("DestroyMutex", ctypes.c_void_p),
                ("LockMutex", ctypes.c_void_p), ("UnlockMutex", ctypes.c_void_p),
                ("flags", ctypes.c_ulong), ("pReserved", ctypes.c_void_p)]


def reinitialise_with_os_locking(module_path: str) -> None:
    """Finalize the module python-pkcs11 initialised and initialise it with OS locking."""
    lib = ctypes.CDLL(module_path)
    lib.C_Finalize.argtypes = [ctypes.c_void_p]
    lib.C_Initialize.argtypes = [ctypes.c_void_p]
    lib.C_Finalize(None)
    args = _InitArgs(None, None, None, None, CKF_OS_LOCKING_OK, None)
    rv = lib.C_Initialize(ctypes.byref(args))
    if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
        raise HsmError(f"C_Initialize with CKF_OS_LOCKING_OK failed: 0x{rv:x}")


class _SessionState:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.objects: dict[tuple[str, ObjectClass], Any] = {}


_SECRET_TEMPLATE = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False, Attribute.WRAP: False, Attribute.UNWRAP: False}


class Pkcs11Hsm:
    def __init__(self, module: str, token_label: str, pin: str, workers: int = 2) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._workers = workers
        self._lock = threading.Lock()
        self._states: list[_SessionState] = []
        self._local = threading.local()
        self._inline: _SessionState | None = None
        self._inline_thread: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._token: Any = None

    # ---- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Load and initialise the module, log in, open the inline session (this thread)."""
        lib = pkcs11.lib(self.module)
        reinitialise_with_os_locking(self.module)
        try:
            self._token = lib.get_token(token_label=self.token_label)
        except (NoSuchKey, PKCS11Error) as exc:
            raise HsmError(f"token {self.token_label!r} not found") from exc
        session = self._token.open(rw=True, user_pin=self._pin)
        self._inline = _SessionState(session)
        self._states.append(self._inline)
        self._inline_thread = threading.get_ident()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="pkcs11")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for state in self._states:
                try:
                    state.session.close()
                except PKCS11Error:
                    pass
            self._states.clear()

    def _state(self) -> _SessionState:
        if self._inline is not None and threading.get_ident() == self._inline_thread:
            return self._inline
        state: _SessionState | None = getattr(self._local, "state", None)
        if state is None:
            state = _SessionState(self._token.open(rw=True))
            self._local.state = state
            with self._lock:
                self._states.append(state)
        return state

    async def _slow(self, fn: Callable[[_SessionState], T]) -> T:
        if self._pool is None:
            raise HsmError("HSM closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._state()))

    def _inline_or_slow(self, fn: Callable[[_SessionState], T]) -> T | None:
        if threading.get_ident() == self._inline_thread and self._inline is not None:
            return fn(self._inline)
        return None

    @staticmethod
    def _find(state: _SessionState, label: str, cls: ObjectClass) -> Any:
        """The handle to use for ``label`` on this session (cached).

        Secret and private keys are used through a session-object copy of the token object
        (same attributes: sensitive, non-extractable; only CKA_TOKEN false). SoftHSM2's file
        store re-checks a token object's file on every use (18 syscalls per AES-GCM call,
        half of its cost); a session object lives in the module's memory. The copy dies with
        the session; ``destroy`` removes it with the token object (both carry the label).
        """
        obj = state.objects.get((label, cls))
        if obj is None:
            try:
                found = list(state.session.get_objects(
                    {Attribute.CLASS: cls, Attribute.LABEL: label, Attribute.TOKEN: True}))
            except PKCS11Error as exc:
                raise HsmError("key material not found in the token") from exc
            if len(found) != 1:
                raise HsmError("key material not found in the token" if not found
                               else "key material label is not unique in the token")
            obj = found[0]
            if cls in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY):
                obj = Pkcs11Hsm._session_copy(obj)
            state.objects[(label, cls)] = obj
        return obj

    @staticmethod
    def _session_copy(obj: Any) -> Any:
        """A session-object copy of token object ``obj`` that is still sensitive and not
        extractable (C_CopyObject keeps the attributes; SoftHSM2 refuses to restate them in
        the template). Falls back to ``obj`` when the token will not copy it."""
        try:
            copy = obj.copy({Attribute.TOKEN: False})
        except PKCS11Error:
            return obj
        try:
            safe = copy[Attribute.SENSITIVE] is True and copy[Attribute.EXTRACTABLE] is False
        except PKCS11Error:
            safe = False
        if not safe:
            with contextlib.suppress(PKCS11Error):
                copy.destroy()
            return obj
        return copy

    # ---- key management ---------------------------------------------------------------

    async def generate(self, label: str, spec: str, usage: str) -> bytes | None:
        info = SPECS[spec]

        def run(state: _SessionState) -> bytes | None:
            s = state.session
            ident = hashlib.sha256(label.encode()).digest()[:16]
            try:
                if info.kind is Kind.SYMMETRIC:
                    s.generate_key(KeyType.AES, 256, label=label, id=ident, store=True, template={
                        **_SECRET_TEMPLATE, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                        Attribute.SIGN: False, Attribute.VERIFY: False})
                    return None
                if info.kind is Kind.HMAC:
                    s.generate_key(KeyType.GENERIC_SECRET, info.bits, label=label, id=ident, store=True,
                                   template={**_SECRET_TEMPLATE, Attribute.SIGN: True, Attribute.VERIFY: True,
                                             Attribute.ENCRYPT: False, Attribute.DECRYPT: False})
                    return None
                encrypt = usage == KeyUsage.ENCRYPT_DECRYPT
                sign = usage == KeyUsage.SIGN_VERIFY
                derive = usage == KeyUsage.KEY_AGREEMENT
                priv_t = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                          Attribute.EXTRACTABLE: False, Attribute.SIGN: sign, Attribute.DECRYPT: encrypt,
                          Attribute.DERIVE: derive, Attribute.UNWRAP: False}
                pub_t = {Attribute.TOKEN: True, Attribute.VERIFY: sign, Attribute.ENCRYPT: encrypt,
                         Attribute.WRAP: False, Attribute.DERIVE: False}
                if info.kind is Kind.RSA:
                    pub, _ = s.generate_keypair(KeyType.RSA, info.bits, label=label, id=ident, store=True,
                                                public_template=pub_t, private_template=priv_t)
                    return rsa_spki(pub[Attribute.MODULUS], pub[Attribute.PUBLIC_EXPONENT])
                if info.kind is Kind.EC:
                    params = s.create_domain_parameters(KeyType.EC, {
                        Attribute.EC_PARAMS: encode_named_curve_parameters(info.curve)}, local=True)
                    pub, _ = params.generate_keypair(label=label, id=ident, store=True,
                                                     public_template=pub_t, private_template=priv_t)
                    return ec_spki(info.curve or "", pub[Attribute.EC_POINT])
                if info.kind is Kind.EDWARDS:
                    params = s.create_domain_parameters(KeyType.EC_EDWARDS, {
                        Attribute.EC_PARAMS: encode_named_curve_parameters(_ED25519_OID)}, local=True)
                    pub, _ = params.generate_keypair(label=label, id=ident, store=True,
                                                     mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                                                     public_template=pub_t, private_template=priv_t)
                    return ec_spki("ed25519", pub[Attribute.EC_POINT])
            except PKCS11Error as exc:
                raise HsmError(f"key generation failed: {type(exc).__name__}") from exc
            raise HsmError(f"unsupported key spec {spec}")

        return await self._slow(run)

    async def destroy(self, label: str) -> None:
        def run(state: _SessionState) -> None:
            for obj in list(state.session.get_objects({Attribute.LABEL: label})):
                try:
                    obj.destroy()
                except PKCS11Error:
                    pass
            with self._lock:
                for st in self._states:
                    for cls in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                        st.objects.pop((label, cls), None)

        await self._slow(run)

    # ---- cheap operations (inline on the loop thread) ---------------------------------

    async def random(self, n: int) -> bytes:
        def run(state: _SessionState) -> bytes:
            return bytes(state.session.generate_random(n * 8))

        out = self._inline_or_slow(run)
        return out if out is not None else await self._slow(run)

    async def aes_gcm_encrypt(self, label: str, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.SECRET_KEY)
            try:
                return bytes(key.encrypt(plaintext, mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(nonce, aad, 128)))
            except PKCS11Error as exc:
                raise HsmError(f"encrypt failed: {type(exc).__name__}") from exc

        out = self._inline_or_slow(run)
        return out if out is not None else await self._slow(run)

    async def aes_gcm_decrypt(self, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.SECRET_KEY)
            try:
                return bytes(key.decrypt(data, mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(nonce, aad, 128)))
            except PKCS11Error as exc:
                raise HsmAuthenticationError("decryption failed") from exc

        out = self._inline_or_slow(run)
        return out if out is not None else await self._slow(run)

    async def hmac(self, label: str, hash_name: str, message: bytes) -> bytes:
        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.SECRET_KEY)
            try:
                return bytes(key.sign(message, mechanism=_HMAC_MECH[hash_name]))
            except PKCS11Error as exc:
                raise HsmError(f"mac failed: {type(exc).__name__}") from exc

        out = self._inline_or_slow(run)
        return out if out is not None else await self._slow(run)

    # ---- private-key operations (worker threads) ---------------------------------------

    async def sign(self, label: str, spec: str, algorithm: str, data: bytes) -> bytes:
        info = SPECS[spec]

        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.PRIVATE_KEY)
            try:
                if info.kind is Kind.EDWARDS:
                    return bytes(key.sign(data, mechanism=Mechanism.EDDSA))
                hash_name = "sha" + algorithm.rsplit("_", 1)[1]
                if algorithm.startswith("RSASSA_PKCS1"):
                    return bytes(key.sign(DIGEST_INFO[hash_name] + data, mechanism=Mechanism.RSA_PKCS))
                if algorithm.startswith("RSASSA_PSS"):
                    return bytes(key.sign(data, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=(
                        _HASH_MECH[hash_name], _MGF[hash_name], _DIGEST_SIZE[hash_name])))
                return ecdsa_der(bytes(key.sign(data, mechanism=Mechanism.ECDSA)))
            except PKCS11Error as exc:
                raise HsmError(f"sign failed: {type(exc).__name__}") from exc

        return await self._slow(run)

    async def rsa_decrypt(self, label: str, algorithm: str, ciphertext: bytes) -> bytes:
        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.PRIVATE_KEY)
            try:
                if algorithm == "RSAES_OAEP_SHA_1":
                    return bytes(key.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS_OAEP,
                                             mechanism_param=(Mechanism.SHA_1, MGF.SHA1, None)))
                k = len(ciphertext)
                em = bytes(key.decrypt(ciphertext, mechanism=Mechanism.RSA_X_509))
            except PKCS11Error as exc:
                raise HsmAuthenticationError("decryption failed") from exc
            out = oaep_decode(em, k, "sha256")
            if out is None:
                raise HsmAuthenticationError("decryption failed")
            return out

        return await self._slow(run)

    async def ecdh(self, label: str, peer_point: bytes) -> bytes:
        def run(state: _SessionState) -> bytes:
            key = self._find(state, label, ObjectClass.PRIVATE_KEY)
            curve_bytes = len(peer_point) // 2
            try:
                secret = key.derive_key(
                    KeyType.GENERIC_SECRET, curve_bytes * 8, mechanism=Mechanism.ECDH1_DERIVE,
                    mechanism_param=(KDF.NULL, None, peer_point),
                    template={Attribute.TOKEN: False, Attribute.SENSITIVE: False,
                              Attribute.EXTRACTABLE: True})
            except PKCS11Error as exc:
                raise HsmAuthenticationError("key agreement failed") from exc
            try:
                return bytes(secret[Attribute.VALUE])
            finally:
                secret.destroy()

        return await self._slow(run)

    # ---- import -------------------------------------------------------------------------

    async def generate_wrapping_key(self, label: str, bits: int) -> bytes:
        def run(state: _SessionState) -> bytes:
            try:
                pub, _ = state.session.generate_keypair(
                    KeyType.RSA, bits, label=label, store=True,
                    public_template={Attribute.TOKEN: True, Attribute.WRAP: True, Attribute.ENCRYPT: True},
                    private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                      Attribute.EXTRACTABLE: False, Attribute.UNWRAP: True,
                                      Attribute.DECRYPT: True, Attribute.SIGN: False})
            except PKCS11Error as exc:
                raise HsmError(f"wrapping key generation failed: {type(exc).__name__}") from exc
            return rsa_spki(pub[Attribute.MODULUS], pub[Attribute.PUBLIC_EXPONENT])

        return await self._slow(run)

    async def import_material(self, wrapping_label: str, wrapping_algorithm: str, wrapped: bytes,
                              label: str, spec: str, usage: str) -> tuple[str, bytes | None]:
        info = SPECS[spec]
        if info.kind not in (Kind.SYMMETRIC, Kind.HMAC):
            raise HsmError("only symmetric and HMAC material can be imported into this token")
        key_type = KeyType.AES if info.kind is Kind.SYMMETRIC else KeyType.GENERIC_SECRET
        expected = 32 if info.kind is Kind.SYMMETRIC else info.bits // 8
        caps = ({Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.SIGN: False, Attribute.VERIFY: False}
                if info.kind is Kind.SYMMETRIC else
                {Attribute.SIGN: True, Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.DECRYPT: False})
        ident = hashlib.sha256(label.encode()).digest()[:16]
        target_t = {**_SECRET_TEMPLATE, **caps, Attribute.LABEL: label, Attribute.ID: ident}

        def run(state: _SessionState) -> tuple[str, bytes | None]:
            s = state.session
            wrapper = self._find(state, wrapping_label, ObjectClass.PRIVATE_KEY)
            k = (wrapper.key_length or 0) // 8 or len(wrapped)
            try:
                if wrapping_algorithm in ("RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"):
                    mech = Mechanism.RSA_PKCS_OAEP if wrapping_algorithm.endswith("SHA_1") else Mechanism.RSA_PKCS
                    param = (Mechanism.SHA_1, MGF.SHA1, None) if mech == Mechanism.RSA_PKCS_OAEP else None
                    obj = wrapper.unwrap_key(ObjectClass.SECRET_KEY, key_type, wrapped, label=label, id=ident,
                                             store=True, mechanism=mech, mechanism_param=param,
                                             template=target_t)
                elif wrapping_algorithm == "RSAES_OAEP_SHA_256":
                    # SoftHSM2 2.6 has no OAEP-SHA-256: raw RSA in the token, padding removed here,
                    # the material enters the token at once as a sensitive, non-extractable object.
                    material = oaep_decode(bytes(wrapper.decrypt(wrapped, mechanism=Mechanism.RSA_X_509)),
                                           len(wrapped), "sha256")
                    if material is None or len(material) != expected:
                        raise HsmAuthenticationError("cannot unwrap")
                    obj = s.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: key_type,
                                           Attribute.VALUE: material, **target_t})
                    del material
                else:  # RSA_AES_KEY_WRAP_SHA_1 / _SHA_256: ephemeral AES key, then RFC 5649 KWP
                    head, tail = wrapped[:k], wrapped[k:]
                    kek_t = {Attribute.TOKEN: False, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                             Attribute.UNWRAP: True, Attribute.ENCRYPT: False, Attribute.DECRYPT: False}
                    if wrapping_algorithm.endswith("SHA_1"):
                        kek = wrapper.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, head, store=False,
                                                 mechanism=Mechanism.RSA_PKCS_OAEP,
                                                 mechanism_param=(Mechanism.SHA_1, MGF.SHA1, None), template=kek_t)
                    else:
                        kek_value = oaep_decode(bytes(wrapper.decrypt(head, mechanism=Mechanism.RSA_X_509)),
                                                len(head), "sha256")
                        if kek_value is None or len(kek_value) not in (16, 24, 32):
                            raise HsmAuthenticationError("cannot unwrap")
                        kek = s.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                               Attribute.VALUE: kek_value, **kek_t})
                        del kek_value
                    try:
                        obj = kek.unwrap_key(ObjectClass.SECRET_KEY, key_type, tail, label=label, id=ident,
                                             store=True, mechanism=Mechanism.AES_KEY_WRAP_PAD, template=target_t)
                    finally:
                        kek.destroy()
            except PKCS11Error as exc:
                raise HsmAuthenticationError("cannot unwrap") from exc
            try:
                length = obj[Attribute.VALUE_LEN]
            except PKCS11Error:
                length = 0
            if length not in (0, expected):  # SoftHSM2 leaves CKA_VALUE_LEN unset (0) on unwrap
                obj.destroy()
                raise HsmAuthenticationError("wrong material length")
            state.objects[(label, ObjectClass.SECRET_KEY)] = obj
            return self._fingerprint_in(state, label, spec), None

        return await self._slow(run)

    def _fingerprint_in(self, state: _SessionState, label: str, spec: str) -> str:
        info = SPECS[spec]
        if info.kind is Kind.SYMMETRIC:
            key = self._find(state, label, ObjectClass.SECRET_KEY)
            check = bytes(key.encrypt(b"\x00" * 16, mechanism=Mechanism.AES_ECB))
        elif info.kind is Kind.HMAC:
            key = self._find(state, label, ObjectClass.SECRET_KEY)
            check = bytes(key.sign(b"strongroom-kcv", mechanism=Mechanism.SHA256_HMAC))
        else:
            pub = self._find(state, label, ObjectClass.PUBLIC_KEY)
            check = bytes(pub[Attribute.MODULUS]) if info.kind is Kind.RSA else bytes(pub[Attribute.EC_POINT])
        return hashlib.sha256(b"strongroom-kcv" + check).hexdigest()

    async def fingerprint(self, label: str, spec: str) -> str:
        return await self._slow(lambda state: self._fingerprint_in(state, label, spec))

    def value_readable(self, label: str) -> bool:
        """True if the token hands out any secret value stored under ``label``."""
        state = self._state()
        for obj in state.session.get_objects({Attribute.LABEL: label}):
            if obj.object_class in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY):
                for attr in (Attribute.VALUE, Attribute.PRIVATE_EXPONENT):
                    try:
                        obj[attr]
                        return True
                    except PKCS11Error:
                        continue
        return False
