"""Explaining multimodal-LLM answers: per-answer-token maps (TAM logit lens, LLaVA-CAM,
attention, gradient × input, region perturbation), MSEA multi-scale aggregation, ARC context
relevance, and their metrics. ``vlx ask`` drives ``vlx.mllm.ask.ask``."""

from vlx.mllm.adapter import MLLM, MLLMInputs, MLLMOutput
from vlx.mllm.load import load_mllm

__all__ = ["MLLM", "MLLMInputs", "MLLMOutput", "load_mllm"]
