"""Showing a dataset audit: counts, characters the base model lacks, rejected samples, histograms."""
from __future__ import annotations

import html
from typing import Optional

import ipywidgets as W

__all__ = ["AuditView"]

_REJECTED_SHOWN = 50


class AuditView(W.VBox):
    """Renders ``AuditReport.to_dict()``; empty until :meth:`show` is called."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-audit")
        self.summary = W.HTML()
        self.summary.add_class("ocrtrain-audit-summary")
        self.rejected = W.HTML()
        self.rejected.add_class("ocrtrain-audit-rejected")
        self.rejected.add_class("ocrtrain-table")
        self.charts = W.Box(layout=W.Layout(width="100%", flex_flow="row wrap"))
        self.charts.add_class("ocrtrain-audit-charts")
        self.report: Optional[dict] = None
        self.children = [self.summary, self.charts, self.rejected]

    def clear(self) -> None:
        self.report = None
        self.summary.value = self.rejected.value = ""
        self.charts.children = []

    def show(self, report: dict) -> None:
        self.report = report
        counts = report.get("counts", {})
        parts = [f"<h4>Audit of {html.escape(str(report.get('path', '')))}</h4>",
                 "<div>samples: " + ", ".join(f"{s} <b>{n}</b>" for s, n in counts.items())
                 + f" (total {report.get('total', sum(counts.values()))})</div>",
                 f"<div>{len(report.get('char_counts', {}))} distinct characters</div>"]
        outside = report.get("outside_charset") or {}
        if outside:
            examples = report.get("outside_examples") or {}
            items = "".join(
                f"<tr><td><b>{html.escape(c)}</b> (U+{ord(c):04X})</td><td>{n}</td>"
                f"<td>{html.escape(' · '.join(examples.get(c, [])[:3]))}</td></tr>"
                for c, n in list(outside.items())[:30])
            parts.append(
                f'<div class="ocrtrain-note">{len(outside)} character(s) are not in '
                f"{html.escape(str(report.get('base_charset')))} ({report.get('base_size')} characters): "
                "fine-tune with charset mode <b>extend</b> so the model can learn them.</div>"
                f'<div class="ocrtrain-table ocrtrain-audit-outside"><table><tr><th>character</th>'
                f"<th>count</th><th>examples</th></tr>{items}</table></div>")
        else:
            parts.append(f'<div class="ocrtrain-ok">every character is in {html.escape(str(report.get("base_charset")))}'
                         "</div>")
        if report.get("too_long_count"):
            first = (report.get("too_long") or [{}])[0]
            parts.append(f'<div class="ocrtrain-note">{report["too_long_count"]} label(s) too long for their image '
                         f"(first: {html.escape(repr(first.get('label')))}: {html.escape(str(first.get('reason')))})</div>")
        if report.get("unreadable"):
            parts.append(f'<div class="ocrtrain-error">{len(report["unreadable"])} unreadable image(s) '
                         f"(first: {html.escape(str(report['unreadable'][0].get('reason')))})</div>")
        for w in report.get("warnings") or []:
            parts.append(f'<div class="ocrtrain-note">{html.escape(str(w))}</div>')
        self.summary.value = "".join(parts)

        rejected = report.get("rejected") or []
        if rejected:
            rows = "".join(f"<tr><td>{html.escape(str(r.get('sample')))}</td><td>{html.escape(str(r.get('label')))}</td>"
                           f"<td>{html.escape(str(r.get('reason')))}</td></tr>" for r in rejected[:_REJECTED_SHOWN])
            more = (f"<div class='ocrtrain-help'>{len(rejected) - _REJECTED_SHOWN} more in rejected.csv</div>"
                    if len(rejected) > _REJECTED_SHOWN else "")
            self.rejected.value = (f"<b>{len(rejected)} rejected sample(s)</b><table><tr><th>sample</th><th>label</th>"
                                   f"<th>reason</th></tr>{rows}</table>{more}")
        else:
            self.rejected.value = "<span class='ocrtrain-help'>No rejected samples.</span>"
        self.charts.children = self._figures(report)

    @staticmethod
    def _figures(report: dict) -> list:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=3, subplot_titles=("label length (characters)", "image width (px)",
                                                            "aspect ratio (w/h)"))
        lengths = report.get("label_lengths") or {}
        xs = sorted(lengths, key=lambda k: int(k))
        fig.add_bar(x=[int(k) for k in xs], y=[lengths[k] for k in xs], row=1, col=1, name="labels")
        for col, key in ((2, "width"), (3, "aspect")):
            hist = (report.get(key) or {}).get("histogram") or {}
            edges, counts = hist.get("edges") or [], hist.get("counts") or []
            if counts:
                centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
                fig.add_bar(x=centers, y=counts, row=1, col=col, name=key,
                            width=[(b - a) * 0.95 for a, b in zip(edges, edges[1:])])
        fig.update_layout(height=260, showlegend=False, template="plotly_white",
                          margin=dict(l=40, r=10, t=40, b=30))
        figs = [go.FigureWidget(fig)]
        chars = report.get("char_counts") or {}
        if chars:
            outside = set(report.get("outside_charset") or {})
            top = list(chars.items())[:60]
            # Complete before wrapping: a FigureWidget drops changes made before its view exists.
            bar = go.Figure(go.Bar(
                x=[repr(c)[1:-1] if c != " " else "(space)" for c, _ in top], y=[n for _, n in top],
                marker_color=["#d93025" if c in outside else "#1a73e8" for c, _ in top]))
            bar.update_layout(title="character frequency (red: not in the base model)", height=240,
                              template="plotly_white", margin=dict(l=40, r=10, t=40, b=30),
                              xaxis=dict(type="category"))
            figs.append(go.FigureWidget(bar))
        return figs
