"""Pure qualification rules: deals, criteria, frameworks and assessments. No I/O, no clock reads."""
