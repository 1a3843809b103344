"""Getting a model out: a zip with one top-level folder (optionally with its document index) and a push to the
Hugging Face hub (`archive`).

Public face: `archive.export_zip`, `archive.push_to_hub`. May import: `core.retrieval` and below."""
