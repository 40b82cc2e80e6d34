"""The vault's cryptography, apart from storage (no I/O): what erasure destroys, and why nothing
left in the database files can open an erased resident's data.

The key hierarchy::

    VAULT_MASTER_KEY (settings, never in the database)
      └─ wraps each **bucket secret** (32 random bytes; ``VAULT_KEY_BUCKETS`` of them, one row
         each in the small table ``vault_key_buckets``)
           ├─ KEK: wraps the **data key** of every resident in the bucket
           └─ tag key: the resident's **ID tag**, how a returning resident is found
                └─ each resident's data key seals each field (AES-256-GCM)

* A resident's bucket comes from their ID number (an HMAC under ``VAULT_LOOKUP_KEY``), so a
  lookup knows which bucket secret to ask for; the ID number itself is never stored in clear.
* **Erasure** gives the resident's bucket a new secret: the other residents of the bucket get
  their data keys re-wrapped and their ID tags recomputed under it, the erased resident gets
  nothing, and the key table is rewritten into a new file (``TRUNCATE`` and re-insert, in the
  erasure's own transaction), so the old secret is in no live or dead tuple of any table. What
  the erased resident's rows leave behind in dead tuples (their wrapped data key, sealed fields
  and ID tag) needs that old secret, which neither the database nor the service holds any more.
* The master key (rotated with ``VAULT_OLD_MASTER_KEYS``) only ever wraps bucket secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.intake.idnumber import normalize
from shared.settings import Settings

KID = 8
NONCE = 12


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _derive_master(secret: str) -> tuple[bytes, AESGCM]:
    key = _hkdf(secret.encode(), b"sixstep-vault-master-v1")
    return hashlib.sha256(b"sixstep-vault-kid\x00" + key).digest()[:KID], AESGCM(key)


class MasterKeyMissing(RuntimeError):
    """A bucket secret was wrapped by a master key that is no longer configured."""


class Sealer:
    """Wraps, unwraps, seals, opens and tags; every secret it holds comes from settings."""

    def __init__(self, master: str, old_masters: Sequence[str], lookup_key: str) -> None:
        self._current = _derive_master(master)
        self._masters = dict([self._current, *(_derive_master(k) for k in old_masters)])
        self._lookup = lookup_key.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        return cls(settings.vault_master_key.get_secret_value(),
                   [k.get_secret_value() for k in settings.vault_old_master_keys],
                   settings.vault_lookup_key.get_secret_value())

    # -- finding a resident by ID number -----------------------------------------------------

    def _id_mac(self, purpose: bytes, id_number: str) -> bytes:
        return hmac.new(self._lookup, purpose + b"\x00" + normalize(id_number).encode(),
                        hashlib.sha256).digest()

    def bucket_of(self, id_number: str, buckets: int) -> int:
        """The bucket of an ID number: a few bits of a keyed hash, the same at every start."""
        return int.from_bytes(self._id_mac(b"sixstep-bucket-v2", id_number)[:4], "big") % buckets

    def id_tag(self, secret: bytes, id_number: str) -> bytes:
        """How the vault finds a returning resident: keyed by the lookup key and the bucket
        secret, so erasing the secret leaves a tag nobody can test an ID number against."""
        return hmac.new(_hkdf(secret, b"sixstep-vault-tag-v2"),
                        self._id_mac(b"sixstep-id-v2", id_number), hashlib.sha256).digest()

    # -- bucket secrets, under the master key ------------------------------------------------

    @staticmethod
    def new_secret() -> bytes:
        return os.urandom(32)

    def wrap_secret(self, bucket: int, secret: bytes) -> bytes:
        kid, master = self._current
        nonce = os.urandom(NONCE)
        return kid + nonce + master.encrypt(nonce, secret, _bucket_aad(bucket))

    def unwrap_secret(self, bucket: int, wrapped: bytes) -> bytes:
        master = self._masters.get(wrapped[:KID])
        if master is None:
            raise MasterKeyMissing(f"bucket {bucket} was wrapped by a master key that is not "
                                   "configured (VAULT_MASTER_KEY / VAULT_OLD_MASTER_KEYS)")
        return master.decrypt(wrapped[KID:KID + NONCE], wrapped[KID + NONCE:],
                               _bucket_aad(bucket))

    def wrapped_by_current(self, wrapped: bytes) -> bool:
        return wrapped[:KID] == self._current[0]

    # -- data keys, under their bucket's KEK -------------------------------------------------

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    @staticmethod
    def wrap_data_key(secret: bytes, bucket: int, resident_id: bytes, key: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        kek = AESGCM(_hkdf(secret, b"sixstep-vault-kek-v2"))
        return nonce + kek.encrypt(nonce, key, _key_aad(bucket, resident_id))

    @staticmethod
    def unwrap_data_key(secret: bytes, bucket: int, resident_id: bytes, wrapped: bytes) -> bytes:
        kek = AESGCM(_hkdf(secret, b"sixstep-vault-kek-v2"))
        return kek.decrypt(wrapped[:NONCE], wrapped[NONCE:], _key_aad(bucket, resident_id))

    def unwrap_legacy(self, resident_id: bytes, wrapped: bytes) -> bytes:
        """A data key as the first vault stored it (wrapped directly by a master key): read
        once, by the migration to buckets (``vault_migration.py``)."""
        master = self._masters.get(wrapped[:KID])
        if master is None:
            raise MasterKeyMissing("a data key was wrapped by a master key that is not "
                                   "configured (VAULT_MASTER_KEY / VAULT_OLD_MASTER_KEYS)")
        return master.decrypt(wrapped[KID:KID + NONCE], wrapped[KID + NONCE:],
                              b"dek\x00" + resident_id)

    # -- fields, under the data key ----------------------------------------------------------

    @staticmethod
    def seal(key: bytes, resident_id: bytes, field: str, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + AESGCM(key).encrypt(nonce, plain, resident_id + field.encode())

    @staticmethod
    def open(key: bytes, resident_id: bytes, field: str, sealed: bytes) -> bytes:
        return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], resident_id + field.encode())


def _bucket_aad(bucket: int) -> bytes:
    return b"sixstep-bucket-secret-v2\x00" + bucket.to_bytes(4, "big")


def _key_aad(bucket: int, resident_id: bytes) -> bytes:
    return b"sixstep-dek-v2\x00" + bucket.to_bytes(4, "big") + resident_id
