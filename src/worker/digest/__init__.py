"""The weekly digest: each owner's flagged deals and each manager's team rollup, by e-mail and Slack.

compose (pure: who gets what) -> render (Jinja2: text, HTML, Slack blocks) -> deliver (SMTP, Slack Web
API, each through one tenacity policy) with the state store's delivery ledger guarding "at most once per
recipient, channel and week" (run). See docs/digest.md.
"""
