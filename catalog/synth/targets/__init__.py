"""One module per target, each behind ``catalog.synth.base.Target``."""
