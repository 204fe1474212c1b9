"""OIDC bearer tokens (GitLab CI `id_tokens`, or any OIDC issuer): verification and identity."""

from lockgate.auth.oidc.token import MAX_TOKEN_CHARS, looks_like_jwt
from lockgate.auth.oidc.verifier import OidcIdentity, OidcVerifier

__all__ = ["MAX_TOKEN_CHARS", "OidcIdentity", "OidcVerifier", "looks_like_jwt"]
