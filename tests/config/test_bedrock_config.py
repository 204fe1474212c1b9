"""`type: bedrock` needs `aws` (region and a key pair, or an API key); `aws` is bedrock-only."""

from __future__ import annotations

import pytest

from lockgate.config.loader import ConfigError
from tests.conftest import config_from_yaml


def provider(body: str) -> str:
    return f"providers:\n  - {{name: aws, {body}}}\n"


def test_key_pair_and_region() -> None:
    config = config_from_yaml(
        provider("type: bedrock, aws: {region: eu-west-1, access_key_id: '${A}', "
                 "secret_access_key: '${S}'}"),
        A="AKID", S="secret",
    )  # fmt: skip
    aws = config.providers[0].aws
    assert aws is not None
    assert aws.region == "eu-west-1"
    assert aws.secret_access_key is not None
    assert aws.secret_access_key.get_secret_value() == "secret"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("type: bedrock", "needs `aws"),
        ("type: bedrock, aws: {region: us-east-1}", "access_key_id"),
        ("type: bedrock, aws: {region: us-east-1, access_key_id: x}", "both"),
        ("type: openai, aws: {region: us-east-1}", "bedrock only"),
        (
            "type: bedrock, aws: {region: Frankfurt, access_key_id: x, secret_access_key: y}",
            "region",
        ),
    ],
)
def test_invalid(body: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_yaml(provider(body))
