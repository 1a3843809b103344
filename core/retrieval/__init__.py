"""Retrieval with a trained model: in-memory search (`search`), two models side by side (`compare`), persistent
document indexes and their queries (`doc_index`, `doc_search`), retrieval-augmented datasets (`rag`), and the
mined negatives inspected and re-mined (`negatives`).

Public face: `doc_index.build_index`, `doc_index.load_index`, `rag.read_questions`, `rag.write_dataset`,
`search.get_index`, `compare.search_both`. May import: `core.training` and below."""
