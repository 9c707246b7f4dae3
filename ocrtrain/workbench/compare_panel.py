"""Compare tab: origin vs fine-tuned on the test split, the run's versions, and try-it-yourself.

The comparison is :func:`ocrtrain.evaluate.compare`; its report is saved under RUN/reports/ so
reopening the page shows the last one. The gallery reads the crops back from the LMDB the
report names, so what is shown is exactly what was scored.
"""
from __future__ import annotations

import difflib
import html
import threading
from pathlib import Path
from typing import Optional

import ipywidgets as W

from ocrtrain import runfolder
from ocrtrain.errors import InputError, OcrtrainError
from ocrtrain.originspec import DEFAULT_ORIGIN
from ocrtrain.readconfig import DEVICE_CHOICES, ReadConfig

from .downloads import data_uri_link, png_data_uri
from .feedback import StatusBox, describe_error, refusal_with_fix
from .pickers import DatasetPicker, RunVersionPicker, run_dataset, run_versions
from .tasks import BackgroundTask, Throttle
from .workspace import Workspace

__all__ = ["ComparePanel", "highlight_errors", "try_it_refusal", "TRY_IT_FIX"]

# Raw and whitespace-normalised figures side by side (ocrtrain.metrics: "_ws" = runs of spaces
# collapsed, "_ci" = any case); the first five are also drawn as bars.
METRICS = [("accuracy", "line accuracy", True), ("accuracy_ws", "line accuracy (spaces collapsed)", True),
           ("cer", "CER", False), ("cer_ws", "CER (spaces collapsed)", False),
           ("accuracy_ci_ws", "line accuracy (any case, spaces collapsed)", True),
           ("wer", "WER", False), ("ned", "NED", False), ("mean_confidence", "mean confidence", True)]
GALLERY_ROWS = 40
_MODE_NAMES = {"raw": "as read", "ws": "spaces collapsed", "ci": "any case", "ci_ws": "any case, spaces collapsed"}
#: What helps a try-it image over the upload limit (the page's own fix, a path on the server, does not).
TRY_IT_FIX = ("try a smaller image (crop the line, or scale the page down), or restart the dashboard with "
              "`ocrtrain dashboard --max-upload-mb N`")


def try_it_refusal(message: str) -> str:
    """The page's upload refusal with the fix for a try-it image (other messages unchanged)."""
    return refusal_with_fix(message, TRY_IT_FIX)


