"""Pictures of the results: boxes, landmarks and names drawn on the photo.

Everything is drawn inside each face's box (the label sits on the box's top
edge, inside it), so an annotated image differs from the photo only where a
face is. ``files.write_annotated`` saves them as lossless PNGs.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecli.values import Detection

GREEN, RED, BLUE = (60, 200, 60), (40, 40, 230), (230, 160, 40)  # BGR: recognised, unknown, detected


def labelled(faces, decisions) -> list[tuple[Detection, str, bool]]:
    """What ``draw`` takes for identified faces: the name and distance, or the decision's label."""
    return [(f.detection, f"{d.name} {d.distance:.2f}" if d.name else d.label, d.name is not None)
            for f, d in zip(faces, decisions)]


def draw(image_rgb: np.ndarray, faces: list[tuple[Detection, str | None, bool | None]]) -> np.ndarray:
    """A BGR copy of the image with each (detection, label, recognised) drawn inside its box.

    ``recognised`` is True (green), False (red: "not recognized") or None (blue: detection only).
    """
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    height, width = canvas.shape[:2]
    for det, label, recognised in faces:
        colour = BLUE if recognised is None else GREEN if recognised else RED
        x1, y1 = int(np.ceil(det.box[0])), int(np.ceil(det.box[1]))
        x2, y2 = min(int(det.box[2]), width) - 1, min(int(det.box[3]), height) - 1
        if x2 <= x1 or y2 <= y1:
            continue
        t = max(1, round(min(x2 - x1, y2 - y1) / 80))
        cv2.rectangle(canvas, (x1 + t // 2, y1 + t // 2), (x2 - t // 2, y2 - t // 2), colour, t)
        if det.landmarks is not None:
            for x, y in det.landmarks:
                if x1 + t <= x <= x2 - t and y1 + t <= y <= y2 - t:
                    cv2.circle(canvas, (int(x), int(y)), t + 1, colour, -1)
        if label:
            scale = max(0.4, min(x2 - x1, y2 - y1) / 400)
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            if tw > x2 - x1 - 2 * t:  # shrink a long name to the box's width
                scale *= (x2 - x1 - 2 * t) / tw
                (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            tw, bottom = min(tw, x2 - x1 - 2 * t), min(y1 + th + base + 2 * t, y2)
            cv2.rectangle(canvas, (x1, y1), (x1 + tw + 2 * t, bottom), colour, -1)
            text = np.zeros_like(canvas[y1:bottom, x1:x1 + tw + 2 * t])
            cv2.putText(text, label, (t, th + t), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
            region = canvas[y1:bottom, x1:x1 + tw + 2 * t]
            np.maximum(region, text, out=region)  # clipped to the label box, so never outside the face
    return canvas

