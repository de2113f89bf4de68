"""Configuration: typed settings, their loading and validation, secrets, and frameworks."""