def highlight_errors(prediction: str, label: str) -> str:
    """HTML of `prediction` with characters that differ from `label` marked (class "bad")."""
    out = []
    sm = difflib.SequenceMatcher(None, label, prediction, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        got, want = html.escape(prediction[j1:j2]), html.escape(label[i1:i2])
        if tag == "equal":
            out.append(got)
        elif tag == "delete":
            out.append(f'<span class="bad" title="missing {want}">‸</span>')
        else:
            title = f"expected {want}" if want else "extra"
            out.append(f'<span class="bad" title="{title}">{got}</span>')
    return "".join(out) or '<span class="bad" title="nothing read">∅</span>'


def _short(spec: str) -> str:
    """``run:/long/path/NAME@best`` -> ``NAME@best``; other specs unchanged."""
    if spec.startswith("run:"):
        head, sep, version = spec[4:].rpartition("@")
        return f"{Path(head or version).name}{sep}{version if head else ''}"
    return spec


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _valsets_table(run) -> str:
    """Every validation set of `run`, the origin (step 0) vs the best version: the forgetting check."""
    from ocrtrain.valsets import validation_summary

    try:
        rows = validation_summary(run)
    except OcrtrainError:
        return ""
    if not rows:
        return ""
    def points(delta) -> str:
        return "–" if delta is None else f"{100 * delta:+.1f}"

    body = "".join(
        f"<tr class='ocrtrain-verdict-{html.escape(r['verdict'].split()[0])}'><td>{html.escape(r['val_set'])}</td>"
        f"<td>{r['n'] or '–'}</td><td>{_pct(r['origin'])}</td><td>{_pct(r['version'])}</td>"
        f"<td>{points(r['delta'])}</td><td>{html.escape(r['verdict'])}</td></tr>" for r in rows)
    return (f"<b>Every validation set: the origin (step 0) vs step {rows[0]['step']}</b> "
            "<span class='ocrtrain-help'>(line accuracy, spaces collapsed; one line's change counts as "
            "noise; a worse general set means forgetting)</span><table><tr><th>set</th><th>lines</th>"
            f"<th>origin</th><th>step {rows[0]['step']}</th><th>points</th><th>verdict</th></tr>{body}</table>")


class ComparePanel(W.VBox):
    """Before/after gallery, metrics, confusions, versions and an upload box to try both models."""

    def __init__(self, workspace: Workspace, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-compare")
        self.workspace = workspace
        self.report = None  # the last CompareReport (or its dict when loaded from disk)
        self.task: Optional[BackgroundTask] = None
        self._predictors: dict[tuple[str, str], object] = {}  # (spec, device)
        self._predictor_lock = threading.Lock()

        self._build_inputs(workspace)
        self._build_results()

        from .page_compare import PageCompare  # whole pages through Reader.readtext, before / after

        self.pages = PageCompare(workspace, before=lambda: self.before.value, after=lambda: self.after.spec,
                                 run=lambda: self.after.run)

        self.run_button.on_click(self._on_compare)
        self.filter.observe(lambda _c: self._render_gallery(), names="value")
        self.after.observe(self._on_run_changed, names="run")
        self.download_button.on_click(self._on_download)
        self.upload.observe(self._on_upload, names="value")
        # The page refuses a file over the upload limit before sending it; the message arrives as `error`.
        self.upload.observe(self._on_upload_refused, names="error")

        self.children = [
            W.HTML("<h3>Before / after on the test set</h3>"),
            self.after, W.HBox([self.before, self.device]), self.data, self.limit,
            W.HBox([self.run_button, self.progress]), self.status,
            self.metrics_html, self.charts,
            W.HTML("<b>Same crops, both readings</b> <span class='ocrtrain-help'>(red: characters that differ "
                   "from the label; hover for the expected text)</span>"),
            self.filter, self.gallery,
            W.HTML("<h3>Versions of the run</h3>"), self.versions_html, self.valsets_html,
            W.HBox([self.download_version, self.download_button]), self.download_link,
            W.HTML("<h3>Try it yourself</h3><span class='ocrtrain-help'>Upload a cropped text line; "
                   "both models read it.</span>"),
            self.upload, self.try_status, self.try_result, self.pages,
        ]
        self._on_run_changed()

    def _build_inputs(self, workspace: Workspace) -> None:
        """The models, data and device to compare, the Compare button and its progress."""
        style = {"description_width": "120px"}
        self.before = W.Text(value=DEFAULT_ORIGIN, description="before (origin)", style=style,
                             layout=W.Layout(width="400px"),
                             tooltip="origin spec: english_g2, run:PATH, easyocr:DIR/NAME, ...")
        self.before.add_class("ocrtrain-compare-before")
        self.after = RunVersionPicker(workspace, description="after (run)")
        self.data = DatasetPicker(workspace, description="test data")
        self.limit = W.IntText(value=ReadConfig.compare_limit, description="samples", style=style,
                               layout=W.Layout(width="220px"), tooltip="how many test samples to read (0 = all)")
        self.limit.add_class("ocrtrain-compare-limit")
        self.device = W.Dropdown(options=list(DEVICE_CHOICES), value=ReadConfig.device, description="device",
                                 style=style, tooltip="auto: a GPU when torch sees one, else cpu",
                                 layout=W.Layout(width="220px"))
        self.run_button = W.Button(description="Compare", icon="balance-scale", button_style="primary")
        self.run_button.add_class("ocrtrain-compare-run")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="300px", visibility="hidden"))
        self.progress.add_class("ocrtrain-compare-progress")
        self.status = StatusBox()

    def _build_results(self) -> None:
        """Metrics, charts, the gallery, the versions with their download, the try-it upload."""
        self.metrics_html = W.HTML()
        self.metrics_html.add_class("ocrtrain-compare-metrics")
        self.metrics_html.add_class("ocrtrain-table")
        self.filter = W.ToggleButtons(options=[("regressions first", "all"), ("worse", "worse"),
                                               ("better", "better"), ("still wrong", "wrong")],
                                      value="all", style={"button_width": "120px"})
        self.filter.add_class("ocrtrain-gallery-filter")
        self.gallery = W.HTML()
        self.gallery.add_class("ocrtrain-gallery")
        self.charts = W.Box(layout=W.Layout(width="100%", flex_flow="row wrap"))
        self.charts.add_class("ocrtrain-compare-charts")
        self.versions_html = W.HTML()
        self.versions_html.add_class("ocrtrain-versions")
        self.versions_html.add_class("ocrtrain-table")
        self.valsets_html = W.HTML()
        self.valsets_html.add_class("ocrtrain-valsets")
        self.valsets_html.add_class("ocrtrain-table")
        self.download_version = W.Dropdown(description="version", layout=W.Layout(width="300px"))
        self.download_button = W.Button(description="Prepare download", icon="download")
        self.download_button.add_class("ocrtrain-version-download")
        self.download_link = W.HTML()
        self.download_link.add_class("ocrtrain-version-link")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload a line image",
                                   layout=W.Layout(width="auto", min_width="190px"))
        self.upload.add_class("ocrtrain-try-upload")
        self.try_result = W.HTML()
        self.try_result.add_class("ocrtrain-try-result")
        self.try_status = StatusBox()

    # -- run / versions -----------------------------------------------------------------
    def refresh(self) -> None:
        self.after.refresh()
        self.data.refresh()
        self.pages.refresh()
        self._on_run_changed()

    def _on_run_changed(self, _change=None) -> None:
        run = self.after.run
        if run:
            ds = run_dataset(Path(run))
            if ds and Path(ds).is_dir():
                self.data.refresh(select=str(Path(ds).resolve()))
            try:
                origin = runfolder.read_config(run).get("origin")
            except OcrtrainError:
                origin = None
            if isinstance(origin, str) and origin:
                self.before.value = origin
        self._render_versions()
        self._load_saved_report()
        self.pages.load_saved()

    def _render_versions(self) -> None:
        run = self.after.run
        if not run:
            self.versions_html.value = "<span class='ocrtrain-help'>No trained run yet.</span>"
            self.valsets_html.value = ""
            self.download_version.options = []
            return
        try:
            versions = runfolder.read_versions(run)
        except OcrtrainError:
            versions = runfolder.Versions()
        rows = []
        for v in versions.versions:
            m = v.metrics
            mark = " ★" if versions.best and v.file == versions.best else ""
            loss = m.get("val_loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, (int, float)) else "–"
            rows.append(f"<tr><td>{v.step}{mark}</td><td>{html.escape(v.file)}</td>"
                        f"<td>{_pct(m.get('cer'))}</td><td>{_pct(m.get('accuracy'))}</td><td>{loss_text}</td></tr>")
        self.versions_html.value = ("<table><tr><th>step</th><th>file</th><th>val CER</th><th>val line accuracy</th>"
                                    "<th>val loss</th></tr>" + "".join(rows) + "</table>") if rows else \
            "<span class='ocrtrain-help'>No validated checkpoint yet.</span>"
        self.valsets_html.value = _valsets_table(run)
        options = run_versions(Path(run))
        self.download_version.options = options
        self.download_version.value = options[0][1] if options else None

    def _on_download(self, _b=None) -> None:
        run, version = self.after.run, self.download_version.value
        if not run or not version:
            self.download_link.value = '<div class="ocrtrain-error">pick a run and a version first</div>'
            return
        try:
            from ocrtrain.runs import Run

            path = Path(Run(run).checkpoint_path(version))
        except Exception as exc:
            self.download_link.value = f'<div class="ocrtrain-error">{html.escape(describe_error(exc))}</div>'
            return
        if not path.is_file():
            self.download_link.value = f'<div class="ocrtrain-error">{html.escape(str(path))} does not exist</div>'
            return
        self.download_link.value = data_uri_link(path, f"{Path(run).name}-{version}.pt")

    # -- comparing ----------------------------------------------------------------------
    def _on_compare(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            return
        try:
            after = self.after.spec
            if not after:
                raise InputError("no run to compare: train one on the Train tab first (or pick one above)")
            if not self.data.value:
                raise InputError("no test data: generate or import a dataset on the Dataset tab first")
            before = self.before.value.strip()
            if not before:
                raise InputError("the 'before' model is empty: give an origin spec such as english_g2")
            if self.limit.value < 0:
                raise InputError(f"samples must be >= 0 (0 = all), got {self.limit.value}")
        except InputError as exc:
            self.status.error(exc)
            return
        limit = self.limit.value or None
        data, device, run = self.data.value, self.device.value, self.after.run
        self.status.note(f"reading the test crops with {before} and {after} ...")
        self.run_button.disabled = True
        self.progress.layout.visibility = "visible"
        throttle = Throttle(0.5)

        def on_event(event) -> None:
            total = getattr(event, "total", 0)
            if total and throttle.ready(force=event.done >= total):
                self.progress.max = total
                self.progress.value = event.done

        def work(stop):
            from ocrtrain.evaluate import compare

            report = compare(before, after, data, limit=limit, device=ReadConfig(device=device).resolved_device(),
                             callback=on_event)
            report.save_in_run(run)
            return report

        def done(report) -> None:
            self.show_report(report.to_dict())
            c = report.counts
            self.status.ok(f"compared {sum(c.values())} test lines: {c['better']} better, {c['worse']} worse, "
                           f"{c['same']} the same")

        def finish() -> None:
            self.run_button.disabled = False
            self.progress.layout.visibility = "hidden"

        self.task = BackgroundTask(work, done, self.status.error, finish, name="ocrtrain-compare").start()

    def _load_saved_report(self) -> None:
        run = self.after.run
        # The newest comparison by the time it was made, whoever made it (dashboard, CLI, notebook).
        found = runfolder.read_latest_report(run, "compare") if run else None
        if found is not None:
            path, report = found
            try:
                self.show_report(report)
                self.status.note(f"showing the last comparison ({path.name}); press Compare to redo it")
                return
            except (KeyError, TypeError, ValueError):
                pass  # not a comparison this panel can show
        self.report = None
        self.metrics_html.value = self.gallery.value = ""
        self.charts.children = []

    def show_report(self, report: dict) -> None:
        """Render a CompareReport.to_dict() (fresh or loaded from RUN/reports/)."""
        self.report = report
        m = report["metrics"]
        rows = []
        for key, label, higher_better in METRICS:
            b, a = m["before"].get(key), m["after"].get(key)
            d = m["delta"].get(key)
            good = d is not None and ((d > 0) == higher_better) and d != 0
            cls = "good" if good else ("bad" if d else "")
            rows.append(f"<tr><td>{label}</td><td>{_pct(b)}</td><td>{_pct(a)}</td>"
                        f"<td class='{cls}'>{'' if d is None else f'{100 * d:+.2f} pts'}</td></tr>")
        c = report["counts"]
        self.metrics_html.value = (
            f"<table><tr><th>metric</th><th title='{html.escape(report['before'])}'>before: "
            f"{html.escape(_short(report['before']))}</th><th title='{html.escape(report['after'])}'>after: "
            f"{html.escape(_short(report['after']))}</th><th>change</th></tr>{''.join(rows)}</table>"
            f"<div class='ocrtrain-help'>{report.get('split', 'test')} split of {html.escape(str(report.get('data')))}: "
            f"n={m['after'].get('n')} · better {c['better']} · worse {c['worse']} · same {c['same']}"
            f" (per line, {_MODE_NAMES.get(report.get('verdict', {}).get('mode', 'raw'), 'as read')})</div>")
        self._render_charts(report)
        self._render_gallery()

    def _render_charts(self, report: dict) -> None:
        import plotly.graph_objects as go

        m = report["metrics"]
        keys = [(k, label) for k, label, _ in METRICS[:5]]
        # Figures are complete before they become widgets: a FigureWidget drops changes made
        # before its view exists in the browser.
        bars = go.Figure(layout=dict(title="metrics (lower CER/WER/NED is better)", barmode="group",
                                     height=320, width=520, template="plotly_white",
                                     margin=dict(l=40, r=10, t=40, b=40), yaxis=dict(tickformat=".0%")))
        for side in ("before", "after"):
            bars.add_bar(x=[label for _, label in keys], y=[m[side].get(k) or 0 for k, _ in keys], name=side)
        bars = go.FigureWidget(bars)
        heat = self._confusion_heatmap(report)
        self.charts.children = [bars] + ([heat] if heat is not None else [])

    @staticmethod
    def _confusion_heatmap(report: dict):
        import plotly.graph_objects as go

        confusions = (report.get("top_confusions") or {}).get("after") or []
        subs = [r for r in confusions if r["count"]]
        rows = report.get("rows") or []
        # Rebuild substitutions over all rows of the after model for a fuller picture.
        from ocrtrain.metrics import char_confusions

        full = char_confusions([r["after"] for r in rows], [r["label"] for r in rows]) if rows else None
        if full is not None:
            counts = dict(full["substitutions"])
            for ch, n in full["deletions"].items():
                counts[(ch, "∅")] = n
            for ch, n in full["insertions"].items():
                counts[("∅", ch)] = n
        else:
            counts = {(r["gold"] or "∅", r["pred"] or "∅"): r["count"] for r in subs}
        if not counts:
            return None
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:40]
        golds = sorted({g for (g, _), _n in top})
        preds = sorted({p for (_g, p), _n in top})
        z = [[counts.get((g, p), 0) for p in preds] for g in golds]
        shown = lambda c: "(space)" if c == " " else repr(c)[1:-1]  # noqa: E731  (a space must stay visible)
        fig = go.Figure(go.Heatmap(z=z, x=[shown(p) for p in preds], y=[shown(g) for g in golds],
                                         colorscale="Reds", hovertemplate="label %{y} read as %{x}: %{z}<extra></extra>"))
        fig.update_layout(title="after: label character (y) read as (x)", height=320, width=460,
                          template="plotly_white", margin=dict(l=50, r=10, t=40, b=40),
                          xaxis=dict(type="category"), yaxis=dict(type="category"))
        return go.FigureWidget(fig)

    def _render_gallery(self) -> None:
        report = self.report
        if not report:
            self.gallery.value = ""
            return
        mode = self.filter.value
        rows = report.get("rows") or []
        worse = report.get("regressions") or [r for r in rows if r["verdict"] == "worse"]
        better = report.get("improvements") or [r for r in rows if r["verdict"] == "better"]
        wrong = [r for r in rows if r["verdict"] == "same" and r["after"] != r["label"]]
        right = [r for r in rows if r["verdict"] == "same" and r["after"] == r["label"]]
        chosen = {"all": worse + better + wrong + right, "worse": worse, "better": better, "wrong": wrong}[mode]
        chosen = chosen[:GALLERY_ROWS]
        images = self._crops(report.get("data"), [r["index"] for r in chosen])
        body = []
        for r in chosen:
            img = images.get(r["index"])
            img_html = f'<img src="{img}"/>' if img else "(image unavailable)"
            verdict = {"worse": "▼ worse", "better": "▲ better", "same": "= same"}[r["verdict"]]
            body.append(
                f'<tr class="verdict-{r["verdict"]}"><td>{img_html}</td><td class="text">{html.escape(r["label"])}</td>'
                f'<td class="text">{highlight_errors(r["before"], r["label"])}</td>'
                f'<td class="text">{highlight_errors(r["after"], r["label"])}</td><td>{verdict}</td></tr>')
        if not body:
            self.gallery.value = "<span class='ocrtrain-help'>No lines in this group.</span>"
            return
        self.gallery.value = (f"<table><tr><th>crop</th><th>label</th><th>before</th><th>after</th><th></th></tr>"
                              f"{''.join(body)}</table>")

    @staticmethod
    def _crops(lmdb_path: Optional[str], indices: list[int]) -> dict[int, str]:
        if not lmdb_path or not indices:
            return {}
        from ocrtrain.lmdb_io import LmdbReader, is_lmdb

        if not is_lmdb(lmdb_path):
            return {}
        reader = LmdbReader(lmdb_path)
        try:
            return {i: png_data_uri(reader.image_bytes(i)) for i in indices if 0 <= i < len(reader)}
        finally:
            reader.close()

    # -- try it yourself ----------------------------------------------------------------
    def _predictor(self, spec: str):
        device = ReadConfig(device=self.device.value).resolved_device()
        with self._predictor_lock:
            if (spec, device) not in self._predictors:
                from ocrtrain.inference import Predictor

                self._predictors[(spec, device)] = Predictor.from_origin(spec, device=device)
            return self._predictors[(spec, device)]

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        content = bytes(item["content"]) if not isinstance(item, dict) or "content" in item else b""
        name = item.get("name", "upload") if isinstance(item, dict) else "upload"
        self.read_image(content, name)

    def _on_upload_refused(self, change) -> None:
        """The page refused the file (over the upload limit): say the limit and the fix for a try-it image."""
        if change["new"]:
            self.try_result.value = ""  # the readings shown are an earlier file's
            self.try_status.error(try_it_refusal(str(change["new"])))

    def read_image(self, content: bytes, name: str = "upload") -> Optional[BackgroundTask]:
        """Read one uploaded image with the before and after models (in a thread)."""
        before, after = self.before.value.strip(), self.after.spec
        specs = [s for s in (before, after) if s]
        self.try_status.note(f"reading {name} with {', '.join(specs)} ...")

        def work(stop):
            from ocrtrain.images import decode_image

            image = decode_image(content, where=name)
            return [(spec, self._predictor(spec).predict([image])[0]) for spec in specs]

        def done(results) -> None:
            rows = "".join(f"<tr><td>{html.escape(spec)}</td><td><b>{html.escape(p.text)}</b></td>"
                           f"<td>{p.confidence:.2f}</td></tr>" for spec, p in results)
            self.try_result.value = (f'<div class="ocrtrain-gallery"><img src="{png_data_uri(content)}"/></div>'
                                     f'<div class="ocrtrain-table"><table><tr><th>model</th><th>reads</th>'
                                     f"<th>confidence</th></tr>{rows}</table></div>")
            self.try_status.clear()

        return BackgroundTask(work, done, self.try_status.error, name="ocrtrain-try").start()
