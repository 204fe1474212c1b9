"""AWS Bedrock's Converse API behind the OpenAI-shaped canonical form."""

from lockgate.providers.bedrock.adapter import BedrockAdapter, bedrock_base_url
from lockgate.providers.bedrock.sigv4 import AwsCredentials
from lockgate.providers.bedrock.stream import BedrockStreamParser

__all__ = ["AwsCredentials", "BedrockAdapter", "BedrockStreamParser", "bedrock_base_url"]
