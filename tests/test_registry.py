"""The one registry module: keys written once, providers loaded on first lookup, options checked
against the constructor's signature with a did-you-mean."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vlx.errors import UsageError
from vlx.registry import (DESCRIBERS, FAMILIES, FEWSHOT_EXPLAINERS, METHODS, METRICS, MLLM_METHODS, SEGMENTERS,
                          VERBALIZERS, Registry, check_options, option_names)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_misspelt_method_option_names_the_right_one():
    from vlx.attribute import get_method

    with pytest.raises(UsageError) as e:
        get_method("integrated_gradients", n_stpes=10)
    msg = one_line(e)
    assert "'n_stpes'" in msg and "Did you mean n_steps?" in msg and "batch_size" in msg
    assert get_method("integrated_gradients", n_steps=10).options["n_steps"] == 10


def test_misspelt_mllm_method_option_and_a_method_without_options():
    from vlx.mllm.methods import get_mllm_method

    with pytest.raises(UsageError) as e:
        get_mllm_method("tam", weigths="arc")
    assert "Did you mean weights?" in one_line(e)
    with pytest.raises(UsageError) as e:
        get_mllm_method("rollout", layer=3)
    assert "Its options: none" in one_line(e)
    assert get_mllm_method("llavacam", layer=3).options["layer"] == 3


def test_options_come_from_every_init_along_the_mro():
    from vlx.attribute.perturb import RISE

    names = option_names(RISE)
    assert {"n_masks", "grid", "p", "batch_size", "baseline", "seed"} <= set(names)
    check_options(RISE, {"n_masks": 10, "seed": 1}, "rise")
    with pytest.raises(UsageError):
        check_options(RISE, {"n_mask": 10}, "rise")


def test_a_function_with_kwargs_only_accepts_anything_and_a_plain_one_nothing():
    def open_ended(**kw):
        return kw

    def fixed(model, inputs, seed):
        return None

    assert option_names(open_ended) is None
    check_options(open_ended, {"anything": 1}, "f")
    with pytest.raises(UsageError):
        check_options(fixed, {"anything": 1}, "f")


def test_key_is_written_once():
    reg: Registry = Registry("thing")

    @reg.register
    class A:
        name = "a"

    @reg.register("f")
    def f():
        return 1

    assert reg.get("a") is A and reg.get("f") is f
    with pytest.raises(ValueError, match="once"):
        @reg.register("b")
        class B:
            name = "b"
    with pytest.raises(ValueError, match="twice"):
        @reg.register
        class A2:
            name = "a"
    with pytest.raises(ValueError, match="no `name`"):
        @reg.register
        class Nameless:
            pass


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UsageError) as e:
        METHODS.get("gradcma")
    msg = one_line(e)
    assert "Did you mean gradcam" in msg and "integrated_gradients" in msg


def test_every_family_is_filled_on_first_lookup_without_importing_a_provider():
    code = ("import sys\nfrom vlx.registry import FAMILIES\n"
            "assert 'vlx.attribute.cam' not in sys.modules\n"
            "print({r.kind: len(r.names()) for r in FAMILIES})\n"
            "assert 'vlx.attribute.cam' in sys.modules and 'vlx.evaluate.deletion' in sys.modules")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    counts = eval(p.stdout)  # a dict literal printed above
    assert all(n > 0 for n in counts.values()) and len(counts) == 7


def test_the_seven_families_hold_the_builtins():
    assert {"gradcam", "integrated_gradients", "kernelshap"} <= set(METHODS.names())
    assert {"tam", "llavacam", "occlusion"} <= set(MLLM_METHODS.names())
    assert {"affinity-masked", "saliency", "kernelshap"} <= set(FEWSHOT_EXPLAINERS.names())
    assert {"deletion", "insertion", "pointing-game"} <= set(METRICS.names())
    assert {"superpixels", "felzenszwalb", "sam"} <= set(SEGMENTERS.names())
    assert {"offline", "clip", "vlm"} <= set(DESCRIBERS.names())
    assert {"template", "llm"} <= set(VERBALIZERS.names())
    assert len(FAMILIES) == 7
    for reg in FAMILIES:                 # the key is the class's own name, where it has one
        for key, obj in reg.items():
            own = getattr(obj, "name", None)
            assert not isinstance(own, str) or not own or own == key
