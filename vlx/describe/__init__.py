"""Region describers (region → words). Importing this package registers the built-in ones."""

from vlx.describe import offline  # noqa: F401
from vlx.describe.colors import color_names, dominant_colors

__all__ = ["color_names", "dominant_colors"]
