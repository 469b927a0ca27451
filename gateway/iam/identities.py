"""Access key id -> signing credential + identity, for gateway.auth, with an in-memory cache.

``IdentityResolver.lookup`` is the ``CredentialLookup`` handed to ``gateway.auth.authenticate``.
It answers from a dict; a miss reads SQLite once (long-term keys of the root and IAM users,
STS session credentials) and caches the answer, including "no such key". Every IAM/STS write
calls :meth:`invalidate`, which empties the cache, so a deleted or deactivated key, a new
policy or a new key takes effect on the next request. The root's configured key
(``STRONGROOM_ROOT_ACCESS_KEY_ID``) is always known.

The credential's ``principal`` is an :class:`gateway.iam.model.Identity` carrying the inline
policy documents the caller's requests are authorised with.
"""

from __future__ import annotations

from gateway.auth.models import SigningCredential
from gateway.iam.keyring import SecretBox
from gateway.iam.model import Identity, assumed_role_arn, root_arn
from gateway.iam.store import IamStore

_CACHE_MAX = 10_000


class IdentityResolver:
    def __init__(self, *, account_id: str, store: IamStore, box: SecretBox,
                 root_access_key_id: str, root_secret_access_key: str) -> None:
        self.account_id = account_id
        self._store = store
        self._box = box
        self._root = SigningCredential(
            access_key_id=root_access_key_id,
            secret_access_key=root_secret_access_key,
            principal=self.root_identity(root_access_key_id),
        )
        self._cache: dict[str, SigningCredential | None] = {}

    def root_identity(self, access_key_id: str = "") -> Identity:
        return Identity(kind="Root", account_id=self.account_id, arn=root_arn(self.account_id),
                        principal_id=self.account_id, access_key_id=access_key_id)

    def invalidate(self) -> None:
        self._cache.clear()

    async def lookup(self, access_key_id: str) -> SigningCredential | None:
        if access_key_id == self._root.access_key_id:
            return self._root
        try:
            return self._cache[access_key_id]
        except KeyError:
            pass
        cred = await self._load(access_key_id)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[access_key_id] = cred
        return cred

    __call__ = lookup

    async def _load(self, access_key_id: str) -> SigningCredential | None:
        if access_key_id.startswith("ASIA"):
            return await self._load_session(access_key_id)
        found = await self._store.get_access_key(access_key_id)
        if found is None:
            return None
        key, sealed = found
        if key.status != "Active":
            return None
        secret = self._box.open(sealed, kind="access-key", key_id=access_key_id)
        if key.user_name is None:
            identity = self.root_identity(access_key_id)
        else:
            user = await self._store.get_user(key.user_name)
            if user is None:
                return None
            docs = tuple(doc for _, doc in await self._store.list_policies("user", user.name))
            identity = Identity(kind="IAMUser", account_id=self.account_id, arn=user.arn,
                                principal_id=user.user_id, access_key_id=access_key_id,
                                user_name=user.name, policies=docs, tags=user.tags)
        return SigningCredential(access_key_id=access_key_id, secret_access_key=secret,
                                 principal=identity)

    async def _load_session(self, access_key_id: str) -> SigningCredential | None:
        found = await self._store.get_session(access_key_id)
        if found is None:
            return None
        session, sealed_secret, sealed_token = found
        role = await self._store.get_role(session.role_name)
        if role is None or role.role_id != session.role_id:
            return None  # the role was deleted (and maybe re-created): the session is void
        docs = tuple(doc for _, doc in await self._store.list_policies("role", role.name))
        identity = Identity(
            kind="AssumedRole", account_id=self.account_id,
            arn=assumed_role_arn(self.account_id, role.name, session.session_name),
            principal_id=f"{role.role_id}:{session.session_name}",
            access_key_id=access_key_id, policies=docs, session=session, tags=role.tags)
        return SigningCredential(
            access_key_id=access_key_id,
            secret_access_key=self._box.open(sealed_secret, kind="session", key_id=access_key_id),
            session_token=self._box.open(sealed_token, kind="session-token", key_id=access_key_id),
            expires_at=session.expires,
            principal=identity)
