"""The projection head a gallery keeps: its file's bytes, so that the commands matching against it need no --head.

Meta records which head the gallery is used with (``head_sha256``, and
``head_path``: where its file was when it was set); from schema 4 on the
``heads`` table keeps that file's bytes under its sha256 (a head is small:
``heads.STORED_MAX`` at most). Only the head in use is kept: setting another,
or none, forgets the one before. A gallery set with a head by an older
facecli records it without keeping it; its commands read the file at the
recorded path (checked by its sha256) until ``gallery set --head`` keeps it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from facecli.errors import GalleryError
from facecli.heads import STORED_MAX
from facecli.sources import sha256_bytes

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.values import HeadRecord

#: the schema version from which a gallery keeps its head's bytes
KEPT_FROM = 4


def put_head(gallery: Gallery, record: HeadRecord | None) -> None:
    """In the caller's write transaction: use the gallery with ``record``'s head (None: none), keeping its bytes
    when the record carries them; any other head kept is forgotten."""
    if record is not None and record.data is not None and \
            (len(record.data) > STORED_MAX or sha256_bytes(record.data) != record.sha256):
        raise GalleryError(gallery.location, f"cannot keep the head {record.path}: its bytes are not the head of "
                                             f"sha256 {record.sha256[:12]}, or larger than {STORED_MAX >> 20} MiB")
    gallery._put_meta({"head_sha256": record and record.sha256, "head_path": record and record.path})
    db = gallery._db
    db.run(gallery._sql("DELETE FROM {s}heads WHERE sha256 <> ?"), (record.sha256 if record else "",))  # all: none
    if record is not None and record.data is not None:
        db.run(gallery._sql("INSERT INTO {s}heads VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING"),
               (record.sha256, record.data, time.time()))


def kept_head(gallery: Gallery) -> bytes | None:
    """The bytes of the head the gallery is used with, when it keeps them (None: no head, or one only recorded)."""
    record = gallery.head()
    if record is None or gallery.is_new:
        return None

    def read() -> bytes | None:
        if gallery.schema < KEPT_FROM:
            return None
        rows = gallery._rows("SELECT data FROM {s}heads WHERE sha256 = ?", (record.sha256,))
        return bytes(rows[0][0]) if rows and isinstance(rows[0][0], (bytes, bytearray, memoryview)) else None

    return gallery._cached(f"kept head {record.sha256}", read)


def kept_problems(gallery: Gallery, meta: dict[str, str]) -> list[str]:
    """What is wrong with the heads a gallery keeps: bytes that are not the head their sha256 names (damaged), too
    large, or a head kept that the gallery is not used with."""
    if gallery.schema < KEPT_FROM:
        return []
    problems = []
    for sha, data in gallery._rows("SELECT sha256, data FROM {s}heads ORDER BY sha256"):
        shown = str(sha)[:12]
        if not isinstance(data, (bytes, bytearray, memoryview)) or sha256_bytes(bytes(data)) != sha:
            problems.append(f"the head kept under sha256 {shown} is damaged (its bytes have another sha256)")
        elif len(data) > STORED_MAX:
            problems.append(f"the head kept under sha256 {shown} is larger than {STORED_MAX >> 20} MiB")
        elif sha != meta.get("head_sha256"):
            problems.append(f"a head is kept under sha256 {shown}, but the gallery is not used with it")
    return problems
