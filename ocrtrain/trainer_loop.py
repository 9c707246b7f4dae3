"""The step loop of :class:`ocrtrain.trainer.Trainer`: epochs, steps, progress rows and validations."""
from __future__ import annotations

import math
import time
from typing import Optional

from . import distributed
from .errors import RunError
from .fsutil import format_duration
from .trainstate import run_length

__all__ = ["run_loop"]


def _finite(value: Optional[float]) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def run_loop(tr) -> str:
    """Train `tr` (a Trainer) to the end; returns "max_steps" or "early_stopping"."""
    cfg = tr.config
    _resumed_length(tr)
    tr.io.log(f"{tr.task.describe()} on {tr.device}; {tr.max_steps} steps from step {tr.step}; "
              f"batch {tr.batch_size}")
    if tr.dist.active:
        tr.io.log(f"torchrun: {tr.dist.world_size} processes ({tr.dist.backend}), batch {tr.batch_size} "
                  f"per process = {tr.batch_size * tr.dist.world_size} samples per step, "
                  f"{tr.steps_per_epoch} steps per epoch")
    if tr.step == 0 and cfg.baseline and not tr.baseline:
        _baseline(tr)
    if tr.step and tr.last_val_step != tr.step and tr.step % cfg.val_interval == 0:
        # Killed after this step's time-based last.pt but before its validation: validate it now.
        ended = _maybe_validate(tr)
        if ended:
            return ended
    while tr.step < tr.max_steps:
        if tr.plan is None:
            if tr.epoch:
                tr.check_data()
            tr.plan = tr.task.plan_epoch(tr.epoch, tr.batch_size, cfg.seed)
            tr.position = (0, 0)
        ended = _run_epoch(tr)
        if ended:
            return ended
        tr.epoch += 1
        tr.plan = None
    if tr.last_val_step != tr.step:
        _validation(tr)
    return "max_steps"


def _resumed_length(tr) -> None:
    """A resume whose config.json length (max_steps / max_epochs) was edited ends at the new length,
    not at the one last.pt recorded (see ocrtrain.resumecfg)."""
    from .resumecfg import length_edited

    if not tr.resume or tr.state is None or not length_edited(tr.config, tr.run_dir):
        return
    wanted = run_length(tr.config.max_steps, tr.config.max_epochs, tr.steps_per_epoch)[0]
    if wanted != tr.max_steps:
        tr.max_steps = wanted
        tr.set_status(max_steps=wanted)


def _run_epoch(tr) -> Optional[str]:
    """The rest of the current epoch plan; returns why training ended, or None at the epoch's end."""
    import torch

    from .trainer import Stop, is_oom

    cfg = tr.config
    first, done_in_first = tr.position
    source = tr.task.batch_source(tr._shard(tr.plan)[first:], tr.epoch, cfg.seed)
    loader = torch.utils.data.DataLoader(source, batch_size=None, shuffle=False,
                                         num_workers=cfg.workers, pin_memory=False)
    tick = time.monotonic()
    for offset, batch in enumerate(loader):
        k = first + offset
        total = tr.task.batch_len(batch)
        done = done_in_first if offset == 0 else 0
        while done < total:
            if tr.stop_requested():
                raise Stop()
            n = min(tr.batch_size, total - done)
            part = batch if (done == 0 and n == total) else tr.task.slice_batch(batch, done, done + n)
            try:
                loss = tr.train_step(part)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                tr._halve_after_oom(n)
                continue
            done += n
            tr.position = (k, done) if done < total else (k + 1, 0)
            trained, loss = tr._agree(n, loss)
            _after_step(tr, trained, time.monotonic() - tick, loss)
            ended = _maybe_validate(tr)
            tick = time.monotonic()
            if ended:
                return ended
    return None


def _maybe_validate(tr) -> Optional[str]:
    cfg = tr.config
    if not (tr.step % cfg.val_interval == 0 or tr.step >= tr.max_steps):
        return None
    if _validation(tr):
        tr.message(f"early stopping at step {tr.step}: {tr.select_name}:{tr.select_metric} did not "
                   f"improve by more than {cfg.min_delta} for {cfg.patience} validations "
                   f"(best {tr.best_value} at step {tr.best_step})")
        return "early_stopping"
    return "max_steps" if tr.step >= tr.max_steps else None


