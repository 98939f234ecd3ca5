"""The semi-supervised method (uncertainty, confidence ranking, curriculum, dual loss,
refinement) and the baselines, each a small module plugged into the one training engine."""
