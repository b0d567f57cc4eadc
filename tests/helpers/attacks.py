"""Presentation attacks built from real photos and the real clip: what a door camera sees when someone holds up a
printed photo, a phone showing a photo, a photo kept still, or a phone replaying a video of the person.

Shared by the liveness tests and ``bench/liveness.py`` (which imports it as ``bench/common.py`` imports
``fetch_images``). Each attack is a generator of BGR frames (640 x 480 by default) from a seed and a source; the
same seed gives the same frames. The scene is rendered through a pinhole camera: the photo is a flat card in 3D
whose pose follows a smooth random path (a hand holding it), so its image moves by a plane's homography, as a
real print's would.

- ``print``: the photo printed (ink gamut, desaturation, paper fibres, a white margin), held in a moving hand
  (turns up to ``TILT`` degrees about both axes, sways, comes nearer and goes), under light that changes
  (a moving gradient and flicker), through a camera (defocus, sensor noise, JPEG).
- ``screen``: the photo on a phone held the same way: its pixels' RGB stripes resampled by the camera (moiré), a
  glare that slides over the glass, a colour shift (blue cast, raised blacks), a black bezel.
- ``still``: the print without motion: a fixed pose, only the camera's noise and a slight flicker change.
- ``replay``: the live clip played on the phone, from a random start, the phone held nearly still (the attack a
  challenge is for).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("print", "screen", "still", "replay")
SIZE = (640, 480)
FPS = 15.0
SECONDS = 9.0
#: the largest turn of a held photo about its vertical and horizontal axes, degrees
TILT = 30.0
#: focal length in pixels of the 640 px wide camera (a 56 degree field of view, a typical webcam)
FOCAL = 600.0


@dataclass(frozen=True)
class Pose:
    """Where the card is: turned by ``rx, ry, rz`` degrees, its centre at ``x, y, z`` centimetres from the camera."""

    rx: float
    ry: float
    rz: float
    x: float
    y: float
    z: float


def _path(rng: np.random.Generator, n: int, fps: float, amplitude: float, still: bool) -> np.ndarray:
    """A smooth random motion of ``n`` samples: three sinusoids of 0.15-1.2 Hz with random phases, plus hand tremor
    (8-12 Hz, small), scaled to peak at about ``amplitude``; zero (tremor excluded) when ``still``."""
    t = np.arange(n) / fps
    slow = sum(rng.uniform(0.4, 1.0) * np.sin(2 * np.pi * rng.uniform(0.15, 1.2) * t + rng.uniform(0, 2 * np.pi))
               for _ in range(3))
    slow = slow / max(np.abs(slow).max(), 1e-9) * amplitude
    return (0.0 * slow if still else slow) + 0.01 * amplitude * np.sin(2 * np.pi * rng.uniform(8, 12) * t)


def poses(rng: np.random.Generator, n: int, fps: float, still: bool, distance: float, tilt: float = TILT
          ) -> list[Pose]:
    """The card's path: a random mean pose (facing the camera within 10 degrees, ``distance`` cm away), moving
    about it (in and out by a tenth of the distance)."""
    base = Pose(rng.uniform(-10, 10), rng.uniform(-10, 10), rng.uniform(-8, 8), rng.uniform(-2, 2),
                rng.uniform(-1.5, 1.5), distance)
    parts = [_path(rng, n, fps, a, still) for a in (tilt, tilt, 10.0, 2.5, 2.0, 0.1 * distance)]
    return [Pose(base.rx + parts[0][i], base.ry + parts[1][i], base.rz + parts[2][i], base.x + parts[3][i],
                 base.y + parts[4][i], base.z + parts[5][i]) for i in range(n)]


def homography(pose: Pose, card_cm: tuple[float, float], image_px: tuple[int, int],
               size: tuple[int, int] = SIZE) -> np.ndarray:
    """The 3x3 map from the card image's pixels to the camera's: a plane's homography, K [r1 r2 t] S."""
    rx, ry, rz = (math.radians(a) for a in (pose.rx, pose.ry, pose.rz))
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    r = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
         @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
    k = np.array([[FOCAL, 0, size[0] / 2], [0, FOCAL, size[1] / 2], [0, 0, 1]])
    w, h = card_cm
    # card pixels -> centimetres on the card, centred
    s = np.array([[w / image_px[0], 0, -w / 2], [0, h / image_px[1], -h / 2], [0, 0, 1]])
    m = k @ np.column_stack([r[:, 0], r[:, 1], [pose.x, pose.y, pose.z]]) @ s
    return m / m[2, 2]


