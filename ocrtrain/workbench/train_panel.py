"""Train tab: the TrainConfig form, named templates, a quick "Check", and Launch as a separate job.

Training never runs in the kernel: Launch calls :func:`ocrtrain.runs.launch`, which starts a job
process, so closing the page does not stop it. "Check" launches a 3-step job into a scratch
folder and times its steps on the configured device, then removes it.
"""
from __future__ import annotations

import html
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

import ipywidgets as W
import traitlets

from ocrtrain.errors import DatasetError, InputError, OcrtrainError, RunError
from ocrtrain.fsutil import format_duration
from ocrtrain.runfolder import files
from ocrtrain.train import TrainConfig, list_templates, load_template, save_template

from .feedback import StatusBox
from .forms import ConfigForm
from .data_mix import DataMixForm
from .tasks import BackgroundTask
from .workspace import Workspace

__all__ = ["TrainPanel", "step_seconds", "preflight", "CONFIRM_ABOVE_S", "CONFIRM_UNTIMED_STEPS"]

CHECK_STEPS = 3
#: Launch asks for a second click when Check estimates a run longer than this (seconds) ...
CONFIRM_ABOVE_S = 30 * 60
#: ... or, with no Check for the form as it is, when the run has more steps than this.
CONFIRM_UNTIMED_STEPS = 2000
# The fields a person sets most, shown first; the rest sit in an "advanced" accordion.
MAIN_FIELDS = ("origin", "charset_mode", "max_epochs", "max_steps", "batch_size", "lr", "warmup_steps",
               "weight_decay", "patience", "device")


def step_seconds(rows: list[dict]) -> list[float]:
    """Seconds of each training step, recovered from metrics.jsonl train rows.

    A row's ``samples_per_s`` is the mean over a window of up to 20 steps, so for the first 20
    steps (cumulative samples / rate) is the cumulative time; differences give each step.
    """
    out, samples, previous = [], 0, 0.0
    for row in rows[:20]:
        samples += int(row.get("batch_size") or 0)
        rate = row.get("samples_per_s") or 0
        if not rate or not samples:
            return out
        total = samples / rate
        out.append(max(0.0, total - previous))
        previous = total
    return out


def _check_val_not_empty(spec) -> None:
    """Every validation set must hold a line: the trainer refuses an empty one at its first step."""
    from ocrtrain.datamix import val_split_path
    from ocrtrain.lmdb_io import LmdbReader

    for v in spec.val:
        path = val_split_path(v.path, v.name)
        reader = LmdbReader(path)
        try:
            n = len(reader)
        finally:
            reader.close()
        if n == 0:
            raise DatasetError(
                f"validation set {v.name!r} ({path}) has 0 lines, and training validates on it: re-import the "
                "dataset (an import of 3 or more lines now puts at least one in val and one in test), or add "
                "a validation set under 'More data'")


def preflight(config: TrainConfig, spec) -> None:
    """The checks both Check and Launch run before starting a job (the engine's error if one fails)."""
    resolved = spec.resolved()
    resolved.check()
    _check_val_not_empty(resolved)
    if config.select:
        from ocrtrain.trainer import parse_select

        parse_select(config.select, [v.name for v in resolved.val], "cer")


