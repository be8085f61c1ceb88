"""Networks and losses of the papers' GAN anonymizers (imported only when one is built or trained).

- :class:`ConvGenerator`: noise -> transposed convolutions (batch norm + ReLU) from 4x4 up to
  ``image_size``, ``tanh`` output (paper 000's generator; the DCGAN generator of paper 002).
- :class:`ConvCritic`: strided convolutions with LeakyReLU(0.2), instance norm (paper 000's WGAN
  critic, scalar output, no sigmoid) or batch norm (the DCGAN discriminator, a logit for BCE).
- :func:`gradient_penalty`: ``lambda * E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random points on the
  lines between real and generated samples (Gulrajani et al., 2017); :func:`example_gradient_penalty`
  is the same penalty for one example of DP-SGD (:mod:`anonaudit.training.dp`).
- :class:`ProGenerator` / :class:`ProCritic`: progressive growing with fade-in (Karras et al.,
  2018): pixel norm, equalized learning rate, minibatch standard deviation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_size(image_size: int, smallest: int = 8) -> int:
    """``image_size`` as an int power of two >= ``smallest`` (the networks double from 4x4)."""
    size = int(image_size)
    if size < smallest or size & (size - 1):
        raise ValueError(f"image_size must be a power of two >= {smallest}, got {image_size}")
    return size


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., 2016): conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _channels(base: int, level: int, cap: int) -> int:
    return int(min(cap, base * 2**level))


class ConvGenerator(nn.Module):
    """``(N, latent_dim)`` noise -> ``(N, 3, image_size, image_size)`` in [-1, 1].

    A 4x4 transposed convolution from the 1x1 latent, then stride-2 transposed convolutions doubling
    the size, each followed by batch norm and ReLU, and a last one to 3 channels with ``tanh``.
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 64, max_channels: int = 512):
        super().__init__()
        size = check_size(image_size)
        ups = int(math.log2(size // 4))  # 4 -> size takes `ups` doublings; the last one outputs RGB
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, _channels(channels, ups - 1, max_channels), 4, 1, 0, bias=False),
            nn.BatchNorm2d(_channels(channels, ups - 1, max_channels)),
            nn.ReLU(True),
        ]
        for level in range(ups - 1, 0, -1):
            c_in, c_out = _channels(channels, level, max_channels), _channels(channels, level - 1, max_channels)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(_channels(channels, 0, max_channels), 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.latent_dim, 1, 1).contiguous())


