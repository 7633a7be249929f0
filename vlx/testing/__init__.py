"""Tiny models for tests and demos, built in-process (no downloads)."""

from vlx.testing.planted import PlantedCNN, planted_classifier, planted_box
from vlx.testing.tiny import tiny_vit_folder

__all__ = ["PlantedCNN", "planted_classifier", "planted_box", "tiny_vit_folder"]
