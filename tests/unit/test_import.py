"""`import facecli` is light: the API loads its heavy modules only when used (no models)."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light_and_the_api_is_lazy():
    code = ("import sys, facecli; heavy = [m for m in ('cv2', 'onnxruntime', 'numpy') if m in sys.modules]; "
            "print(heavy, callable(facecli.load), callable(facecli.open_gallery))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["[]", "True", "True"]
