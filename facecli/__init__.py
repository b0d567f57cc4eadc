"""facecli: face verification and identification from the command line.

Importing the package is cheap on purpose: numpy, OpenCV and onnxruntime are
imported by the modules that need them, when a command needs them.
"""

__version__ = "0.1.0"
