"""The sync engine: one run from lease to run record — assess, plan, reconcile tasks, write, checkpoint."""
