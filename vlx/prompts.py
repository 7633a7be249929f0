"""Prompt templates (Jinja2) shipped in ``prompts/`` (inside the wheel as ``vlx/prompts``).
Rendering checks that every variable the template uses is given."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from vlx.errors import UsageError


def prompts_dir() -> Path:
    """The folder of prompt templates: ``vlx/prompts`` in a wheel, ``prompts/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "prompts", here.parent / "prompts"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("vlx's prompts folder is missing from this installation")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(prompts_dir())), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=False)


def required_variables(name: str) -> set[str]:
    """Names the template ``name`` (e.g. ``verbalize_user.j2``) refers to."""
    env = _env()
    source = env.loader.get_source(env, name)[0]
    return meta.find_undeclared_variables(env.parse(source))


def render(name: str, optional: tuple[str, ...] = (), **variables: Any) -> str:
    """Render a prompt template. Variables the template uses and that are not listed in
    ``optional`` must be given; a missing one raises a one-line UsageError naming it."""
    missing = sorted(required_variables(name) - set(variables) - set(optional))
    if missing:
        raise UsageError(f"prompt {name!r} needs variables: {', '.join(missing)}.")
    values = {k: None for k in optional}
    values.update(variables)
    return _env().get_template(name).render(**values).strip()
