"""The response cache: complete, successful answers kept and served again."""
