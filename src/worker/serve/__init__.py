"""The long-running service: the scheduler and the ops HTTP API with its metrics."""
