"""Allow ``python -m facecli``."""

from facecli.cli import main

if __name__ == "__main__":
    main()
