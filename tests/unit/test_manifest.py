"""The model manifest and where the models live (no models needed)."""

from __future__ import annotations

import json

from facecli.models import DEFAULT_MODEL, manifest, models_dir, pipeline_spec, pipelines
from facecli.paths import MANIFEST

REQUIRED = {"file", "sha256", "source", "input", "preprocess", "license"}


def test_manifest_declares_source_checksums_and_preprocessing():
    specs = manifest()
    assert {"facenet", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "haar"} <= set(specs)
    raw = json.loads(MANIFEST.read_text())["models"]
    for name, entry in raw.items():
        assert set(entry) >= REQUIRED, name
        assert len(entry["sha256"]) == 64 and len(entry["source"]["sha256"]) == 64
        assert {"package", "version", "dist", "member"} <= set(entry["source"])
    facenet = specs["facenet"]
    assert facenet.input["size"] == [160, 160] and facenet.input["layout"] == "NHWC"
    assert facenet.preprocess == {"mean": 127.5, "std": 128.0}
    assert facenet.output["dim"] == 512 and 0 < pipeline_spec("facenet").default_tau < 4
    sface = specs["sface"]
    assert sface.input["size"] == [112, 112] and sface.input["layout"] == "NCHW" and sface.input["color"] == "RGB"
    assert sface.alignment["method"] == "five-point" and len(sface.alignment["template"]) == 5
    for p in pipelines().values():  # every --model names built models, a detector, a tau and its calibration
        assert set(p.components) <= set(specs) and p.detector in ("mtcnn", "yunet") and 0 < p.default_tau < 4
        assert len(p.impostor["p"]) == len(p.impostor["d"]) and p.impostor["d"] == sorted(p.impostor["d"])
    assert pipeline_spec(DEFAULT_MODEL).components == ["facenet-int8", "sface"]
    int8 = specs["facenet-int8"]  # built from the float model, calibrated on photos that are not LFW's
    assert int8.source["model"] == "facenet" and int8.build["calibration"] == "int8_calibration"
    assert {k: getattr(int8, k) for k in ("input", "preprocess", "alignment", "output")} == \
        {k: getattr(facenet, k) for k in ("input", "preprocess", "alignment", "output")}
    calibration = json.loads(MANIFEST.read_text())["int8_calibration"]
    assert calibration["package"] == "face-recognition" and calibration["per_face"] > 1
    assert all(f["member"].startswith("tests/test_images/") and len(f["landmarks"]) == 5 for f in calibration["faces"])
    assert facenet.build["requirements"] and facenet.alignment["margin"] == 32


def test_the_face_mesh_models_declare_their_source_inside_the_task_bundle_and_their_inputs():
    """Both come out of one MediaPipe .task bundle (a zip inside the wheel): the bundle's and the inner file's
    sha256 are pinned; the mesh's crop, the blendshapes' 146 points and 52 names are declared, not guessed."""
    specs = manifest()
    mesh, shapes = specs["face-mesh"], specs["face-blendshapes"]
    for s in (mesh, shapes):
        assert s.source["member"].endswith(".task") and s.source["inner"].endswith(".tflite")
        assert len(s.source["inner_sha256"]) == 64 and s.build["script"] == "convert_tflite.py"
        assert s.license.startswith("Apache-2.0")
    assert mesh.source["sha256"] == shapes.source["sha256"] and mesh.source["inner"] != shapes.source["inner"]
    assert mesh.input == {"name": "input_12", "layout": "NHWC", "size": [256, 256], "color": "RGB", "dtype": "float32"}
    assert mesh.preprocess == {"mean": 0.0, "std": 255.0}  # [0, 1]
    assert mesh.alignment["method"] == "rotated-square" and mesh.alignment["scale"] == 1.5
    assert mesh.output["count"] == 478
    subset, names = shapes.preprocess["subset"], shapes.output["names"]
    assert len(subset) == 146 == len(set(subset)) and max(subset) < 478 and shapes.input["size"] == [146, 2]
    assert len(names) == 52 == len(set(names)) and names[0] == "_neutral" and names[9:11] == ["eyeBlinkLeft",
                                                                                               "eyeBlinkRight"]


def test_models_live_in_facecli_models_else_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FACECLI_MODELS", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models_dir() == tmp_path / "mine"
    monkeypatch.delenv("FACECLI_MODELS")
    assert models_dir() == tmp_path / "data" / "facecli" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models_dir() == tmp_path / ".local" / "share" / "facecli" / "models"
    assert manifest()["facenet"].path.parent == models_dir()
