"""What facecli leaves on the machine besides its own files: no telemetry (issue 24)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import FACECLI


def test_no_telemetry_is_recorded_by_a_command_or_the_api(images, tmp_path):
    """onnxruntime 1.31 records telemetry events (a device id, process paths) under
    ~/.cache/Microsoft/DeveloperTools at import; facecli switches it off before the first import."""
    env = dict(os.environ, HOME=str(tmp_path), FACECLI_DEVICE="cpu")
    for key in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "FACECLI_CACHE", "ORT_DISABLE_TELEMETRY"):
        env.pop(key, None)
    photos = [str(images / "obama.jpg"), str(images / "obama2.jpg")]
    verify = subprocess.run([FACECLI, "verify", *photos], env=env, capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stderr
    api = subprocess.run([sys.executable, "-c", "import sys, facecli; e = facecli.load(); "
                          "print(e.verify(sys.argv[1], sys.argv[2]).same)", *photos],
                         env=env, capture_output=True, text=True, timeout=300)
    assert api.returncode == 0 and api.stdout.strip() == "True", api.stderr
    assert (tmp_path / ".cache" / "facecli").is_dir()  # the commands ran with this home
    assert not (tmp_path / ".cache" / "Microsoft").exists(), sorted(str(p) for p in tmp_path.rglob("*"))
