"""deep-text-recognition-benchmark's network stages, with its exact parameter names.

``Transformation`` (TPS spatial transformer: ``LocalizationNetwork.conv/localization_fc1/2`` and
``GridGenerator.inv_delta_C/P_hat`` buffers), ``FeatureExtraction.ConvNet`` (VGG: the layout of
:mod:`ocrtrain.model`; ResNet: ``conv0_1 ... layer1..4 ... conv4_2``), ``SequenceModeling.{0,1}``
(BiLSTM ``rnn`` + ``linear``) and ``Prediction`` (CTC ``Linear`` or attention
``attention_cell.{i2h,h2h,score,rnn}`` + ``generator``). A DTRB ``torch.save(model.state_dict())``
(``module.`` stripped) loads into :class:`DtrbModel` strict.

>>> import torch
>>> net = TpsTransformer(20, (32, 100))
>>> net(torch.zeros(2, 1, 32, 100)).shape
torch.Size([2, 1, 32, 100])
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TpsTransformer", "ResNetFeatures", "Attention", "AttentionCell", "GO", "EOS"]

#: attention class indices: the start token fed first, and the end-of-sentence token
GO, EOS = 0, 1


class _Localization(nn.Module):
    """Predicts the F fiducial points C' (F x 2) of a line image (RARE's localization network)."""

    def __init__(self, num_fiducial: int, channels: int):
        super().__init__()
        self.F = num_fiducial
        layers: list[nn.Module] = []
        widths = [channels, 64, 128, 256, 512]
        for i in range(4):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[i + 1]),
                       nn.ReLU(True)]
            layers.append(nn.MaxPool2d(2, 2) if i < 3 else nn.AdaptiveAvgPool2d(1))
        self.conv = nn.Sequential(*layers)
        self.localization_fc1 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(True))
        self.localization_fc2 = nn.Linear(256, num_fiducial * 2)
        # Start from the identity: zero weights, the bias places the points on the line's borders.
        half = num_fiducial // 2
        x = np.linspace(-1.0, 1.0, half)
        top = np.stack([x, np.linspace(0.0, -1.0, half)], axis=1)
        bottom = np.stack([x, np.linspace(1.0, 0.0, half)], axis=1)
        with torch.no_grad():
            self.localization_fc2.weight.zero_()
            self.localization_fc2.bias.copy_(torch.from_numpy(np.concatenate([top, bottom])).float().view(-1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv(images).view(images.size(0), -1)
        return self.localization_fc2(self.localization_fc1(features)).view(images.size(0), self.F, 2)


def _fiducials(num_fiducial: int) -> np.ndarray:
    half = num_fiducial // 2
    x = np.linspace(-1.0, 1.0, half)
    return np.concatenate([np.stack([x, -np.ones(half)], axis=1), np.stack([x, np.ones(half)], axis=1)])


class _Grid(nn.Module):
    """Thin-plate-spline grid from fiducial points; buffers ``inv_delta_C`` and ``P_hat`` as in DTRB."""

    def __init__(self, num_fiducial: int, size: tuple[int, int]):
        super().__init__()
        eps = 1e-6
        height, width = size
        c = _fiducials(num_fiducial)
        hat = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=2)
        np.fill_diagonal(hat, 1)
        hat = (hat ** 2) * np.log(hat)
        delta = np.concatenate([
            np.concatenate([np.ones((num_fiducial, 1)), c, hat], axis=1),
            np.concatenate([np.zeros((2, 3)), c.T], axis=1),
            np.concatenate([np.zeros((1, 3)), np.ones((1, num_fiducial))], axis=1)], axis=0)
        gx = (np.arange(-width, width, 2) + 1.0) / width
        gy = (np.arange(-height, height, 2) + 1.0) / height
        p = np.stack(np.meshgrid(gx, gy), axis=2).reshape([-1, 2])
        norm = np.linalg.norm(p[:, None, :] - c[None, :, :], ord=2, axis=2)
        p_hat = np.concatenate([np.ones((p.shape[0], 1)), p, np.square(norm) * np.log(norm + eps)], axis=1)
        self.register_buffer("inv_delta_C", torch.tensor(np.linalg.inv(delta)).float())
        self.register_buffer("P_hat", torch.tensor(p_hat).float())

    def build_P_prime(self, c_prime: torch.Tensor) -> torch.Tensor:
        b = c_prime.size(0)
        padded = torch.cat([c_prime, c_prime.new_zeros(b, 3, 2)], dim=1)
        t = torch.bmm(self.inv_delta_C.repeat(b, 1, 1), padded)
        return torch.bmm(self.P_hat.repeat(b, 1, 1), t)


class TpsTransformer(nn.Module):
    """RARE's TPS spatial transformer network: rectifies a line to `size` (H, W)."""

    def __init__(self, num_fiducial: int, size: tuple[int, int], channels: int = 1):
        super().__init__()
        self.size = tuple(size)
        self.LocalizationNetwork = _Localization(num_fiducial, channels)
        self.GridGenerator = _Grid(num_fiducial, self.size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        points = self.GridGenerator.build_P_prime(self.LocalizationNetwork(images))
        grid = points.reshape([points.size(0), self.size[0], self.size[1], 2])
        return F.grid_sample(images, grid, padding_mode="border", align_corners=True)


class _BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + residual)


