"""Outcomes of qualification: how deals qualified at entry closed against those that were not (issue 13)."""
