"""Fixtures of the provider tests: a Terraform workspace with the provider mirrored in."""

from tests.provider.terraform_fixtures import workspace

__all__ = ["workspace"]
