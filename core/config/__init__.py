"""Configuration: the one schema every front end shares (`schema.EmbedConfig`, pydantic), the rules it implies per data format
(`rules`: loss, primary metric), dotted keys (`keys`), untrusted YAML and `key=value` text (`text`), this server's limits from the environment (`limits`), and the files that ship inside
the package, found from it rather than the working directory (`assets`: default config, presets, samples, toy pairs).

Public face: `schema.load_config`, `schema.build_config`, `schema.EmbedConfig`, `schema.ConfigError`,
`limits.Limits`, `limits.public_mode`. Imports nothing else from core: every other package reads a config."""
