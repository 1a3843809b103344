"""The engine of the Embedding Fine-Tuning Studio: concept packages that import downward only (see
ARCHITECTURE.md and the import-linter contracts in pyproject.toml). Never imports gradio."""
