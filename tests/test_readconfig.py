"""eval/predict read their device and batching from one frozen config (ReadConfig)."""
import pytest

from ocrtrain.cli import main
from ocrtrain.errors import ConfigError
from ocrtrain.readconfig import ReadConfig


def test_read_config_defaults_and_checks():
    assert (ReadConfig().device, ReadConfig().batch_size, ReadConfig().parity_limit) == ("auto", 32, 300)
    assert ReadConfig().resolved_device() in ("cpu", "cuda:0")
    with pytest.raises(ConfigError, match="not one of auto, cpu"):
        ReadConfig(device="gpu")
    with pytest.raises(ConfigError, match="batch_size"):
        ReadConfig(batch_size=0)
    assert ReadConfig().compare_limit == 200 and ReadConfig(compare_limit=0).compare_limit == 0  # 0 = all
    with pytest.raises(ConfigError, match="compare_limit must be >= 0"):
        ReadConfig(compare_limit=-1)


def test_eval_cli_takes_its_options_from_read_config(tiny_dataset, capsys):
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--limit", "3", "--batch-size", "2",
                 "--device", "cpu", "--json"]) == 0
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--device", "gpu"]) == 1
    assert "not one of auto, cpu" in capsys.readouterr().err


def test_library_and_cli_read_defaults_come_from_read_config():
    import argparse
    import inspect

    from ocrtrain.cli import export as cli_export
    from ocrtrain.easyocr_interop import read_boxes
    from ocrtrain.evaluate import compare, evaluate, parity_check
    from ocrtrain.inference import Predictor

    read = ReadConfig()
    for fn in (evaluate, compare, parity_check, Predictor.__init__, read_boxes):
        assert inspect.signature(fn).parameters["batch_size"].default == read.batch_size, fn.__qualname__
    assert inspect.signature(parity_check).parameters["limit"].default == read.parity_limit
    parser = argparse.ArgumentParser()
    cli_export.register(parser.add_subparsers())
    args = parser.parse_args(["export", "english_g2", "--name", "x", "--out", "o"])
    assert args.parity_limit == read.parity_limit


def test_library_reading_defaults_to_the_config_device():
    """#10: eval/compare/parity/predict/preread default to ReadConfig.device (auto), as training does."""
    import inspect

    from ocrtrain.documents.preread import PrereadConfig
    from ocrtrain.evaluate import compare, evaluate, parity_check
    from ocrtrain.inference import Predictor
    from ocrtrain.train import TrainConfig

    assert ReadConfig.device == TrainConfig.device == "auto"
    for fn in (evaluate, compare, parity_check, Predictor.from_origin):
        assert inspect.signature(fn).parameters["device"].default == ReadConfig.device, fn.__qualname__
    # A Predictor around a model you hold reads where the model is.
    assert inspect.signature(Predictor.__init__).parameters["device"].default is None
    assert PrereadConfig().device == ReadConfig.device
    with pytest.raises(ConfigError, match="not one of auto, cpu"):
        PrereadConfig(device="gpu")


@pytest.fixture
def cuda_seen(monkeypatch):
    """torch sees one CUDA device (no GPU is used: the tests stop before anything runs on it)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_is_the_gpu_when_torch_sees_one_and_cpu_for_quantized_reading(cuda_seen):
    from ocrtrain.readconfig import resolve_read_device

    assert resolve_read_device("auto") == ReadConfig().resolved_device() == "cuda:0"
    assert resolve_read_device("auto", quantize=True) == "cpu"
    assert resolve_read_device("cpu") == "cpu" and resolve_read_device("cuda") == "cuda:0"
    assert resolve_read_device("cuda", quantize=True) == "cuda"  # the Predictor names that conflict
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        resolve_read_device("cuda:1")


def test_auto_is_the_cpu_without_a_gpu(monkeypatch):
    import torch

    from ocrtrain.readconfig import resolve_read_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_read_device("auto") == resolve_read_device(torch.device("cpu")) == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device: use device cpu or auto"):
        resolve_read_device("cuda")


def test_evaluate_by_default_loads_on_the_gpu_torch_sees(cuda_seen, monkeypatch, tiny_dataset):
    from ocrtrain.evaluate import evaluate
    from ocrtrain.families import Prediction
    from ocrtrain.inference import Predictor

    asked = []

    class Reads:
        def predict(self, images):
            return [Prediction("x", 0.5) for _ in images]

    def from_origin(spec, device=ReadConfig.device, **kwargs):
        asked.append(device)
        return Reads()

    monkeypatch.setattr(Predictor, "from_origin", staticmethod(from_origin))
    report = evaluate("english_g2", tiny_dataset, limit=2)
    assert asked == ["cuda:0"] and report.info["device"] == "cuda:0"
    evaluate("english_g2", tiny_dataset, limit=2, device="cpu")  # an explicit device is kept
    assert asked[-1] == "cpu"


def test_a_predictor_reads_where_its_model_is(cuda_seen):
    from ocrtrain.origins import load_origin
    from ocrtrain.inference import Predictor

    loaded = load_origin("english_g2")  # on the CPU
    predictor = Predictor(loaded.model, loaded.charset)
    assert predictor.device.type == "cpu" and next(loaded.model.parameters()).device.type == "cpu"
    assert Predictor(loaded.model, loaded.charset, quantize=True).device.type == "cpu"


def test_default_reading_on_a_cpu_only_machine_is_unchanged(monkeypatch, tiny_dataset):
    import torch

    from ocrtrain.evaluate import evaluate
    from ocrtrain.inference import Predictor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Predictor.from_origin("english_g2").device == torch.device("cpu")
    report = evaluate("english_g2", tiny_dataset, limit=2)
    assert report.info["device"] == "cpu" and report.metrics["n"] == 2


def test_a_parity_report_names_the_device_it_read_on(cuda_seen, monkeypatch, tiny_dataset, tmp_path):
    """#10: the parity report (returned and saved) says where both readings ran: cuda:0, not 'auto'."""
    from ocrtrain import easyocr_interop, runfolder
    from ocrtrain.evaluate import parity_check, parity_device
    from ocrtrain.families import Prediction
    from ocrtrain.inference import Predictor

    class Reads:
        def predict(self, images):
            return [Prediction("x", 0.5) for _ in images]

    asked = []
    monkeypatch.setattr(Predictor, "from_origin", staticmethod(lambda spec, device, **kw: asked.append(device)
                                                               or Reads()))
    monkeypatch.setattr(easyocr_interop, "make_reader", lambda folder, name, gpu: asked.append(gpu) or Reads())
    monkeypatch.setattr(easyocr_interop, "read_lines", lambda reader, images: reader.predict(images))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for suffix in (".pth", ".yaml", ".py"):
        (bundle / f"fake{suffix}").write_text("")
    report = parity_check(bundle, "fake", tiny_dataset, limit=2)
    assert asked == ["cuda:0", "cuda:0"] and report["device"] == "cuda:0" and report["n"] == 2
    run = tmp_path / "run"
    runfolder.save_report(run, "parity", report)
    assert parity_device(runfolder.read_latest_report(run, "parity")[1]) == "cuda:0"
    # Older reports stay readable: the device from their info, or None when they never said.
    assert parity_device({"kind": "parity", "info": {"device": "cpu"}}) == "cpu"
    assert parity_device({"kind": "parity", "n": 3}) is None
