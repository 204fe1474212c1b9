"""Who is calling: API keys, the admin key and OIDC tokens, resolved to a policy."""
