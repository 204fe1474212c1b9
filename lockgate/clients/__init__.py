"""Client-facing API formats other than the canonical (OpenAI) one, translated at the edge."""