def background(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A room behind the card: a wall's gradient, blurred furniture-like blocks, fixed per seed."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(70, 190, 3).astype(np.float32)
    img = (base + (xx / w - 0.5)[..., None] * rng.uniform(-60, 60, 3)
           + (yy / h - 0.5)[..., None] * rng.uniform(-40, 40, 3))
    for _ in range(rng.integers(3, 8)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        img[y0:y0 + rng.integers(40, 250), x0:x0 + rng.integers(40, 250)] = rng.uniform(20, 235, 3)
    return cv2.GaussianBlur(np.clip(img, 0, 255), (0, 0), 6)


def printed(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a print: inks' narrower range, a little desaturation, paper fibres, a white margin (float32)."""
    img = photo.astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.75, 0.95)
    img = 18 + img * rng.uniform(0.82, 0.9)
    h, w = img.shape[:2]
    fibres = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(0.8, 2.0))
    img = img * (1 + 0.04 * fibres / max(float(fibres.std()), 1e-6))[..., None]
    m = max(4, round(0.05 * max(h, w)))
    return cv2.copyMakeBorder(np.clip(img, 0, 255), m, m, m, m, cv2.BORDER_CONSTANT, value=(238, 240, 236))


def on_screen(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a phone shows it: a blue cast and raised blacks, at a screen resolution of 230-370 pixels on its
    longer side, each pixel three vertical R, G, B stripes (the grid the camera's own pixels resample into moiré),
    in a black bezel."""
    cast = np.array([rng.uniform(1.0, 1.12), rng.uniform(0.97, 1.05), rng.uniform(0.88, 0.97)], np.float32)
    gain, depth, side = rng.uniform(0.85, 0.95), rng.uniform(0.1, 0.25), rng.uniform(230, 370)
    scale = side / max(photo.shape[:2])
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
    big = cv2.resize(20 + small * gain * cast, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    stripes = np.full((1, 3, 3), 1 - depth, np.float32)
    stripes[0, [0, 1, 2], [2, 1, 0]] = 1 + 2 * depth  # BGR: the red stripe first, left to right
    screen = np.clip(big * np.tile(stripes, (big.shape[0], big.shape[1] // 3, 1)), 0, 255)
    screen = cv2.GaussianBlur(screen, (0, 0), 0.7)  # the camera lens's blur, which keeps only part of the moiré
    m = max(6, round(0.06 * max(screen.shape[:2])))
    return cv2.copyMakeBorder(screen, m, m, m, m, cv2.BORDER_CONSTANT, value=(12, 12, 14))


def _camera(frame: np.ndarray, rng: np.random.Generator, noise: np.ndarray) -> np.ndarray:
    """Defocus, sensor noise (one of a bank of noise frames, shifted at random) and the camera's JPEG: what a
    cheap door camera adds to any scene."""
    frame = cv2.GaussianBlur(frame, (0, 0), 0.7)
    grain = noise[rng.integers(len(noise))]
    frame += np.roll(grain, (int(rng.integers(grain.shape[0])), int(rng.integers(grain.shape[1]))), axis=(0, 1))
    out = np.clip(frame, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


def _lighting(rng: np.random.Generator, n: int, fps: float, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """A light that moves and changes: a multiplicative gradient turning over the scene, and a flicker."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w - 0.5, yy / h - 0.5
    turn, speed, depth = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.4)
    level, swing = rng.uniform(0.8, 1.1), rng.uniform(0.05, 0.2)
    for i in range(n):
        a = turn + speed * i / fps
        flicker = 1 + swing * math.sin(2 * math.pi * 0.3 * i / fps)
        gain = level * flicker * (1 + depth * (np.cos(a) * xx + np.sin(a) * yy))
        yield gain[..., None]


def _glare(h: np.ndarray, card: tuple[int, int], phase: float, t: float, grid: tuple[np.ndarray, np.ndarray]
           ) -> np.ndarray:
    """A window's reflection on the glass: a bright soft ellipse fixed on the screen, sliding as it turns."""
    cx = card[0] * (0.3 + 0.4 * math.sin(0.4 * t + phase))
    cy = card[1] * (0.3 + 0.3 * math.cos(0.3 * t))
    centre = cv2.perspectiveTransform(np.array([[[cx, cy]]], np.float32), h)[0, 0]
    xx, yy = grid
    r = 0.12 * xx.shape[1]
    return 110 * np.exp(-(((xx - centre[0]) / (1.6 * r)) ** 2 + ((yy - centre[1]) / r) ** 2))[..., None]


def _render(cards: Iterator[np.ndarray], card_cm: tuple[float, float], path: Sequence[Pose], seed: int,
            fps: float, size: tuple[int, int], glare: bool) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    back = background(rng, size)
    lights = _lighting(rng, len(path), fps, size)
    sigma, phase = rng.uniform(2.0, 6.0), rng.uniform(0, 2 * np.pi)
    noise = sigma * rng.standard_normal((4, size[1], size[0], 3), dtype=np.float32)
    grid = tuple(np.mgrid[0:size[1], 0:size[0]].astype(np.float32)[::-1])
    for i, (pose, card) in enumerate(zip(path, cards)):
        h = homography(pose, card_cm, (card.shape[1], card.shape[0]), size)
        warped = cv2.warpPerspective(card, h, size, flags=cv2.INTER_LINEAR)
        corners = np.array([[0, 0], [card.shape[1], 0], [card.shape[1], card.shape[0]], [0, card.shape[0]]],
                           np.float32)
        inside = np.zeros((size[1], size[0]), np.uint8)
        outline = cv2.perspectiveTransform(corners[None], h)[0] * 16
        cv2.fillConvexPoly(inside, outline.round().astype(np.int32), 255, cv2.LINE_AA, 4)
        alpha = (inside.astype(np.float32) / 255)[..., None]
        frame = warped * alpha + back * (1 - alpha)
        if glare:
            frame += alpha * _glare(h, (card.shape[1], card.shape[0]), phase, i / fps, grid)
        yield _camera(frame * next(lights), rng, noise)


def _card_size(image: np.ndarray, width_cm: float) -> tuple[float, float]:
    return width_cm, width_cm * image.shape[0] / image.shape[1]


def _distance(rng: np.random.Generator, width_cm: float, across: tuple[float, float]) -> float:
    """How far to hold a card ``width_cm`` wide for it to span ``across`` pixels of the image (a random share of
    that range): an attacker holds the picture where the face looks as large as a visitor's."""
    return FOCAL * width_cm / rng.uniform(*across)


def photo_attack(kind: str, photo: np.ndarray, seed: int, fps: float = FPS, seconds: float = SECONDS,
                 size: tuple[int, int] = SIZE) -> Iterator[np.ndarray]:
    """``print``, ``screen`` or ``still`` frames of ``photo`` (BGR), ``seconds`` long at ``fps``."""
    if kind not in ("print", "screen", "still"):
        raise ValueError(f"not a photo attack: {kind}")
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    if kind == "screen":
        card = on_screen(photo, rng)
        width = rng.uniform(12, 18)  # a phone's to a small tablet's screen, bezel included
    else:
        card = printed(photo, rng)
        width = rng.uniform(13, 20)
    # the portrait is 2.2 face widths wide: its face spans 120-190 px, a visitor's at 0.6-1 m
    path = poses(rng, n, fps, still=kind == "still", distance=_distance(rng, width, (270, 420)))
    return _render(iter([card] * n), _card_size(card, width), path, seed, fps, size, glare=kind == "screen")


def replay_attack(clip: Sequence[np.ndarray], clip_fps: float, seed: int, fps: float = FPS,
                  seconds: float = SECONDS, size: tuple[int, int] = SIZE, start: float | None = None,
                  ) -> Iterator[np.ndarray]:
    """The clip played on a phone held nearly still (turns of a few degrees), from ``start`` seconds (random by
    default), looping; the screen's stripes, glare and colour shift as for ``screen``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    begin = rng.uniform(0, len(clip) / clip_fps) if start is None else start
    first = on_screen(clip[0], np.random.default_rng(seed))
    width = rng.uniform(14, 20)

    def cards() -> Iterator[np.ndarray]:
        for i in range(n):
            k = int((begin + i / fps) * clip_fps) % len(clip)
            yield on_screen(clip[k], np.random.default_rng(seed))

    # the clip's face is a third of its width: it spans 120-190 px
    path = poses(rng, n, fps, still=False, distance=_distance(rng, width, (380, 560)), tilt=3.0)
    return _render(cards(), _card_size(first, width), path, seed, fps, size, glare=True)


def portrait(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The part of ``image`` an attacker would print: a square about the face's ``box`` (x1, y1, x2, y2), 2.2 face
    widths wide, padded with the edge's pixels where it leaves the photo."""
    x1, y1, x2, y2 = box
    side = 2.2 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 - 0.05 * side
    m = np.array([[1, 0, side / 2 - cx], [0, 1, side / 2 - cy]], np.float32)
    n = int(round(side))
    return cv2.warpAffine(image, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
