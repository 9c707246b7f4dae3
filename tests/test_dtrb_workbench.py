"""The tutorial's DTRB model in the workbench: a TPS-ResNet-BiLSTM-Attn checkpoint (built in-process,
saved as DTRB saves it) fine-tunes with `fit`, resumes, evaluates, predicts and compares."""
import json

import pytest
import torch

from conftest import draw_line
from ocrtrain.cli import main
from ocrtrain.families.dtrb_model import DtrbModel, DtrbOptions
from ocrtrain.model import init_weights
from ocrtrain.runs import Run
from ocrtrain.train import TrainConfig, fit

LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def dtrb_checkpoint(tmp_path_factory):
    options = DtrbOptions(Transformation="TPS", FeatureExtraction="ResNet", SequenceModeling="BiLSTM",
                          Prediction="Attn", output_channel=64, hidden_size=32)
    model = init_weights(DtrbModel(options, len(LOWER) + 2), seed=3)
    path = tmp_path_factory.mktemp("dtrb") / "TPS-ResNet-BiLSTM-Attn.pth"
    torch.save(torch.nn.DataParallel(model).state_dict(), path)
    return path


def test_dtrb_attention_model_fine_tunes_evaluates_predicts_and_compares(dtrb_checkpoint, tiny_dataset,
                                                                         tmp_path, capsys):
    origin = f"dtrb:{dtrb_checkpoint}:{LOWER}"
    cfg = TrainConfig(origin=origin, max_steps=3, val_interval=3, batch_size=4, val_limit=4, warmup_steps=0,
                      lr=1e-3, device="cpu", general_val=0)
    run = fit(cfg, tiny_dataset, tmp_path / "attn")
    st = run.status()
    assert st["state"] == "finished" and st["step"] == 3, st
    losses = [r["train_loss"] for r in run.metrics("train")]
    assert len(losses) == 3 and all(loss is not None and loss > 0 for loss in losses)
    ckpt = torch.load(run.checkpoint_path("last"), weights_only=True)
    assert ckpt["family"] == "dtrb" and ckpt["model_config"]["Prediction"] == "Attn"
    assert "ø" in ckpt["charset"]  # the head grew for the data's letters

    assert main(["eval", str(run.path), "--data", str(tiny_dataset / "test"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["n"] > 0 and 0 <= report["metrics"]["cer"]
    crop = tmp_path / "line.png"
    draw_line("melk 12").save(crop)
    assert main(["predict", str(run.path), str(crop)]) == 0
    assert "line.png" in capsys.readouterr().out
    assert main(["eval", str(run.path), "--data", str(tiny_dataset / "test"), "--compare-with", origin,
                 "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["kind"] == "compare" and compared["before"] == origin and compared["verdict"]
    assert sum(compared["counts"].values()) == report["metrics"]["n"]