class TrainPanel(W.VBox):
    """Form + templates + Check + Launch. The traitlet `run` is the folder of the last launched run."""

    run = traitlets.Unicode("")
    check_result = traitlets.Dict()

    def __init__(self, workspace: Workspace, **kwargs):
        super().__init__(**kwargs)
        self.add_class("ocrtrain-train")
        self.workspace = workspace
        self.task: Optional[BackgroundTask] = None
        self.mixform = DataMixForm(workspace)
        self.data = self.mixform.primary  # the training dataset
        # Errors of both forms show once, in the panel's box (rules span both forms).
        self.form = ConfigForm(TrainConfig, include=MAIN_FIELDS, title="Training", show_errors=False)
        self.advanced = ConfigForm(TrainConfig, exclude=MAIN_FIELDS, show_errors=False)
        adv = W.Accordion(children=[self.advanced], titles=("Advanced: optimizer, schedule, augmentation, "
                                                            "checkpoints",))
        adv.selected_index = None
        self.template_select = W.Dropdown(description="template", layout=W.Layout(width="320px"))
        self.template_select.add_class("ocrtrain-template-select")
        self.load_button = W.Button(description="Load", icon="folder-open")
        self.load_button.add_class("ocrtrain-template-load")
        self.template_name = W.Text(placeholder="name, e.g. receipts-cpu", layout=W.Layout(width="220px"))
        self.template_name.add_class("ocrtrain-template-name")
        self.save_button = W.Button(description="Save as template", icon="save")
        self.save_button.add_class("ocrtrain-template-save")
        self.run_name = W.Text(description="run name", placeholder="(generated)", layout=W.Layout(width="380px"),
                               style={"description_width": "120px"})
        self.run_name.add_class("ocrtrain-run-name")
        self.log_tensorboard = W.Checkbox(value=False, indent=False, description="Log to TensorBoard",
                                          tooltip="the run also writes RUN/tensorboard: tensorboard --logdir RUNS")
        self.log_tensorboard.add_class("ocrtrain-log-tensorboard")
        self.check_button = W.Button(description="Check", icon="stethoscope",
                                     tooltip="time a few training steps on the chosen device")
        self.check_button.add_class("ocrtrain-check")
        self.launch_button = W.Button(description="Launch training", icon="rocket", button_style="success")
        self.launch_button.add_class("ocrtrain-launch")
        self.status = StatusBox()
        self.check_html = W.HTML()
        self.check_html.add_class("ocrtrain-check-result")

        self.load_button.on_click(self._on_load)
        self.save_button.on_click(self._on_save)
        self.check_button.on_click(self._on_check)
        self.launch_button.on_click(self._on_launch)
        self.form.observe(self._on_form, names="error")
        self.advanced.observe(self._on_form, names="error")
        self._confirm_key: Optional[tuple] = None  # the inputs a "Confirm launch" click applies to
        self._check_key: Optional[tuple] = None    # the inputs check_result was measured for
        # An estimate or a pending confirmation belongs to the form as it was: any change drops it.
        for form in (self.form, self.advanced):
            form.observe(self._on_inputs, names="config")
        self.mixform.observe(self._on_inputs, names="value")

        self.children = [
            self.mixform,
            W.HBox([self.template_select, self.load_button, self.template_name, self.save_button]),
            self.form, adv, W.HBox([self.run_name, self.log_tensorboard]),
            W.HBox([self.check_button, self.launch_button]),
            self.status, self.check_html,
        ]
        self.refresh_templates()
        from .form_state import TrainFormState

        self.saved_state = TrainFormState(self)  # the form as last left in this work folder; saved on change

    # -- config -------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The TrainConfig of both forms (ConfigError with the engine's message if invalid)."""
        values = self.advanced.raw()
        values.update({k: v for k, v in self.form.raw().items() if k in MAIN_FIELDS})
        return TrainConfig.from_dict(values)

    def set_config(self, config: TrainConfig) -> None:
        self.form.set_config(config)
        self.advanced.set_config(config)

    def _on_form(self, _change=None) -> None:
        # Cross-field rules (e.g. warmup vs max_steps) span both forms: check the whole config.
        try:
            self.config()
        except OcrtrainError as exc:
            self.status.error(exc)
        else:
            if self.status.kind == "error":
                self.status.clear()

    def _validated(self) -> Optional[tuple[TrainConfig, object]]:
        """(config, data spec) when :func:`preflight` passes (Check and Launch both come here)."""
        try:
            config = self.config()
            spec = self.mixform.spec()
            preflight(config, spec)
            return config, spec
        except OcrtrainError as exc:
            self.status.error(exc)
            return None

    def _inputs_key(self) -> tuple:
        return (repr(self.form.config), repr(self.advanced.config), repr(sorted(self.mixform.value.items())))

    def _on_inputs(self, _change=None) -> None:
        if self.check_result or self.check_html.value:
            self.check_result = {}
            self.check_html.value = ""
            if self.status.kind == "ok" and self.status.text.startswith("check done"):
                self.status.clear()
        self._check_key = None
        self._disarm()

    def _disarm(self) -> None:
        self._confirm_key = None
        self.launch_button.description = "Launch training"
        self.launch_button.button_style = "success"
        self.launch_button.remove_class("ocrtrain-confirm")

    def _needs_confirmation(self, config: TrainConfig) -> Optional[str]:
        """Why this launch needs a second click (a long or untimed run), or None."""
        r = self.check_result if self._check_key == self._inputs_key() else {}
        total_s = r.get("total_s") if r else None
        if total_s is not None:
            if total_s > CONFIRM_ABOVE_S:
                return (f"this run is estimated at {format_duration(total_s)} ({r['total_steps']:,} steps of "
                        f"{format_duration(r['step_s'], precise=True)}) plus validation")
            return None
        steps = config.max_steps
        if not steps:
            steps = config.max_epochs * self._steps_per_epoch(config)
        if steps > CONFIRM_UNTIMED_STEPS:
            return f"this run has {steps:,} steps and no time estimate (press Check to time it)"
        return None

    def _steps_per_epoch(self, config: TrainConfig) -> int:
        from ocrtrain.lmdb_io import LmdbReader

        try:
            reader = LmdbReader(Path(self.data.value) / "train")
        except OcrtrainError:
            return 1
        try:
            own = max(1, round(config.batch_size * (1.0 - config.replay)))  # the rest of a batch is replay
            return max(1, math.ceil(len(reader) / own))
        finally:
            reader.close()

    # -- templates ------------------------------------------------------------------------
    def refresh_templates(self, select: Optional[str] = None) -> None:
        names = list_templates()
        self.template_select.options = names or [("(no templates)", "")]
        self.template_select.value = select if select in names else (names[0] if names else "")

    def _on_load(self, _b=None) -> None:
        name = self.template_select.value
        try:
            if not name:
                raise InputError("no template chosen: save one first or pick one from the list")
            self.set_config(load_template(name))
            self.status.ok(f"loaded template {name!r}")
        except OcrtrainError as exc:
            self.status.error(exc)

    def _on_save(self, _b=None) -> None:
        name = self.template_name.value.strip()
        try:
            path = save_template(self.config(), name, overwrite=True)
            self.refresh_templates(select=Path(path).stem)
            self.status.ok(f"saved template {Path(path).stem!r} ({path})")
        except OcrtrainError as exc:
            self.status.error(exc)

    # -- launch ---------------------------------------------------------------------------
    def _on_launch(self, _b=None) -> None:
        checked = self._validated()
        if checked is None:
            return
        config, data = checked
        key = self._inputs_key()
        why = self._needs_confirmation(config)
        if why and self._confirm_key != key:
            self._confirm_key = key
            self.launch_button.description = "Confirm launch"
            self.launch_button.button_style = "warning"
            self.launch_button.add_class("ocrtrain-confirm")
            self.status.warn(f"{why}: click 'Confirm launch' to start it, or change the form")
            return
        self._disarm()
        from ocrtrain.runs import launch

        name = self.run_name.value.strip() or None
        try:
            run = launch(config, data, runs_root=self.workspace.runs_dir, name=name,
                         log_to=("tensorboard",) if self.log_tensorboard.value else ())
        except OcrtrainError as exc:
            self.status.error(exc)
            return
        self.run_name.value = ""
        self.status.ok(f"launched {run.name} as a separate job: follow it on the Monitor tab")
        self.run = str(Path(run.path).resolve())

    # -- check ----------------------------------------------------------------------------
    def _on_check(self, _b=None) -> None:
        if self.task is not None and self.task.running:
            self.task.cancel()
            return
        checked = self._validated()
        if checked is None:
            return
        config, data = checked
        key = self._inputs_key()
        self.check_button.description = "Stop check"
        self.check_html.value = ""
        self.status.note(f"timing {CHECK_STEPS} training steps with batch {config.batch_size} on device "
                         f"{config.device} (a short job; about 10-60 s, the first one also renders the "
                         "general replay lines once) ...")
        self.task = BackgroundTask(lambda stop: self._check(config, data, stop), lambda r: self._show_check(r, key),
                                   self.status.error, self._check_done, name="ocrtrain-check").start()

    def _check_done(self) -> None:
        self.check_button.description = "Check"

    def _check(self, config: TrainConfig, data, stop) -> dict:
        from ocrtrain.runs import TERMINAL_STATES, cancel, launch

        probe = config.replace(max_steps=CHECK_STEPS, warmup_steps=0, val_interval=CHECK_STEPS, val_limit=4,
                               keep_checkpoints=1, patience=0)
        scratch = Path(tempfile.mkdtemp(prefix=".check-", dir=self.workspace.root))
        try:
            run = launch(probe, data, runs_root=scratch, name="check")
            while True:
                st = run.status()
                if st["state"] in TERMINAL_STATES:
                    break
                if stop.is_set():
                    cancel(run.path, wait=True, timeout=60)
                    raise InputError("check stopped: press Check again to time the steps")
                time.sleep(0.3)
            if st["state"] != "finished":
                raise RunError(st.get("error") or f"the check job ended {st['state']}: see {files(run.path).log}")
            rows = run.metrics("train")
            steps = step_seconds(rows)
            step_s = statistics.median(steps[1:]) if len(steps) > 1 else (steps[0] if steps else None)
            train_n = int(st.get("train_samples") or 0)
            batch = int(st.get("batch_size") or config.batch_size)
            # The trainer's own count: an epoch is one pass over the first source, which has only
            # its share of each batch when replay or other sources are mixed in.
            steps_per_epoch = st.get("steps_per_epoch") or (max(1, math.ceil(train_n / batch)) if train_n else None)
            total_steps = config.max_steps or (config.max_epochs * steps_per_epoch if steps_per_epoch else None)
            return {
                "device": st.get("device"),
                "batch_size": config.batch_size,
                "batch_used": batch,
                "oom_halvings": st.get("oom_halvings") or 0,
                "step_s": step_s,
                "first_step_s": steps[0] if steps else None,
                "train_samples": train_n,
                "steps_per_epoch": steps_per_epoch,
                "epoch_s": step_s * steps_per_epoch if step_s and steps_per_epoch else None,
                "total_steps": total_steps,
                "total_s": step_s * total_steps if step_s and total_steps else None,
                "rejected": st.get("rejected") or 0,
                "charset_size": st.get("charset_size"),
            }
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _show_check(self, r: dict, key: Optional[tuple] = None) -> None:
        if key is not None and key != self._inputs_key():
            self.status.note("check done, but the form changed while it ran: press Check again for an estimate")
            return
        self.check_result = r
        self._check_key = self._inputs_key()
        fits = (f"batch {r['batch_size']} fits" if not r["oom_halvings"] else
                f"batch {r['batch_size']} ran out of memory; {r['batch_used']} fits")
        rows = [("device", r["device"]), ("batch", fits),
                ("time per step", f"{format_duration(r['step_s'], precise=True)} "
                                  f"(first step {format_duration(r['first_step_s'], precise=True)})"),
                ("training lines", r["train_samples"]), ("steps per epoch", r["steps_per_epoch"]),
                ("time per epoch", format_duration(r["epoch_s"], precise=True)),
                ("whole run", f"{r['total_steps']} steps ≈ {format_duration(r['total_s'])} + validation"),
                ("charset", f"{r['charset_size']} characters"),
                ("unusable labels", r["rejected"])]
        self.check_html.value = ("<div class='ocrtrain-table'><table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table></div>")
        self.status.ok("check done: the configuration trains on this device")
