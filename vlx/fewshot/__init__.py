"""Explain few-shot segmenters: which support pixels made the model segment the query, and which
support shot to replace.

    from vlx.fewshot import MatchingSegmenter, explain_episode
    model = MatchingSegmenter()                     # embedded, no download
    result = explain_episode(model, query, supports, masks, method="affinity-masked")
    result.diagnosis.sentence                       # "Shot 2 contributes least ..."

Modules: ``protocol`` (the model protocol and how to plug DCAMA/DMTNet/HSNet-style models in),
``matching`` (the embedded segmenter), ``explain`` and ``baselines`` (explainers), ``metrics``
(support deletion/insertion, mIoULoss@p), ``diagnose``, ``episodes`` (offline episodes),
``report`` (HTML).
"""

from __future__ import annotations

from vlx.fewshot.api import FewShotResult, explain_episode
from vlx.fewshot.diagnose import Diagnosis, ShotReport, diagnose
from vlx.fewshot.episodes import Episode, episode_suite, make_episode
from vlx.fewshot.explain import FEWSHOT_EXPLAINERS, SupportAttribution, explain_support
from vlx.fewshot.inputs import EpisodeInputs, prepare
from vlx.fewshot.matching import MatchingSegmenter
from vlx.fewshot.metrics import fewshot_metrics, miou_loss, support_curve
from vlx.fewshot.protocol import FewShotModel, FewShotOutput

__all__ = ["FewShotResult", "explain_episode", "Diagnosis", "ShotReport", "diagnose", "Episode", "episode_suite",
           "make_episode", "FEWSHOT_EXPLAINERS", "SupportAttribution", "explain_support", "EpisodeInputs", "prepare",
           "MatchingSegmenter", "fewshot_metrics", "miou_loss", "support_curve", "FewShotModel", "FewShotOutput"]
