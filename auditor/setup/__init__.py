"""The setup stage: which model each setup trains (identity) and how its files link (graph)."""
