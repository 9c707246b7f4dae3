"""The BiLSTM's two directions side by side on a CPU: the same outputs and gradients as the fused layer."""
import pytest
import torch

from ocrtrain import parallel_rnn
from ocrtrain.model import ModelConfig, Recognizer
from ocrtrain.parallel_rnn import bidirectional_lstm, can_split


def _grads(module, loss):
    module.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in module.parameters()]


def test_outputs_and_gradients_equal_the_fused_layer():
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(16, 8, bidirectional=True, batch_first=True)
    x = torch.randn(3, 11, 16, requires_grad=True)
    fused = rnn(x)[0]
    fused_grads = _grads(rnn, (fused ** 2).sum())
    fused_x, x.grad = x.grad.clone(), None
    split = bidirectional_lstm(rnn, x)
    assert torch.allclose(split, fused, atol=1e-6)
    for a, b in zip(_grads(rnn, (split ** 2).sum()), fused_grads):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(x.grad, fused_x, atol=1e-5)


def test_a_recognizer_trains_the_same_with_the_directions_split(monkeypatch):
    if torch.get_num_threads() < 2:
        torch.set_num_threads(2)
    torch.manual_seed(0)
    model = Recognizer(ModelConfig(), num_class=20).train()
    images = torch.randn(2, 1, 64, 96)
    assert can_split(model.SequenceModeling[0].rnn, torch.zeros(1, 2, 256))
    grads = {}
    for split in (False, True):
        monkeypatch.setattr(parallel_rnn, "ENABLED", split)
        grads[split] = _grads(model, model(images).logsumexp(-1).sum())
    for a, b in zip(grads[False], grads[True]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_where_splitting_does_not_apply():
    rnn = torch.nn.LSTM(4, 3, bidirectional=True, batch_first=True)
    assert not can_split(torch.nn.LSTM(4, 3, batch_first=True), torch.zeros(1, 2, 4))
    assert not can_split(torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True), torch.zeros(1, 2, 4))
    with torch.no_grad():  # nothing to differentiate: the fused layer, same numbers
        assert not can_split(rnn, torch.ones(1, 5, 4))
        assert torch.equal(bidirectional_lstm(rnn, torch.ones(1, 5, 4)), rnn(torch.ones(1, 5, 4))[0])
    # Reader-compatible reading quantizes the LSTM (no float weights): it keeps its own forward.
    model = torch.ao.quantization.quantize_dynamic(Recognizer(ModelConfig(), num_class=20).eval(),
                                                   {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    assert not can_split(model.SequenceModeling[0].rnn, torch.zeros(1, 2, 256))
    assert model(torch.zeros(1, 1, 64, 96)).shape == (1, 23, 20)


def test_errors_reach_the_caller_and_the_thread_count_is_restored(monkeypatch):
    rnn = torch.nn.LSTM(4, 3, bidirectional=True, batch_first=True)
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match="takes 4 features per column"):
        bidirectional_lstm(rnn, torch.ones(1, 5, 7, requires_grad=True))
    real = parallel_rnn._direction

    def failing(x, weights, reverse):
        if reverse:
            raise RuntimeError("reverse direction failed")
        return real(x, weights, reverse)

    monkeypatch.setattr(parallel_rnn, "_direction", failing)
    with pytest.raises(RuntimeError, match="reverse direction failed"):
        bidirectional_lstm(rnn, torch.ones(1, 5, 4, requires_grad=True))
    assert torch.get_num_threads() == threads
