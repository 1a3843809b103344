"""Run folders and what links a run to its readers: the folder layout and run history (`folders`), the
events.jsonl contract (`events`), phases and ETAs (`progress`), the training queue (`queue`) and the training child
process it starts (`process`: `python -m core train --run-dir`, the CLI's own code path).

Public face: `folders.list_runs`, `folders.load_run`, `folders.run_state`, `events.read_events`,
`queue.start_training`, `queue.stop_training`. May import: `core.errors`, `core.data`, `core.config`."""
