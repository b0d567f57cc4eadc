"""The scripts ``facecli models build`` runs in its build-only environment (TensorFlow, tf2onnx, onnx) to turn
registry packages into the model files the manifest pins: each is run as ``__main__`` there, never imported by
the commands."""
