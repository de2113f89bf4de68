"""The sync worker: settings, state store, pipeline, scheduler, ops API and command line."""
