"""Liveness from video: whether the face before the camera is a live person's, not a printed photo, a screen or
a replayed recording. ``verdict.LivenessTrack`` collects one face's frames and judges them; ``blinks``,
``depth`` and ``challenge`` are its checks, ``series`` what they read from each face mesh. Nothing here is
imported by ``import facecli``: numpy and OpenCV load with it."""

#: Frames a second the checks need at least: a blink lasts 100-400 ms (bench/liveness.py measures how they fare
#: below it).
MIN_FPS = 15.0
