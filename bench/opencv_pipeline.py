"""OpenCV's own face pipeline, the speed anchor of bench/throughput.py: YuNet + SFace in cv2.

What a user would write instead of facecli: ``cv2.FaceDetectorYN`` and
``cv2.FaceRecognizerSF`` on the OpenCV Zoo int8 files (the ones facecli's
YuNet and SFace are built from), every face of each image embedded, one
JSON line per face on stdout. Images larger than ``--det-size`` are
detected and aligned on a copy that size (as facecli does), OpenCV's own
threading is left as it is. Usage:

    ls *.jpg | python bench/opencv_pipeline.py YUNET.onnx SFACE.onnx > faces.jsonl
"""

import json
import sys

import cv2


def main(yunet: str, sface: str, det_size: int = 640) -> None:
    detector = cv2.FaceDetectorYN.create(yunet, "", (320, 320), 0.7, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(sface, "")
    for line in sys.stdin:
        path = line.rstrip("\n")
        image = cv2.imread(path)
        if image is None:
            print(json.dumps({"file": path, "error": "cannot read"}))
            continue
        scale = min(1.0, det_size / max(image.shape[:2]))
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = detector.detect(image)
        for i, face in enumerate([] if faces is None else faces):
            feature = recognizer.feature(recognizer.alignCrop(image, face)).ravel()
            feature /= max(float((feature @ feature) ** 0.5), 1e-12)
            box = [round(float(v) / scale, 1) for v in face[:4]]
            print(json.dumps({"file": path, "face": i, "box": box, "score": round(float(face[14]), 4),
                              "embedding": [round(float(v), 6) for v in feature]}))
        sys.stdout.flush()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], *(int(a) for a in args[2:3]))
