"""One module per studio tab, each exposing `create_<name>_tab(ctx: StudioContext) -> dict[str, component]`."""
