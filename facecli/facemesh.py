"""MediaPipe Face Landmarker v2 on onnxruntime: 478 face-mesh points and 52 ARKit blendshapes for one face.

The crop is the one MediaPipe's face landmarker feeds its mesh model: a square around the face, turned so that
the eye line is level, ``alignment.scale`` times its size (manifest ``face-mesh``), warped to 256x256; the
points come back through the inverse of that warp. The square comes from a detection (its box, turned by its two
eyes) or, as MediaPipe does between video frames, from the previous frame's mesh (its points' box, turned by the
outer eye corners). Blendshapes read 146 of the points, x and y in image pixels, as MediaPipe's
``FaceBlendshapesGraph`` feeds them. No MediaPipe or TensorFlow at run time: both models were converted to ONNX
by ``facecli models build`` (``modelbuild/convert_tflite.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facecli.models import spec
from facecli.runtime import create_session, provider_name
from facecli.values import Detection

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Mesh:
    """One face's mesh: ``points`` (478, 3) float32, x and y in image pixels, z in the same scale relative to
    the face (smaller is nearer the camera); ``presence`` the model's probability that a face is in its crop."""

    points: np.ndarray
    presence: float

    def __repr__(self) -> str:
        return f"Mesh(points={len(self.points)}, presence={self.presence:.3f})"


@dataclass(frozen=True)
class Square:
    """A crop of the image: centre, side and the angle (radians, image y down) of its x axis."""

    cx: float
    cy: float
    side: float
    angle: float


def detection_square(det: Detection, scale: float, eyes: tuple[int, int]) -> Square:
    """The crop around a detection: its box's centre, ``scale`` times its longer side, turned by the line from
    landmark ``eyes[0]`` to ``eyes[1]`` (MediaPipe's DetectionsToRects and RectTransformation, square_long)."""
    x1, y1, x2, y2 = det.box
    angle = 0.0
    if det.landmarks is not None:
        (ax, ay), (bx, by) = det.landmarks[eyes[0]], det.landmarks[eyes[1]]
        angle = math.atan2(by - ay, bx - ax)
    return Square((x1 + x2) / 2, (y1 + y2) / 2, scale * max(x2 - x1, y2 - y1), angle)


def mesh_square(mesh: Mesh, scale: float, eyes: tuple[int, int]) -> Square:
    """The crop around a previous mesh: its points' box (in the image's axes, as MediaPipe's
    LandmarksToDetection), ``scale`` times its longer side, turned by the line from point ``eyes[0]`` to
    ``eyes[1]``."""
    xy = mesh.points[:, :2]
    (x1, y1), (x2, y2) = xy.min(0), xy.max(0)
    (ax, ay), (bx, by) = xy[eyes[0]], xy[eyes[1]]
    return Square(float(x1 + x2) / 2, float(y1 + y2) / 2, scale * float(max(x2 - x1, y2 - y1)),
                  math.atan2(float(by - ay), float(bx - ax)))


def crop_matrix(square: Square, size: int) -> np.ndarray:
    """The 2x3 affine map from image pixels to the crop's edge coordinates (0 at the square's left edge,
    ``size`` at its right), in which the mesh model reads and writes points."""
    # numpy: loaded with the first model
    import numpy as np

    k = size / square.side
    c, s = math.cos(square.angle) * k, math.sin(square.angle) * k
    # rotate by -angle about the centre and scale, then put the centre at the middle of the crop
    return np.array([[c, s, size / 2 - c * square.cx - s * square.cy],
                     [-s, c, size / 2 + s * square.cx - c * square.cy]], dtype=np.float64)


class FaceMesh:
    """The face-mesh and blendshape models, loaded on first use, run by onnxruntime on ``device``.

    One thread by default, as YuNet: one face a frame is a small graph, and onnxruntime's own pool of spinning
    threads cost more than they gave on a 2-core machine shared with other work (a frame's mesh and blendshapes in
    15 ms on one thread, 49 ms on the pool; docs/models.md). ``threads=0`` lets onnxruntime choose.
    """

    def __init__(self, device: str = "auto", threads: int = 1) -> None:
        self.device = device
        self.threads = threads
        self._mesh = spec("face-mesh")
        self._shapes = spec("face-blendshapes")
        self._sessions: dict[str, Any] = {}

    def _session(self, name: str) -> Any:
        if name not in self._sessions:
            model = self._mesh if name == self._mesh.name else self._shapes
            self._sessions[name] = create_session(model, self.device, threads=self.threads, optimise=True)
        return self._sessions[name]

    @property
    def provider(self) -> str:
        """Where the mesh model runs: tensorrt, cuda or cpu (loads it)."""
        return provider_name(self._session(self._mesh.name))

    def square(self, detection: Detection | None = None, previous: Mesh | None = None) -> Square:
        """The crop the mesh model is fed: from the previous frame's mesh when there is one, else the detection."""
        align = self._mesh.alignment
        if previous is not None:
            return mesh_square(previous, align["scale"], tuple(align["from_mesh"]["rotation"]))
        if detection is None:
            raise ValueError("landmarks need a detection or a previous mesh")
        return detection_square(detection, align["scale"], tuple(align["from_detection"]["rotation"]))

    def landmarks(self, rgb: np.ndarray, detection: Detection | None = None, previous: Mesh | None = None) -> Mesh:
        """The mesh of the face in ``rgb`` (H x W x 3 uint8) around ``detection`` or, tracking a video, around the
        ``previous`` frame's mesh (which also refines a still image's mesh when given its own first pass)."""
        # numpy, OpenCV: loaded with the first model
        import cv2
        import numpy as np

        square = self.square(detection, previous)
        width, height = self._mesh.input["size"]
        forward = crop_matrix(square, width)
        pixels = forward.copy()
        pixels[:, 2] -= 0.5  # warpAffine samples pixel centres: the crop's pixel i covers edge coordinates i..i+1
        crop = cv2.warpAffine(rgb, pixels, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pre = self._mesh.preprocess
        x = ((crop.astype(np.float32) - pre["mean"]) / pre["std"])[None]
        out = self._mesh.output
        session = self._session(self._mesh.name)
        names = [o.name for o in session.get_outputs()]
        results = dict(zip(names, session.run(None, {self._mesh.input["name"]: x})))
        points = results[out["points"]].reshape(out["count"], 3).astype(np.float64)
        inverse = cv2.invertAffineTransform(forward)
        image = np.empty_like(points)
        image[:, :2] = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        image[:, 2] = points[:, 2] * square.side / width  # z in the crop's scale, brought to the image's
        logit = float(results[out["presence"]].ravel()[0])
        return Mesh(image.astype(np.float32), 1.0 / (1.0 + math.exp(-logit)))

    def blendshapes(self, mesh: Mesh) -> dict[str, float]:
        """The 52 ARKit blendshape coefficients (0-1) of a mesh, by name in MediaPipe's order (``_neutral`` first)."""
        # numpy: loaded with the first model
        import numpy as np

        pre, out = self._shapes.preprocess, self._shapes.output
        x = mesh.points[pre["subset"], :2].astype(np.float32)[None]
        session = self._session(self._shapes.name)
        (scores,) = session.run([out["name"]], {self._shapes.input["name"]: x})
        return dict(zip(out["names"], map(float, np.ravel(scores))))
