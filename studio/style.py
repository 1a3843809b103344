"""The studio's few style rules, passed to `launch` (Gradio 6 takes css there), and a redraw of plots on tab switch.

Tables: headers never wrap letter by letter and numbers never split, at 1280 px as on wide screens; long cells wrap
at word boundaries. The copy-as-command wraps instead of running off the right edge."""

from __future__ import annotations

from typing import Any

STUDIO_CSS = """
.gradio-container table th, .gradio-container [role="columnheader"] { white-space: nowrap; min-width: 4.5em; }
.gradio-container table th * , .gradio-container [role="columnheader"] * { white-space: nowrap; word-break: keep-all; }
.gradio-container table td { word-break: normal; overflow-wrap: normal; }  /* words and numbers stay whole */
.gradio-container table td.number, .gradio-container .prose td { white-space: nowrap; }
.gradio-container .prose td:last-child { white-space: normal; }
#copy-command pre, #copy-command .cm-content, #copy-command .cm-line { white-space: pre-wrap !important;
  word-break: break-all; }
.js-plotly-plot, .js-plotly-plot .plot-container, .js-plotly-plot .svg-container { width: 100% !important; }
@media (max-width: 640px) {  /* a phone: tables keep readable columns and scroll sideways instead of clipping */
  .gradio-container .table-container { overflow-x: auto !important; }
  .gradio-container .table-wrap { min-width: 720px; }
  #negatives-table .table-wrap { min-width: 1200px; }
}
"""

# A plot drawn inside a hidden tab gets the hidden width; a resize event makes plotly measure again once shown.
RESIZE_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 60); }"


def redraw_plots_on_select(tab: Any) -> None:
    """Make the plots of `tab` (a gr.Tab) take the full width when it is shown."""
    if tab is not None and hasattr(tab, "select"):
        tab.select(None, None, None, js=RESIZE_JS, api_visibility="private", show_progress="hidden")


def _has_rows(value: Any) -> bool:
    if value is None:
        return False
    if hasattr(value, "empty"):
        return not value.empty
    if isinstance(value, dict):  # the frontend's {"headers", "data"} payload
        return bool(value.get("data")) and any(any(c not in (None, "") for c in row) for row in value["data"])
    return bool(len(value))


def nothing_yet(table: Any, note: str) -> Any:
    """Show `note` instead of `table` (a gr.Dataframe, created just before) while it has no rows: an empty grid
    shows placeholder headers "1 2 3" and an add-row button, which read as broken. Returns the note's Markdown."""
    import gradio as gr

    shown = _has_rows(table.value)
    table.visible = shown
    md = gr.Markdown(f"*{note}*", visible=not shown)
    table.change(
        lambda v: (gr.update(visible=_has_rows(v)), gr.update(visible=not _has_rows(v))),
        table,
        [table, md],
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )
    return md
