"""Region describers (region → words). Importing this package registers the built-in ones
(``offline``, ``clip``, ``vlm``); ``make_describer(spec)`` builds one from a spec string.
Heavy imports (transformers) happen only when a CLIP or VLM describer is built."""

from vlx.describe.colors import color_names, dominant_colors
from vlx.describe.spec import SPEC_HELP, Describer, make_describer
from vlx.describe.traits import TRAIT_RANGES, region_traits, traits_phrase

__all__ = ["SPEC_HELP", "TRAIT_RANGES", "Describer", "color_names", "dominant_colors", "make_describer",
           "region_traits", "traits_phrase"]
