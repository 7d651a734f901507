"""Scoring that needs more than a template: reference-exact GSM8K, IFEval and HumanEval."""
