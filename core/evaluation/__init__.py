"""Evaluation: the library's evaluators built from a split (`evaluators`: IR, triplet, similarity, with
normalised metric names), when to evaluate during training (`schedule`), and small-data advice (`advice`).

Public face: `evaluators.build_evaluator`, `evaluators.evaluate`, `evaluators.metrics_table`. May import:
`core.models` and below."""
