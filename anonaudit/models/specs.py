"""Downloadable weights: the ``ModelSpec`` record and the built-in ones (URLs and hashes from each
publisher's source; see MODELS.md). :mod:`anonaudit.models.cache` registers ``BUILTIN_SPECS``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A downloadable weight file. ``sha256`` may be a full digest or a published prefix."""

    name: str
    url: str
    filename: str
    sha256: str
    licence: str = ""
    description: str = ""
    archive_member: str | None = None  # file to extract when ``url`` is a zip

    @property
    def full_hash(self) -> bool:
        return len(self.sha256) == 64


INSIGHTFACE_LICENCE = "insightface models: non-commercial research use only"

BUILTIN_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="inception-fid",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        filename="pt_inception-2015-12-05-6726825d.pth",
        sha256="6726825d",
        licence="Apache-2.0 (pytorch-fid port of TensorFlow's 2015-12-05 Inception-v3)",
        description="Inception-v3 FID weights (pytorch-fid), used for FID, KID and IS",
    ),
    ModelSpec(
        name="lpips-alexnet",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        filename="alexnet-owt-7be5be79.pth",
        sha256="7be5be79",
        licence="BSD-3-Clause (torchvision)",
        description="AlexNet ImageNet backbone for LPIPS (linear layers ship in the lpips package)",
    ),
    ModelSpec(
        name="lpips-vgg",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        filename="vgg16-397923af.pth",
        sha256="397923af",
        licence="BSD-3-Clause (torchvision)",
        description="VGG16 ImageNet backbone for LPIPS",
    ),
    ModelSpec(
        name="facenet-vggface2",
        url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        filename="20180402-114759-vggface2.pt",
        sha256="",  # none published: the first verified copy's sha256 is recorded
        licence="MIT (facenet-pytorch); VGGFace2 training data terms apply",
        description="FaceNet InceptionResnetV1 trained on VGGFace2",
    ),
    ModelSpec(
        name="arcface-r50",
        url="https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        filename="w600k_r50.onnx",
        sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        licence=INSIGHTFACE_LICENCE,
        description="ArcFace IResNet-50 (insightface buffalo_l, ONNX)",
        archive_member="w600k_r50.onnx",
    ),
    ModelSpec(
        name="arcface-r100",
        url="https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip",
        filename="glintr100.onnx",
        sha256="4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf",
        licence=INSIGHTFACE_LICENCE,
        description="ArcFace IResNet-100 (insightface antelopev2, ONNX)",
        archive_member="glintr100.onnx",
    ),
    ModelSpec(
        name="stylegan2-ffhq-wplus",
        url="",  # no public file in this format: exported by the user (docs/papers-001-003-004.md)
        filename="stylegan2-ffhq-wplus.pt",
        sha256="",  # the first verified copy's sha256 is recorded
        licence="NVIDIA Source Code License-NC (StyleGAN2 FFHQ weights): non-commercial research use",
        description="StyleGAN2 FFHQ synthesis network as TorchScript, W+ (N, num_ws, 512) -> image (paper 001's MIKU)",
    ),
)
