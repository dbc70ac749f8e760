"""Quality feedback: what each version of a binding did (telemetry, outcomes) and the verdict on it."""
