"""The Terraform provider `modelcat`: catalog data sources and the local target's resources."""
