"""Public mode, a server shared by strangers: signed visitor ids with one folder each and their clean-up
(`visitors`), and the one rule for every path and model name a visitor gives (`sandbox.Sandbox`: resolve, then require
the visitor's folder or a shipped read-only root). The limits themselves are configuration (`core.config.limits`).

May import: `core.models` and below."""