class ConvCritic(nn.Module):
    """``(N, 3, S, S)`` -> ``(N,)`` scores: stride-2 convolutions down to 4x4, then a 4x4 convolution.

    LeakyReLU(0.2) after every hidden convolution; ``norm`` ("instance", "batch" or "none") after
    every one but the first (as in DCGAN). No sigmoid: a Wasserstein critic's score, or a logit.
    """

    def __init__(self, image_size: int = 64, channels: int = 64, max_channels: int = 512, norm: str = "instance"):
        super().__init__()
        size = check_size(image_size)
        downs = int(math.log2(size // 4))
        norms = {
            "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
            "batch": nn.BatchNorm2d,
            "none": lambda c: nn.Identity(),
        }
        if norm not in norms:
            raise ValueError(f"norm must be one of {sorted(norms)}, got {norm!r}")
        layers: list[nn.Module] = [nn.Conv2d(3, _channels(channels, 0, max_channels), 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for level in range(1, downs):
            c_in, c_out = _channels(channels, level - 1, max_channels), _channels(channels, level, max_channels)
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                norms[norm](c_out),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(_channels(channels, downs - 1, max_channels), 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous()).reshape(-1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """``weight * mean((||grad D(x_hat)|| - 1)^2)`` with ``x_hat = alpha real + (1 - alpha) fake``.

    ``alpha`` ~ U(0, 1) per sample from torch's global generator unless given. The graph is kept
    (``create_graph``) so the penalty trains the critic.
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.reshape(grad.shape[0], -1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def example_gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                             weight: float = 10.0) -> torch.Tensor:
    """:func:`gradient_penalty` written with ``torch.func`` (the input gradient by ``torch.func.grad``),
    so that it can itself be differentiated per example under ``vmap``: DP-SGD's one-example loss.
    ``critic`` is any callable on images; ``alpha`` is given (no randomness inside a transform)."""
    from torch.func import grad

    x_hat = alpha * real + (1 - alpha) * fake
    g = grad(lambda x: critic(x).sum())(x_hat)
    return weight * ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


# -- progressive growing (Karras et al., ICLR 2018) -----------------------------------------------
class EqualizedConv2d(nn.Module):
    """Convolution with weights ~ N(0, 1) scaled at run time by He's constant (equalized learning rate)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = math.sqrt(2.0 / (c_in * kernel * kernel))
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x.contiguous(), self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt((x * x).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor) -> torch.Tensor:
    """Append the mean over features of the across-batch standard deviation as one more channel."""
    std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, std.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)


def _pro_channels(size: int, channels: int, max_channels: int, max_size: int) -> int:
    return int(min(max_channels, channels * max_size // size))


class ProGenerator(nn.Module):
    """Progressive generator: a 4x4 block, then one (upsample, 3x3 conv, 3x3 conv) block per doubling,
    each with its own 1x1 to-RGB layer; ``forward(z, depth, alpha)`` fades the newest block in."""

    def __init__(self, latent_dim: int = 128, image_size: int = 128, channels: int = 16, max_channels: int = 256):
        super().__init__()
        size = check_size(image_size)
        self.latent_dim = latent_dim
        self.sizes = [4 * 2**i for i in range(int(math.log2(size // 4)) + 1)]
        ch = [_pro_channels(s, channels, max_channels, size) for s in self.sizes]
        self.first = nn.ModuleList([EqualizedConv2d(latent_dim, ch[0], 4, 3), EqualizedConv2d(ch[0], ch[0], 3, 1)])
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(ch[i - 1], ch[i], 3, 1), EqualizedConv2d(ch[i], ch[i], 3, 1)])
            for i in range(1, len(self.sizes))
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, 3, 1) for c in ch)

    def forward(self, z: torch.Tensor, depth: int, alpha: float = 1.0) -> torch.Tensor:
        x = pixel_norm(z.reshape(z.shape[0], self.latent_dim, 1, 1))
        for conv in self.first:  # 1x1 -> 4x4 (padding 3 of a 4x4 kernel), then 3x3
            x = pixel_norm(F.leaky_relu(conv(x), 0.2))
        previous = x
        for block in self.blocks[:depth]:
            previous = x
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in block:
                x = pixel_norm(F.leaky_relu(conv(x), 0.2))
        out = self.to_rgb[depth](x)
        if depth > 0 and alpha < 1.0:
            skip = F.interpolate(self.to_rgb[depth - 1](previous), scale_factor=2, mode="nearest")
            out = alpha * out + (1 - alpha) * skip
        return out


class ProCritic(nn.Module):
    """Mirror of :class:`ProGenerator`: from-RGB at the current size, (3x3, 3x3, avg-pool) blocks down
    to 4x4, minibatch standard deviation, 3x3 and 4x4 convolutions, a linear score (no sigmoid)."""

    def __init__(self, image_size: int = 128, channels: int = 16, max_channels: int = 256, minibatch_std: bool = True):
        super().__init__()
        size = check_size(image_size)
        self.minibatch_std = minibatch_std  # False: the channel is zero (DP-SGD: no statistic across examples)
        self.sizes = [4 * 2**i for i in range(int(math.log2(size // 4)) + 1)]
        ch = [_pro_channels(s, channels, max_channels, size) for s in self.sizes]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(3, c, 1) for c in ch)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(ch[i], ch[i], 3, 1), EqualizedConv2d(ch[i], ch[i - 1], 3, 1)])
            for i in range(1, len(self.sizes))
        )
        self.last = nn.ModuleList([EqualizedConv2d(ch[0] + 1, ch[0], 3, 1), EqualizedConv2d(ch[0], ch[0], 4, 0)])
        self.score = EqualizedConv2d(ch[0], 1, 1)

    def forward(self, x: torch.Tensor, depth: int, alpha: float = 1.0) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb[depth](x), 0.2)
        for i in range(depth, 0, -1):
            for conv in self.blocks[i - 1]:
                h = F.leaky_relu(conv(h), 0.2)
            h = F.avg_pool2d(h, 2)
            if i == depth and alpha < 1.0:  # fade in: blend with the downscaled image through the older from-RGB
                skip = F.leaky_relu(self.from_rgb[depth - 1](F.avg_pool2d(x, 2)), 0.2)
                h = alpha * h + (1 - alpha) * skip
        h = minibatch_stddev(h) if self.minibatch_std else torch.cat([h, torch.zeros_like(h[:, :1])], dim=1)
        h = F.leaky_relu(self.last[0](h), 0.2)
        h = F.leaky_relu(self.last[1](h), 0.2)
        return self.score(h).reshape(-1)