def _progress_numbers(tr) -> tuple[float, Optional[float]]:
    samples = sum(n for n, _ in tr._window)
    seconds = sum(s for _, s in tr._window)
    rate = samples / seconds if seconds > 0 else 0.0
    if not tr._window:
        return rate, None
    per_step = seconds / len(tr._window)
    remaining = tr.max_steps - tr.step
    vals_left = max(0, remaining // tr.config.val_interval + 1)
    return rate, remaining * per_step + vals_left * tr._last_val_seconds


def _count_loss(tr, loss: Optional[float]) -> None:
    from .trainer import MAX_NONFINITE_IN_A_ROW

    if loss is None:
        tr.nonfinite += 1
        tr.nonfinite_in_a_row += 1
        tr.message(f"step {tr.step}: loss or gradient is not finite (NaN/inf); step skipped "
                   f"({tr.nonfinite} so far)", "warning")
        if tr.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
            raise RunError(f"the loss was NaN/inf for {tr.nonfinite_in_a_row} steps in a row (step "
                           f"{tr.step}): lower lr (now {tr.config.lr:g}) or set grad_clip, then start a new run")
    else:
        tr.nonfinite_in_a_row = 0
        tr._loss_sum += loss
        tr._loss_n += 1


def _after_step(tr, n: int, seconds: float, loss: Optional[float]) -> None:
    tr.step += 1
    tr.samples_seen += n
    tr._window.append((n, seconds))
    if len(tr._window) > 20:
        tr._window.pop(0)
    tr._train_time += seconds
    _count_loss(tr, loss)
    rate, eta = _progress_numbers(tr)
    epoch = tr.epoch_now()
    lr = tr.lr_at(tr.step - 1)
    tr.io.append_row({"kind": "train", "step": tr.step, "epoch": round(epoch, 4), "train_loss": loss,
                      "lr": lr, "samples_per_s": round(rate, 2), "eta_s": _finite(eta) and round(eta, 1),
                      "batch_size": n, "step_s": round(seconds, 4), "skipped": loss is None})
    tr.emit(tr.events.step(tr.step, tr.max_steps, round(epoch, 4), loss, lr, round(rate, 2), eta, n))
    if time.monotonic() - tr._last_log_line > 30.0:  # a heartbeat for `tail -f` of the log
        tr._last_log_line = time.monotonic()
        tr.io.log(f"step {tr.step}/{tr.max_steps} epoch {epoch:.2f} loss "
                  f"{'skipped' if loss is None else f'{loss:.4f}'} lr {lr:.2e} {rate:.1f} samples/s "
                  f"eta {format_duration(eta)}")
    if tr.config.save_minutes and time.monotonic() - tr._last_save > tr.config.save_minutes * 60:
        tr.save_last()  # a crash before the next validation then loses at most a few minutes
    if time.monotonic() - tr._last_status_write > 2.0:
        tr.set_status(step=tr.step, epoch=round(epoch, 4), batch_size=tr.batch_size,
                      nonfinite_skipped=tr.nonfinite, samples_per_s=round(rate, 2), eta_s=_finite(eta))


def _validation(tr) -> bool:
    """Validate, checkpoint, report; returns True when early stopping says to stop.

    Under torchrun rank 0 does all of it while the others wait for its decision.
    """
    tr.last_val_step = tr.step
    if not tr.main:
        return bool(distributed.broadcast_object(None))
    stop = _validate_and_save(tr)
    if tr.dist.active:
        distributed.broadcast_object(stop)
    return stop


def _baseline(tr) -> None:
    """Validate the origin at step 0: the curves' first point and the forgetting guard's reference."""
    if tr.main:
        results, _ = _validate_timed(tr)
        for name, metrics in results.items():
            tr.io.append_row({"kind": "val", "step": 0, "epoch": 0.0, "val_set": name, **_plain(metrics),
                              "baseline": True, "is_best": False})
        tr.io.log("origin at step 0: " + "; ".join(
            f"{n}: accuracy {m.get('accuracy')} cer {m.get('cer')}" for n, m in results.items()))
        tr.set_status(baseline={n: {k: m.get(k) for k in ("accuracy", "accuracy_ws", "cer", "cer_ws")}
                                for n, m in results.items()})
    tr.baseline = distributed.broadcast_object(results if tr.main else None) if tr.dist.active else results


def _validate_timed(tr) -> tuple[dict, float]:
    """The task's metrics per validation set, and the seconds they took (added to the run's total)."""
    started = time.monotonic()
    results = tr.task.validate(tr.model, tr.autocast)
    seconds = time.monotonic() - started
    tr._val_time += seconds
    return results, seconds


def _plain(metrics: dict) -> dict:
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in metrics.items()}


