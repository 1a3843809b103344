"""Getting a model out: a zip with one top-level folder (optionally with its document index) and a push to the
Hugging Face hub (`archive`); a run's files, without the weights unless asked, to share or reproduce it (`run_zip`).

Public face: `archive.export_zip`, `archive.push_to_hub`, `run_zip.export_run`. May import: `core.retrieval` and below."""
