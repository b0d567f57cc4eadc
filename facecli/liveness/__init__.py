"""Liveness from video: whether the face before the camera is a live person's, not a printed photo, a screen or
a replayed recording. ``verdict.LivenessTrack`` collects one face's frames and judges them; ``blinks``,
``depth`` and ``challenge`` are its checks, ``series`` what they read from each face mesh. Nothing here is
imported by ``import facecli``: numpy and OpenCV load with it."""
