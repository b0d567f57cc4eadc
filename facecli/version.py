"""facecli's version: written here once, read by the package, its build (pyproject.toml) and the schema history
that records which facecli applied each step."""

__version__ = "0.1.0"
