"""First-start preparation of a SoftHSM2 token (only when the module is SoftHSM2).

* ``DATA_DIR/hsm/softhsm2.conf`` (or STRONGROOM_SOFTHSM2_CONF) with ``tokendir`` =
  ``DATA_DIR/hsm/tokens``; ``SOFTHSM2_CONF`` is set for this process before the module loads.
* The user PIN: STRONGROOM_PKCS11_PIN, else a random one kept in ``DATA_DIR/hsm/pin``
  (mode 0600, with the SO PIN on its second line), generated once.
* ``softhsm2-util --init-token --free --label <label>`` when no token has that label.
PINs never reach logs.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from common.config import Settings
from common.files import write_private


def is_softhsm(module: str) -> bool:
    return "softhsm" in Path(module).name.lower()



def _token_exists(conf: Path, label: str) -> bool:
    out = subprocess.run(["softhsm2-util", "--show-slots"], env={**os.environ, "SOFTHSM2_CONF": str(conf)},
                         capture_output=True, text=True, timeout=60, check=False)
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("Label:") and line.split(":", 1)[1].strip() == label:
            return True
    return False


def prepare(settings: Settings) -> str:
    """Make sure the token exists; return the user PIN to log in with."""
    hsm_dir = settings.data_dir / "hsm"
    hsm_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pin_path = hsm_dir / "pin"
    if settings.pkcs11_pin:
        pin, so_pin = settings.pkcs11_pin, None
    elif pin_path.exists():
        lines = pin_path.read_text().splitlines()
        pin, so_pin = lines[0], (lines[1] if len(lines) > 1 else None)
    else:
        pin, so_pin = secrets.token_hex(16), secrets.token_hex(16)
        write_private(pin_path, f"{pin}\n{so_pin}\n")
    if not is_softhsm(settings.pkcs11_module):
        return pin
    conf = settings.softhsm2_conf or hsm_dir / "softhsm2.conf"
    tokens = hsm_dir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                        "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    if not _token_exists(conf, settings.pkcs11_token_label):
        so_pin = so_pin or secrets.token_hex(16)
        result = subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", settings.pkcs11_token_label,
             "--pin", pin, "--so-pin", so_pin],
            env={**os.environ, "SOFTHSM2_CONF": str(conf)}, capture_output=True, text=True, timeout=60,
            check=False)
        if result.returncode != 0:
            raise RuntimeError("softhsm2-util --init-token failed")
    return pin
