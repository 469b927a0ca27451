"""The account root's access key.

Taken from STRONGROOM_ROOT_ACCESS_KEY_ID / STRONGROOM_ROOT_SECRET_ACCESS_KEY, or generated on
first start and kept in ``$STRONGROOM_DATA_DIR/credentials`` (AWS shared-credentials format,
profile ``default``, mode 0600), so later starts reuse it.
"""

from __future__ import annotations

import configparser
import secrets
import string
from pathlib import Path

from common.config import Settings
from common.files import write_private

_AKID_ALPHABET = string.ascii_uppercase + "234567"


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_AKID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "credentials"


def ensure_root_credentials(settings: Settings) -> tuple[str, str]:
    if settings.root_access_key_id and settings.root_secret_access_key:
        return settings.root_access_key_id, settings.root_secret_access_key
    path = credentials_path(settings)
    if path.exists():
        parser = configparser.ConfigParser()
        parser.read(path)
        section = parser["default"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]
    akid, secret = new_access_key_id(), new_secret_access_key()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    write_private(path, f"[default]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")
    return akid, secret
