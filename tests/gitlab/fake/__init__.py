"""The fake GitLab's parts: its state, GitLab's JSON shapes, and the routes that serve them.

Tests import the fake from `tests.gitlab.fake_gitlab`, which serves it and holds the fixtures.
"""
