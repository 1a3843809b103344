"""Dataset files: reading JSONL/JSON/CSV/TSV/Parquet with line numbers (`files`), the checks that name a file, line
and field (`checks`), the validation report and `DataError` (`validate`), the split by query (`split`) and document
folders read and chunked for indexes (`documents`).

Public face: `validate.validate_file`, `validate.load_dataset`, `validate.DataError`, `files.read_texts`,
`split.split_dataset`, `documents.read_documents`. May import: `core.config`."""
