"""Deploying a catalog: synth → embedded Terraform → running endpoints, and looking at them."""