def _conv_bn(cin: int, cout: int, kernel, stride=1, padding=0) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout)


class _ResNet(nn.Module):
    """DTRB's ResNet (FAN-style, blocks [1, 2, 5, 3]); names conv0_1 ... conv4_2."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        blocks = [out // 4, out // 2, out, out]
        self.inplanes = out // 8
        self.conv0_1, self.bn0_1 = _conv_bn(channels, out // 16, 3, 1, 1)
        self.conv0_2, self.bn0_2 = _conv_bn(out // 16, self.inplanes, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.layer1 = self._layer(blocks[0], 1)
        self.conv1, self.bn1 = _conv_bn(blocks[0], blocks[0], 3, 1, 1)
        self.maxpool2 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.layer2 = self._layer(blocks[1], 2)
        self.conv2, self.bn2 = _conv_bn(blocks[1], blocks[1], 3, 1, 1)
        self.maxpool3 = nn.MaxPool2d(kernel_size=2, stride=(2, 1), padding=(0, 1))
        self.layer3 = self._layer(blocks[2], 5)
        self.conv3, self.bn3 = _conv_bn(blocks[2], blocks[2], 3, 1, 1)
        self.layer4 = self._layer(blocks[3], 3)
        self.conv4_1, self.bn4_1 = _conv_bn(blocks[3], blocks[3], 2, (2, 1), (0, 1))
        self.conv4_2, self.bn4_2 = _conv_bn(blocks[3], blocks[3], 2, 1, 0)

    def _layer(self, planes: int, count: int) -> nn.Sequential:
        downsample = None
        if self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=1, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [_BasicBlock(self.inplanes, planes, downsample)]
        self.inplanes = planes
        layers += [_BasicBlock(planes, planes) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0_1(self.conv0_1(x)))
        x = self.relu(self.bn0_2(self.conv0_2(x)))
        x = self.relu(self.bn1(self.conv1(self.layer1(self.maxpool1(x)))))
        x = self.relu(self.bn2(self.conv2(self.layer2(self.maxpool2(x)))))
        x = self.relu(self.bn3(self.conv3(self.layer3(self.maxpool3(x)))))
        x = self.relu(self.bn4_1(self.conv4_1(self.layer4(x))))
        return self.relu(self.bn4_2(self.conv4_2(x)))


class ResNetFeatures(nn.Module):
    """DTRB's ResNet_FeatureExtractor (parameter names ``ConvNet.*``)."""

    def __init__(self, channels: int, out: int = 512):
        super().__init__()
        self.ConvNet = _ResNet(channels, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class AttentionCell(nn.Module):
    """One decoder step: attend over the encoder states, then an LSTM cell on [context, one-hot(y)]."""

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int):
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.LSTMCell(input_size + num_embeddings, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, prev_hidden, batch_H: torch.Tensor, char_onehots: torch.Tensor,
                batch_H_proj: Optional[torch.Tensor] = None):
        if batch_H_proj is None:
            batch_H_proj = self.i2h(batch_H)
        emission = self.score(torch.tanh(batch_H_proj + self.h2h(prev_hidden[0]).unsqueeze(1)))
        alpha = F.softmax(emission, dim=1)
        context = torch.bmm(alpha.permute(0, 2, 1), batch_H).squeeze(1)
        return self.rnn(torch.cat([context, char_onehots], 1), prev_hidden), alpha


class Attention(nn.Module):
    """DTRB's attention decoder: teacher forcing on `text` in training, greedy from [GO] otherwise.

    Classes: 0 = [GO], 1 = [s] (end of sentence), 2.. = characters (DTRB's AttnLabelConverter).
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int):
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_classes)
        self.hidden_size = hidden_size
        self.generator = nn.Linear(hidden_size, num_classes)

    @property
    def num_classes(self) -> int:
        return self.generator.out_features

    def forward(self, batch_H: torch.Tensor, text: Optional[torch.Tensor] = None, is_train: bool = True,
                batch_max_length: int = 25) -> torch.Tensor:
        """Logits [B, steps, classes]: steps = text.shape[1] with teacher forcing (`text` starts with
        [GO]), else ``batch_max_length + 1`` greedy steps."""
        b = batch_H.size(0)
        zeros = batch_H.new_zeros(b, self.hidden_size)
        hidden = (zeros, zeros)
        projected = self.attention_cell.i2h(batch_H)  # the same every step: computed once
        if is_train and text is not None:
            onehots = F.one_hot(text.long(), self.num_classes).to(batch_H.dtype)
            states = []
            for i in range(text.shape[1]):
                hidden, _ = self.attention_cell(hidden, batch_H, onehots[:, i], projected)
                states.append(hidden[0])
            return self.generator(torch.stack(states, dim=1))
        current = torch.full((b,), GO, dtype=torch.long, device=batch_H.device)
        steps = []
        for _ in range(batch_max_length + 1):
            onehot = F.one_hot(current, self.num_classes).to(batch_H.dtype)
            hidden, _ = self.attention_cell(hidden, batch_H, onehot, projected)
            logits = self.generator(hidden[0])
            steps.append(logits)
            current = logits.argmax(1)
        return torch.stack(steps, dim=1)
