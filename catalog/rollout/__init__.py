"""Progressive delivery from git: a rollout's record, its decisions, the controller, history, replay, rollback."""