def guard_check(tr, results: dict) -> tuple[bool, Optional[str]]:
    """(ok, note): False when the guard set's metric fell more than guard_max_drop below step 0."""
    if not tr.config.guard or not tr.baseline:
        return True, None
    name, _, metric = tr.config.guard.rpartition(":")
    before = (tr.baseline.get(name) or {}).get(metric)
    now = (results.get(name) or {}).get(metric)
    if before is None or now is None:
        return True, None
    drop = (now - before) if metric in tr.task.lower_is_better else (before - now)
    # On a small set one line is already several points: losing a single line is noise, not forgetting.
    n = (results.get(name) or {}).get("n") or 0
    allowed = max(tr.config.guard_max_drop, 1.5 / n if n else 0.0)
    if drop <= allowed + 1e-12:
        return True, None
    return False, (f"forgetting guard: {name} {metric} {now:.4f} vs {before:.4f} at step 0 (drop {drop:.4f} > "
                   f"{allowed:.4f}): this checkpoint is not chosen as best")


def _improved(tr, value: Optional[float]) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if tr.best_value is None:
        return True
    if tr.select_metric in tr.task.lower_is_better:
        return value < tr.best_value - tr.config.min_delta
    return value > tr.best_value + tr.config.min_delta


def _validate_and_save(tr) -> bool:
    from .trainer import parse_select

    results, tr._last_val_seconds = _validate_timed(tr)
    names = list(results)
    tr.select_name, tr.select_metric = parse_select(tr.config.select, names, tr.task.default_metric)
    value = _plain(results[tr.select_name]).get(tr.select_metric)
    guard_ok, guard_note = guard_check(tr, results)
    improved = guard_ok and _improved(tr, value)
    if guard_note:
        tr.message(f"step {tr.step}: {guard_note}", "warning")
    if improved:
        tr.best_value, tr.best_step, tr.bad_validations = value, tr.step, 0
        tr.best_metrics = dict(results[names[0]])
    else:
        tr.bad_validations += 1
    rate, eta = _progress_numbers(tr)
    epoch = round(tr.epoch_now(), 4)
    common = {"kind": "val", "step": tr.step, "epoch": epoch,
              "train_loss": (tr._loss_sum / tr._loss_n) if tr._loss_n else None,
              "lr": tr.lr_at(max(0, tr.step - 1)), "samples_per_s": round(rate, 2),
              "eta_s": _finite(eta) and round(eta, 1), "nonfinite_skipped": tr.nonfinite,
              "elapsed_s": round(tr._train_time + tr._val_time, 2)}
    rows = []
    for i, name in enumerate(names):
        row = {**common, "val_set": name, **results[name], "is_best": improved and i == 0, "guard_ok": guard_ok,
               "best_cer": tr.best_metrics.get("cer"), "selected": f"{tr.select_name}:{tr.select_metric}",
               "best_value": tr.best_value}
        rows.append(_plain(row))
    tr._loss_sum, tr._loss_n = 0.0, 0
    primary = dict(rows[0])
    if len(names) > 1:
        primary["sets"] = {r["val_set"]: {k: r[k] for k in results[r["val_set"]]} for r in rows}
    # Rows before checkpoints: a kill before the step checkpoint redoes this validation at resume (its
    # rows dropped); one after it resumes from that checkpoint, which must not lack its rows.
    for row in rows:
        tr.io.append_row(row)
    name = tr.io.save_version(tr.task, tr.step, primary, improved, tr.config.keep_checkpoints)
    tr.save_last(primary)
    _log_validation(tr, rows, improved, name)
    tr.set_status(step=tr.step, epoch=epoch, best_cer=tr.best_metrics.get("cer"), best_step=tr.best_step,
                  best_accuracy=tr.best_metrics.get("accuracy"), best_value=tr.best_value,
                  selected=f"{tr.select_name}:{tr.select_metric}", nonfinite_skipped=tr.nonfinite,
                  batch_size=tr.batch_size)
    tr.emit(tr.events.validation(tr.step, tr.max_steps, epoch, rows[0], improved, tr.best_metrics.get("cer"),
                                 name, {r["val_set"]: r for r in rows}))
    return bool(tr.config.patience and tr.bad_validations >= tr.config.patience)


def _log_validation(tr, rows: list[dict], improved: bool, checkpoint: str) -> None:
    parts = []
    for row in rows:
        acc, cer = row.get("accuracy"), row.get("cer")
        parts.append(f"{row['val_set']}: loss {row.get('val_loss')} accuracy "
                     f"{acc if acc is None else f'{acc:.4f}'} cer {cer if cer is None else f'{cer:.4f}'}")
    tr.io.log(f"validation at step {tr.step}: {'; '.join(parts)}{' (best)' if improved else ''} -> {checkpoint}")
