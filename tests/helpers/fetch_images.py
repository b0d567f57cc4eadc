"""Fetch the test and demo photos from the face-recognition 1.3.0 sdist.

The photos are third-party files: they are fetched into the git-ignored
``tests/images/`` and never committed. Each is checked by sha256.
Usage: python tests/helpers/fetch_images.py [DEST]
"""

from __future__ import annotations

import sys
from pathlib import Path

from facecli.sources import download, extract, sha256_file

PACKAGE, VERSION = "face-recognition", "1.3.0"
IMAGES = {
    "32bit.png": "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627",
    "biden.jpg": "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
    "obama.jpg": "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    "obama2.jpg": "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
    "obama3.jpg": "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
    "obama_partial_face.jpg": "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
    "obama_partial_face2.jpg": "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
}
DEFAULT_DEST = Path(__file__).resolve().parents[1] / "images"


def fetch(dest: Path = DEFAULT_DEST) -> Path:
    archive = None
    for name, sha in IMAGES.items():
        target = dest / name
        if target.exists() and sha256_file(target) == sha:
            continue
        archive = archive or download(PACKAGE, VERSION, "sdist")
        extract(archive, f"tests/test_images/{name}", target, sha)
    return dest


if __name__ == "__main__":
    print(fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEST))
