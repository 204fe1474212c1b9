"""AWS Bedrock (Converse for chat, InvokeModel for embeddings) behind the OpenAI-shaped form."""

from lockgate.providers.bedrock.adapter import BedrockAdapter, bedrock_base_url
from lockgate.providers.bedrock.sigv4 import AwsCredentials
from lockgate.providers.bedrock.stream import BedrockStreamParser

__all__ = ["AwsCredentials", "BedrockAdapter", "BedrockStreamParser", "bedrock_base_url"]
