"""StyleGAN W+ inversion: paper 001's MIKU mapper (after Image2StyleGAN, Abdal et al. 2019).

``W+* = argmin_{W+} L2(I, G(W+)) + L_percept(I, G(W+))`` by Adam from the mean latent, with
``L_percept`` the squared differences of VGG-16's conv1_1, conv1_2, conv3_2 and conv4_2 activations
(after their ReLU, on ImageNet-normalised images, as Image2StyleGAN). Both terms are restricted to
the face: the background is masked out. Before inversion each face is aligned the FFHQ way (the
crop of ``download_ffhq.py``, from dlib's 68 landmarks) at the generator's resolution.

Weights (no download here; both enter through the model cache):

- ``stylegan2-ffhq-wplus``: the synthesis network as a TorchScript file whose ``forward(w)`` takes
  W+ latents ``(N, num_ws, w_dim)`` and returns images ``(N, 3, R, R)`` in ``[-1, 1]``, with the
  attributes ``num_ws`` (int) and ``w_avg`` (tensor ``(w_dim,)``, the mean W). How to export one from
  the public StyleGAN2 checkpoints: docs/papers-001-003-004.md. Add it with
  ``anonaudit models add stylegan2-ffhq-wplus FILE``.
- ``lpips-vgg``: torchvision's ImageNet VGG-16 (``vgg16-397923af.pth``), ``anonaudit models fetch lpips-vgg``.

Substitutes, stated: the paper masks the background with a pretrained FCN-ResNet101 segmentation
(weights not available offline); here the mask is the convex hull of the 68 landmarks extended up
over the forehead. Faces dlib does not find are inverted from the whole image, unmasked
(``unaligned_`` counts them).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.imageset import ImageSet
from ..errors import ModelUnavailableError
from ..fileio import torch_load

STYLEGAN_MODEL = "stylegan2-ffhq-wplus"
VGG_MODEL = "lpips-vgg"
#: torchvision VGG-16 ``features`` indices of the ReLU after conv1_1, conv1_2, conv3_2, conv4_2.
VGG_LAYERS = (1, 3, 13, 20)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The oriented crop square of FFHQ's ``download_ffhq.py`` from 68 iBUG landmarks: ``(4, 2)``
    corners (top-left, bottom-left, bottom-right, top-right)."""
    lm = np.asarray(landmarks, np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_align(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size x size`` FFHQ-style aligned crop (reflect padding outside the image) and the
    ``2 x 3`` affine matrix that maps image coordinates into the crop."""
    import cv2

    quad = ffhq_quad(landmarks)
    dst = np.array([[0, 0], [0, size], [size, size]], np.float32)
    m = cv2.getAffineTransform(quad[:3].astype(np.float32), dst)
    crop = cv2.warpAffine(
        np.ascontiguousarray(image),
        m,
        (size, size),
        flags=cv2.INTER_AREA if size < 256 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return crop, m


def face_mask(landmarks_in_crop: np.ndarray, size: int) -> np.ndarray:
    """``(size, size)`` float mask: hull of the landmarks plus the brows raised by 60% of the
    brow-to-chin height (forehead), the background substitute of the paper's segmentation."""
    import cv2

    lm = np.asarray(landmarks_in_crop, np.float64)
    brows = lm[17:27]
    lift = 0.6 * (lm[8, 1] - brows[:, 1].mean())
    points = np.concatenate([lm, brows - [0, lift]]).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(points), 1)
    return mask.astype(np.float32)


def load_synthesis(device: str, name: str = STYLEGAN_MODEL):
    """The verified TorchScript synthesis network cached as ``name``, with ``num_ws`` and ``w_avg``."""
    import torch

    from .inception import resolve_verified

    try:
        path, _ = resolve_verified(name)
    except ModelUnavailableError:
        raise ModelUnavailableError(
            name, "StyleGAN synthesis weights are not in the cache (no public download of this format)",
            f"anonaudit models add {name} FILE",
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's deprecation notice of TorchScript
            net = torch.jit.load(str(path), map_location=device).eval()
        num_ws, w_avg = int(net.num_ws), net.w_avg.detach().to(device).float()
    except Exception as exc:  # noqa: BLE001 - a foreign file fails in many ways
        raise ModelUnavailableError(
            name, f"{path} is not a TorchScript synthesis network with num_ws and w_avg ({type(exc).__name__}: {exc})"
        ) from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net, num_ws, w_avg


def load_vgg16_features(device: str):
    """VGG-16 ``features`` up to conv4_2's ReLU with the cached torchvision ImageNet weights."""
    from torchvision.models.vgg import cfgs, make_layers

    from .inception import resolve_verified

    path, _ = resolve_verified(VGG_MODEL)
    features = make_layers(cfgs["D"])[: VGG_LAYERS[-1] + 1]  # VGG-16's feature layers (torchvision indices)
    state = torch_load(path)
    try:
        features.load_state_dict({k[len("features."):]: v for k, v in state.items()
                                  if k.startswith("features.") and int(k.split(".")[1]) <= VGG_LAYERS[-1]})
    except RuntimeError as exc:
        raise ModelUnavailableError(VGG_MODEL, f"{path} is not torchvision's VGG-16 ({str(exc)[:200]})") from None
    for p in features.parameters():
        p.requires_grad_(False)
    return features.eval().to(device)


class StyleGANMapper:
    """MIKU's mapper (W+ inversion) and reverse mapper (the synthesis network) for face images."""

    label = "stylegan"

    def __init__(
        self,
        model: str = STYLEGAN_MODEL,
        steps: int = 5000,
        lr: float = 0.01,
        device: str = "auto",
        seed: int = 0,
        batch_size: int = 4,
    ):
        from .faces.mtcnn import resolve_device

        self.device = resolve_device(device)
        self.steps = int(steps)
        self.lr = float(lr)
        self.seed = seed
        self.batch_size = batch_size
        self.net, self.num_ws, self.w_avg = load_synthesis(self.device, model)
        self.vgg = load_vgg16_features(self.device)
        self.size = int(self._synthesize(self.w_avg.expand(1, self.num_ws, -1)).shape[-1])

    def _synthesize(self, w):
        return self.net(w)

    def _vgg(self, x):
        import torch
        import torch.nn.functional as F

        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        h = ((x + 1) / 2 - mean) / std
        if h.shape[-1] > 256:
            h = F.interpolate(h, size=(256, 256), mode="area")
        out = []
        for i, layer in enumerate(self.vgg):
            h = layer(h)
            if i in VGG_LAYERS:
                out.append(h)
        return out

    def prepare(self, images: ImageSet) -> tuple[np.ndarray, np.ndarray]:
        """Aligned crops ``(n, R, R, 3)`` in ``[0, 1]`` and their masks ``(n, R, R)``."""
        import cv2

        from .faces.align import main_face
        from .faces.dlib_models import DlibHOGDetector, landmarks68

        detections = DlibHOGDetector().detect(images)
        crops, masks, self.unaligned_ = [], [], 0
        for i in range(len(images)):
            image = images[i]
            face = main_face(detections[i], image.shape)
            if face is None:
                self.unaligned_ += 1
                crops.append(cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA))
                masks.append(np.ones((self.size, self.size), np.float32))
                continue
            lm = landmarks68(image, face.box)
            crop, m = ffhq_align(image, lm, self.size)
            crops.append(crop)
            masks.append(face_mask(lm @ m[:, :2].T + m[:, 2], self.size))
        return np.stack(crops).astype(np.float32) / 255.0, np.stack(masks)

    def invert(self, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(n, num_ws * w_dim)`` W+ latents of the aligned crops (Adam from the mean latent)."""
        import torch

        torch.manual_seed(self.seed)
        out = []
        for start in range(0, len(crops), self.batch_size):
            t = torch.as_tensor(crops[start : start + self.batch_size], device=self.device).permute(0, 3, 1, 2) * 2 - 1
            m = torch.as_tensor(masks[start : start + self.batch_size], device=self.device)[:, None]
            target_features = [f.detach() for f in self._vgg(t * m)]
            w = self.w_avg.expand(len(t), self.num_ws, -1).clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=self.lr)
            for _ in range(self.steps):
                img = self._synthesize(w)
                l2 = (((img - t) * m) ** 2).flatten(1).mean(1)
                percept = sum(((a - b) ** 2).flatten(1).mean(1) for a, b in zip(self._vgg(img * m), target_features))
                loss = (l2 + percept).sum()  # images are independent: each w gets its own image's gradient
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            out.append(w.detach().flatten(1).cpu().numpy().astype(np.float64))
        return np.concatenate(out)

    def encode_set(self, images: ImageSet) -> np.ndarray:
        crops, masks = self.prepare(images)
        return self.invert(crops, masks)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Images ``(n, R, R, 3)`` in ``[0, 1]`` of flattened W+ latents."""
        import torch

        with torch.no_grad():
            w = torch.as_tensor(np.asarray(z, np.float32), device=self.device).view(len(z), self.num_ws, -1)
            img = torch.cat([self._synthesize(w[i : i + self.batch_size]) for i in range(0, len(w), self.batch_size)])
        return ((img.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
