"""Guardrails: detectors for secrets and personal data, and the rules that act on them."""
