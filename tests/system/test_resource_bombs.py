"""Hardening, resource bombs (issue 15): each hostile file costs under 1 GB and 5 s in a fresh
process, and under a memory cap a batch of bombs never stops the valid photo.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import pytest

from tests.helpers import bombs, json_rows
from tests.helpers.bombs import LIMIT_SIDE


@pytest.fixture(scope="module")
def hostile(images: Path, tmp_path_factory) -> dict[str, Path]:
    """Hostile files, each built from bytes or from the real photos, and what facecli must say of each.

    The first group is issue 15's: small files declaring far more than the
    pixel limit, the 20 000-scan JPEG, the 671-byte 100 MP JPEG, a 2 GB
    sparse file. The second is the worst that passes every check: files of a
    few hundred bytes or KB that decode to 119.7 MP in full (or that are
    refused only for the memory their decoder would need).
    """
    d = tmp_path_factory.mktemp("hostile")
    bgr = cv2.imread(str(images / "obama.jpg"))
    progressive = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    webp = cv2.imencode(".webp", cv2.resize(bgr, (64, 80)), [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes()
    w, h = LIMIT_SIDE
    built = {
        "rle_bmp_240mp.bmp": bombs.rle_bmp(),
        "bmp_32000x32000.bmp": bombs.huge_bmp(),
        "tiff_225mp.tif": bombs.tiff_bomb(),
        "webp_lossless_268mp.webp": bombs.webp_lossless_bomb(),
        "webp_extended_268mp.webp": bombs.webp_extended_bomb(),
        "webp_lossy_268mp.webp": bombs.webp_lossy_declaring(webp),
        "jpeg_20000_empty_scans.jpg": bombs.empty_scans(progressive),
        "jpeg_100mp_671_bytes.jpg": bombs.thin_jpeg((images / "obama2.jpg").read_bytes()),
        "limit_rle_bmp.bmp": bombs.rle_bmp(w, h),
        "limit_tiff_deflate.tif": bombs.tiff(w, h, bombs.deflate_zeros(w * h * 3), compression=8),
        "limit_tiff_16bit_rgba.tif": bombs.tiff(w, h, bombs.deflate_zeros(w * h * 8), compression=8, samples=4,
                                                bits=16),
        "limit_webp_lossless.webp": bombs.webp_lossless_bomb(10940, 10940),
        "limit_png_16bit_rgba.png": bombs.flat_png(w, h, bits=16, channels=4),
        "limit_jpeg_64_scans.jpg": bombs.flat_jpeg(w, h, colour=True, progressive=True, scans=64, restart=1),
        "limit_jpeg_square.jpg": bombs.flat_jpeg(10940, 10940, colour=True),
        "limit_jpeg_progressive_444.jpg": bombs.flat_jpeg(w, h, colour=True, progressive=True, subsampled=False),
    }
    files = {}
    for name, data in built.items():
        files[name] = d / name
        files[name].write_bytes(data)
    files["sparse_2gb.jpg"] = d / "sparse_2gb.jpg"
    with open(files["sparse_2gb.jpg"], "wb") as fh:
        fh.write((images / "obama2.jpg").read_bytes())
        fh.truncate(2 << 30)
    return files


#: what facecli says of each hostile file: the reason it is refused, or None (decoded: no face in it)
HOSTILE = {
    "rle_bmp_240mp.bmp": "16000x15000 pixels is above the limit",
    "bmp_32000x32000.bmp": "32000x32000 pixels is above the limit",
    "tiff_225mp.tif": "15000x15000 pixels is above the limit",
    "webp_lossless_268mp.webp": "16384x16384 pixels is above the limit",
    "webp_extended_268mp.webp": "16384x16384 pixels is above the limit",
    "webp_lossy_268mp.webp": "16383x16383 pixels is above the limit",
    "jpeg_20000_empty_scans.jpg": "more than 64 scans",
    "jpeg_100mp_671_bytes.jpg": "carries 671 bytes of image data, fewer than the 1171875",
    "sparse_2gb.jpg": "2147483648 bytes is above the limit of 268435456 (FACECLI_MAX_BYTES)",
    "limit_rle_bmp.bmp": None,
    "limit_tiff_deflate.tif": None,
    "limit_tiff_16bit_rgba.tif": "would take about 1317 MB, above the 900 MB allowed",
    "limit_webp_lossless.webp": None,
    "limit_png_16bit_rgba.png": None,
    "limit_jpeg_64_scans.jpg": None,
    "limit_jpeg_square.jpg": None,
    # decoded at reduced size for detection: libjpeg keeps its 720 MB of coefficients, writes 1/16 of the output
    "limit_jpeg_progressive_444.jpg": None,
}


# facecli's entry point, reporting at exit its own peak RSS (VmHWM): a forked child's ru_maxrss
# starts from its parent's size (pytest's, hundreds of MB), so wait4's figure would be pytest's
_PEAK_REPORTING = """
import atexit, os, sys
def _report():
    with open("/proc/self/status") as status, open(os.environ["FACECLI_TEST_PEAK"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(_report)
from facecli.cli import main
sys.argv[0] = "facecli"
main()
"""


def _measured(args: list[str], env: dict | None = None, address_space: int | None = None) -> dict:
    """Run ``facecli args`` in a fresh process: its exit code, output, peak RSS (bytes) and CPU seconds.

    The CPU time is the child's own (``os.wait4``); ``address_space`` caps its
    virtual memory (RLIMIT_AS).
    """
    def limit() -> None:
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        peak = Path(tmp) / "peak"
        full_env = dict(os.environ, FACECLI_DEVICE="cpu", FACECLI_TEST_PEAK=str(peak), **(env or {}))
        proc = subprocess.Popen([sys.executable, "-c", _PEAK_REPORTING, *args], env=full_env, stdout=out,
                                stderr=err, preexec_fn=limit)
        watchdog = threading.Timer(300, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"rc": proc.returncode, "stdout": out.read().decode(), "stderr": err.read().decode(),
                "rss": int(peak.read_text()) * 1024 if peak.exists() else 0, "cpu": usage.ru_utime + usage.ru_stime}


#: the commands each hostile file is measured with: the default, and the costliest settings
#: (full-size decoding, the working size at its cap, MTCNN: the detector with the most memory per pixel)
BOMB_RUNS = {"default": ["detect", "--json"],
             "det-size 0, mtcnn": ["detect", "--json", "--det-size", "0", "--model", "facenet"]}


@pytest.mark.parametrize("run_name", list(BOMB_RUNS))
def test_no_hostile_file_costs_more_than_1gb_or_5s(run_name, hostile, images):
    """Each hostile file in a fresh process: refused before decoding, or decoded within 1 GB and 5 s of CPU.

    The cost of a file is the process's peak RSS and CPU time less those of
    the same command on a real photo (the models, the interpreter).
    """
    args = BOMB_RUNS[run_name]
    base = _measured([*args, str(images / "obama2.jpg")])
    assert base["rc"] == 0, base["stderr"]
    rows: list[str] = []
    print(f"\n{run_name}: baseline (obama2.jpg) peak {base['rss'] / 1e6:.0f} MB, cpu {base['cpu']:.2f} s")
    for name, reason in HOSTILE.items():
        path = str(hostile[name])
        got = _measured([*args, path])
        extra_mb, extra_cpu = (got["rss"] - base["rss"]) / 1e6, got["cpu"] - base["cpu"]
        rows.append(f"{name:32s} {hostile[name].stat().st_size:>11,d} B  exit {got['rc']}  "
                    f"peak {got['rss'] / 1e6:6.0f} MB (+{extra_mb:4.0f})  cpu {got['cpu']:5.2f} s (+{extra_cpu:4.2f})")
        print(rows[-1])
        assert "Traceback" not in got["stderr"], got["stderr"]
        if reason is None:  # decoded in full: a flat image, no face in it
            assert got["rc"] == 1 and "no face" in got["stderr"], (name, got["stderr"])
        else:
            lines = got["stderr"].strip().splitlines()
            assert got["rc"] == 2 and len(lines) == 1, (name, got["stderr"])
            assert lines[0].startswith(f"error: {path}: ") and reason in lines[0], (name, lines)
        assert extra_mb < 1000 and extra_cpu < 5.0, (name, rows[-1])


def test_bombs_under_a_memory_cap_never_stop_the_valid_photo(run, images, hostile):
    """Issue 15: under a memory cap, a batch of bombs followed by a valid photo still identifies the photo.

    The cap (RLIMIT_AS) is the smallest, in steps of 128 MB, under which the
    photo alone is identified (models included), plus 256 MB: room for the
    photo, not for the first 359 MB buffer of a 120 MP image, so the files
    that pass the checks fail for memory, each with its own line, while the
    rest of the batch goes on.
    """
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    env = {"FACECLI_GALLERY": str(run.gallery)}
    args = ["identify", "--json", "--det-size", "0"]
    valid = str(images / "obama2.jpg")
    cap = 768 << 20
    while _measured([*args, valid], env, cap)["rc"] != 0:
        cap += 128 << 20
        assert cap < 8 << 30, "the models do not load under 8 GB of address space"
    batch = [str(hostile[name]) for name in HOSTILE] + [valid]
    got = _measured([*args, *batch], env, cap + (256 << 20))
    assert got["rc"] == 2 and "Traceback" not in got["stderr"], got["stderr"]
    rows = json_rows(got["stdout"])
    assert [r["file"] for r in rows] == batch, got["stderr"]
    assert rows[-1]["name"] == "obama" and rows[-1]["decision"] == "recognized", rows[-1]
    errors = [line for line in got["stderr"].splitlines() if line.startswith("error: ")]
    assert sorted(line.split(": ")[1] for line in errors) == sorted(r["file"] for r in rows if r["decision"] == "error")
    assert any("memory" in line for line in errors), errors  # the cap did bite
