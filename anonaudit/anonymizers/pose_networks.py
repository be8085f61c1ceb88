"""Networks of paper 004's pose-conditioned face anonymizer (:mod:`anonaudit.anonymizers.pose_inpaint`).

- :class:`PoseEncoder`: pSp's encoder (Richardson et al., 2021) as the paper describes it: a ResNet
  with a feature pyramid (three levels), and one ``map2style`` block per W+ entry that reduces a
  pyramid level to ``1 x 1 x w_dim`` with 2x2 stride-2 convolutions and LeakyReLU (the paper's
  "set of 2x2 convolutions"), then a linear layer. Coarse entries read the smallest level, middle
  entries the middle one, fine entries the largest, in pSp's 3 / 4 / 11 proportion of 18.
- :class:`SmallDecoder`: the CPU substitute of the frozen StyleGAN: a convolutional decoder whose
  layers are modulated by the W+ entries (per-channel scale and bias, as StyleGAN's styles), with
  skip connections from the pyramid and the network input. NOT the paper's generator.
- :class:`LandmarkRegressor`: a small CNN giving the 68 landmarks (normalised to [0, 1] of the
  crop); trained on the real training crops with dlib's landmarks as targets, it makes the paper's
  landmark loss differentiable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: pSp splits 18 W+ entries 3 (coarse) / 4 (middle) / 11 (fine).
PSP_SPLIT = (3, 4)


def style_split(n_ws: int) -> tuple[int, int, int]:
    """``(coarse, middle, fine)`` numbers of W+ entries, pSp's proportions for ``n_ws`` >= 3."""
    coarse = max(1, round(n_ws * PSP_SPLIT[0] / 18))
    middle = max(1, round(n_ws * PSP_SPLIT[1] / 18))
    return coarse, middle, n_ws - coarse - middle


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions, batch norm, identity or 1x1 shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.short = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.short(x))


class Map2Style(nn.Module):
    """pSp's map2style: 2x2 stride-2 convolutions with LeakyReLU down to 1x1, then a linear layer."""

    def __init__(self, cin: int, w_dim: int, spatial: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(c, w_dim, 2, 2), nn.LeakyReLU(0.2)]
            c = w_dim
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(c, w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class PoseEncoder(nn.Module):
    """Masked face (3 channels) + binary pose image (1) -> W+ ``(N, n_ws, w_dim)`` and the pyramid.

    ``blocks`` basic blocks per stage; three stages of stride 2 after a stem (stride 2 from 128
    pixels up, as pSp's 256-pixel input gives 64/32/16 levels).
    """

    def __init__(
        self, size: int, n_ws: int, w_dim: int, channels: int, fpn_channels: int, blocks: int = 1, in_channels: int = 4
    ):
        super().__init__()
        if n_ws < 3:
            raise ValueError(f"n_ws must be >= 3 (coarse, middle and fine styles), got {n_ws}")
        stem_stride = 2 if size >= 128 else 1
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
        )
        widths = [channels, channels * 2, channels * 4]
        stages, cin = [], channels
        for w in widths:
            stages.append(nn.Sequential(BasicBlock(cin, w, 2), *[BasicBlock(w, w, 1) for _ in range(blocks - 1)]))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.laterals = nn.ModuleList(nn.Conv2d(w, fpn_channels, 1) for w in widths)
        spatial = [size // stem_stride // 2 ** (i + 1) for i in range(3)]  # largest .. smallest
        self.spatial = spatial
        coarse, middle, fine = style_split(n_ws)
        level = [2] * coarse + [1] * middle + [0] * fine  # pyramid level each W+ entry reads
        self.levels = level
        self.styles = nn.ModuleList(Map2Style(fpn_channels, w_dim, spatial[lv]) for lv in level)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.stem(x)
        feats = []
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        p = [None, None, None]
        p[2] = self.laterals[2](feats[2])
        for i in (1, 0):
            p[i] = self.laterals[i](feats[i]) + F.interpolate(
                p[i + 1], size=feats[i].shape[-2:], mode="bilinear", align_corners=False
            )
        w = torch.stack([style(p[lv]) for style, lv in zip(self.styles, self.levels)], dim=1)
        return w, p  # type: ignore[return-value]


class ModulatedConv(nn.Module):
    """3x3 convolution whose output channels are scaled and shifted by an affine map of one style vector."""

    def __init__(self, cin: int, cout: int, w_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm = nn.InstanceNorm2d(cout)
        self.affine = nn.Linear(w_dim, 2 * cout)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, bias = self.affine(w)[:, :, None, None].chunk(2, dim=1)
        return F.leaky_relu(self.norm(self.conv(x)) * (1 + scale) + bias, 0.2)


class SmallDecoder(nn.Module):
    """CPU substitute of the frozen StyleGAN: W+ + pyramid + input -> image ``(N, 3, size, size)`` in [-1, 1].

    From the smallest pyramid level up to the full size, two modulated convolutions per
    resolution, each taking the next W+ entry (cycling when there are fewer entries than layers);
    each pyramid level is added where its resolution is reached; the network input is
    concatenated at the full resolution.
    """

    def __init__(self, size: int, n_ws: int, w_dim: int, fpn_channels: int, spatial: list[int], in_channels: int = 4):
        super().__init__()
        self.size = size
        self.n_ws = n_ws
        self.spatial = spatial
        n_up = int(math.log2(size // spatial[2]))
        c = fpn_channels
        self.convs = nn.ModuleList()
        for i in range(n_up):
            cin = c + (in_channels if i == n_up - 1 else 0)
            self.convs.append(nn.ModuleList([ModulatedConv(cin, c, w_dim), ModulatedConv(c, c, w_dim)]))
        self.to_rgb = nn.Conv2d(c, 3, 1)

    def forward(self, w: torch.Tensor, pyramid: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = pyramid[2]
        k = 0
        for i, pair in enumerate(self.convs):
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            for p in pyramid[:2]:
                if p.shape[-1] == h.shape[-1]:
                    h = h + p
            if i == len(self.convs) - 1:
                h = torch.cat([h, F.interpolate(x, size=h.shape[-2:], mode="area")], dim=1)
            for conv in pair:
                h = conv(h, w[:, k % self.n_ws])
                k += 1
        if h.shape[-1] != self.size:
            h = F.interpolate(h, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return torch.tanh(self.to_rgb(h))


class LandmarkRegressor(nn.Module):
    """Image ``(N, 3, size, size)`` in [-1, 1] -> 68 landmarks ``(N, 68, 2)`` in crop units [0, 1]."""

    def __init__(self, size: int, channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        c, s, level = 3, size, 0
        while s > 4:  # no batch norm: the same network scores real crops and generated ones
            out = min(channels * 2**level, 8 * channels)
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.LeakyReLU(0.2)]
            c, s, level = out, s // 2, level + 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * s * s, 68 * 2)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, 0.5)  # start at the crop's centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).view(-1, 68, 2)
