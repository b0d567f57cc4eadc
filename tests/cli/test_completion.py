"""Tab completion offers option values, as bash and zsh ask the installed facecli for them."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import FACECLI


def _complete(words: str, shell: str = "bash", gallery=None) -> list[str]:
    env = dict(os.environ, _FACECLI_COMPLETE=f"complete_{shell}", COMP_WORDS=words, _TYPER_COMPLETE_ARGS=words,
               COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    if gallery is not None:
        env["FACECLI_GALLERY"] = str(gallery)
    proc = subprocess.run([FACECLI], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize("words, expected", [
    ("facecli identify --model ", ["facenet", "sface", "fusion"]),
    ("facecli identify --model f", ["facenet", "fusion"]),
    ("facecli identify --device ", ["auto", "cpu", "cuda", "tensorrt"]),
    ("facecli identify --detector ", ["mtcnn", "yunet", "haar"]),
    ("facecli identify --search ", ["auto", "exact", "index"]),
    ("facecli identify --templates ", ["mean", "best"]),
    ("facecli cluster --linkage ", ["average", "single"]),
])
def test_option_values_are_completed(words, expected):
    assert _complete(words) == expected


def test_people_are_completed_from_the_gallery_in_use(run, images):
    for name, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        assert run("enroll", name, str(images / photo)).returncode == 0
    assert sorted(_complete("facecli verify a.jpg --claim ", gallery=run.gallery)) == ["biden", "obama"]
    assert _complete("facecli gallery show o", gallery=run.gallery) == ["obama"]
    assert _complete(f"facecli find --gallery {run.gallery} b", gallery="/nonexistent/g.db") == ["biden"]
    assert _complete("facecli gallery remove ", gallery="/nonexistent/g.db") == []  # no gallery: nothing, no error
