"""Evaluation and benchmark commands (`facegate eval ...`, `facegate bench`): figures."""
