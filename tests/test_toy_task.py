"""The generic trainer knows nothing of text: a 40-line toy task trains, cancels, resumes exactly and
is listed like any run (CLI `ocrtrain runs` and the dashboard's Monitor)."""
import threading

import pytest
import torch

from ocrtrain.cli import main
from ocrtrain.runs import Run, list_runs
from ocrtrain.tasks import Task, register_task
from ocrtrain.train import TrainConfig, fit


class ToyTask(Task):
    """Fit y = 3x - 1 with one linear unit."""

    name = "toy"

    def setup(self, ctx, resume_from):
        self.ctx = ctx
        self.model = torch.nn.Linear(1, 1)
        if resume_from is not None:
            self.model.load_state_dict(torch.load(resume_from, weights_only=True)["model"])
        self.x = torch.linspace(-1, 1, 24).unsqueeze(1)
        self.y = 3 * self.x - 1

    def plan_epoch(self, epoch, batch_size, seed):
        order = torch.randperm(24, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
        return [order[i:i + batch_size] for i in range(0, 24, batch_size)]

    def batch_source(self, batches, epoch, seed):
        return [{"positions": b, "x": self.x[b], "y": self.y[b]} for b in batches]

    def forward(self, net, batch, device):
        return net(batch["x"])

    def loss(self, outputs, batch):
        return torch.nn.functional.mse_loss(outputs, batch["y"])

    def validate(self, model, autocast):
        with torch.no_grad():
            return {"val": {"loss": float(torch.nn.functional.mse_loss(model(self.x), self.y))}}

    def save_checkpoint(self, path, step, metrics, extra=None):
        torch.save({"model": self.model.state_dict(), "step": step, **(extra or {})}, path)

    def load_resume_state(self, path):
        return torch.load(path, weights_only=True)


register_task("toy", ToyTask)
CFG = TrainConfig(task="toy", max_steps=6, batch_size=8, val_interval=2, warmup_steps=0, lr=0.05,
                  schedule="constant", device="cpu")


def test_toy_task_trains_cancels_resumes_exactly_and_is_listed(tmp_path, tiny_dataset, capsys):
    straight = fit(CFG, tiny_dataset, tmp_path / "runs" / "straight")
    assert straight.status()["state"] == "finished" and straight.status()["step"] == 6
    stop = threading.Event()
    stopper = lambda e: stop.set() if getattr(e, "step", 0) == 3 else None  # noqa: E731
    halves = fit(CFG, tiny_dataset, tmp_path / "runs" / "halves", callback=stopper, stop_event=stop)
    assert halves.status()["state"] == "canceled" and halves.status()["step"] == 3
    resumed = fit(CFG, tiny_dataset, tmp_path / "runs" / "halves", resume=True)
    assert resumed.status()["state"] == "finished"
    a = [(r["step"], r["train_loss"]) for r in straight.metrics("train")]
    b = [(r["step"], r["train_loss"]) for r in resumed.metrics("train")]
    assert a == b and len(a) == 6  # same losses step for step, no duplicated rows
    assert [r["loss"] for r in straight.metrics("val")] == [r["loss"] for r in resumed.metrics("val")]
    names = [r["name"] for r in list_runs(tmp_path / "runs")]
    assert names == ["straight", "halves"] or sorted(names) == ["halves", "straight"]
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "straight" in out and "halves" in out and "finished" in out
    assert Run(tmp_path / "runs" / "halves").best_version()["step"] in (2, 4, 6)
    pytest.importorskip("ipywidgets")
    from ocrtrain.workbench import MonitorPanel, Workspace

    monitor = MonitorPanel(Workspace(tmp_path))  # its runs folder is tmp_path/runs
    try:
        rows = {r["name"]: r for r in monitor.rows}
        assert set(rows) == {"straight", "halves"}
        assert rows["halves"]["state"] == "finished" and rows["halves"]["step"] == 6
        monitor.select(tmp_path / "runs" / "halves")
        assert monitor.selected == str((tmp_path / "runs" / "halves").resolve())
        assert monitor.points("train loss") == 6  # both segments of the resumed run
        assert monitor.points("val loss") == 4  # the task's own 'loss' at steps 0 (origin), 2, 4, 6
    finally:
        monitor.close()
