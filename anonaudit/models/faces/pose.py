"""Head pose (yaw, pitch, roll) from 68 iBUG landmarks with ``cv2.solvePnP`` and a generic 3D face.

The 3D face is the mean 68-point shape distributed with OpenFace (also used by common head-pose
estimators), in millimetre-like units with x to the image right, y down and z away from the
camera, so a frontal face has rotation identity. The camera is a pinhole with focal length
``max(height, width)`` pixels centred on the image, no distortion.
"""

from __future__ import annotations

import cv2
import numpy as np

_X = [
    -73.393523, -72.775014, -70.533638, -66.850058, -59.790187, -48.368973, -34.121101, -17.875411, 0.098749,
    17.477031, 32.648966, 46.372358, 57.343480, 64.388482, 68.212038, 70.486405, 71.375822, -61.119406,
    -51.287588, -37.804800, -24.022754, -11.635713, 12.056636, 25.106256, 38.338588, 51.191007, 60.053851,
    0.653940, 0.804809, 0.992204, 1.226783, -14.772472, -7.180239, 0.555920, 8.272499, 15.214351, -46.047290,
    -37.674688, -27.883856, -19.648268, -28.272965, -38.082418, 19.265868, 27.894191, 37.437529, 45.170805,
    38.196454, 28.764989, -28.916267, -17.533194, -6.684590, 0.381001, 8.375443, 18.876618, 28.794412,
    19.057574, 8.956375, 0.381549, -7.428895, -18.160634, -24.377490, -6.897633, 0.340663, 8.444722,
    24.474473, 8.449166, 0.205322, -7.198266,
]
_Y = [
    -29.801432, -10.949766, 7.929818, 26.074280, 42.564390, 56.481080, 67.246992, 75.056892, 77.061286,
    74.758448, 66.929021, 56.311389, 42.419126, 25.455880, 6.990805, -11.666193, -30.365191, -49.361602,
    -58.769795, -61.996155, -61.033399, -56.686759, -57.391033, -61.902186, -62.777713, -59.302347, -50.190255,
    -42.193790, -30.993721, -19.944596, -8.414541, 2.598255, 4.751589, 6.562900, 4.661005, 2.643046,
    -37.471411, -42.730510, -42.711517, -36.754742, -35.134493, -34.919043, -37.032306, -43.342445, -43.110822,
    -38.086515, -35.532024, -35.484289, 28.612716, 22.172187, 19.029051, 20.721118, 19.035460, 22.394109,
    28.079924, 36.298248, 39.634575, 40.395647, 39.836405, 36.677899, 28.677771, 25.475976, 26.014269,
    25.326198, 28.323008, 30.596216, 31.408738, 30.844876,
]
_Z = [
    47.667532, 45.909403, 44.842580, 43.141114, 38.635298, 30.750622, 18.456453, 3.609035, -0.881698,
    5.181201, 19.176563, 30.770570, 37.628629, 40.886309, 42.281449, 44.142567, 47.140426, 14.254422,
    7.268147, 0.442051, -6.606501, -11.967398, -12.051204, -7.315098, -1.022953, 5.349435, 11.615746,
    -13.380835, -21.150853, -29.284036, -36.948060, -20.132003, -23.536684, -25.944448, -23.695741, -20.858157,
    7.037989, 3.021217, 1.353629, -0.111088, -0.147273, 1.476612, -0.665746, 0.247660, 1.696435, 4.894163,
    0.282961, -1.172675, -2.240310, -15.934335, -22.611355, -23.748437, -22.721995, -15.610679, -3.217393,
    -14.987997, -22.554245, -23.591626, -22.406106, -15.121907, -4.785684, -20.893742, -22.220479, -21.025520,
    -5.712776, -20.671489, -21.903670, -20.328022,
]

#: ``(68, 3)`` generic 3D face, iBUG 300-W point order.
FACE_MODEL_68 = np.stack([_X, _Y, _Z], axis=1).astype(np.float64)


def camera_matrix(height: int, width: int) -> np.ndarray:
    """Pinhole intrinsics assumed for an image of this size."""
    f = float(max(height, width))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def euler_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees with ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(pitch), float(roll)


def matrix_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of :func:`euler_from_matrix` (degrees)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` degrees of the face whose 68 landmarks are given."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"head_pose needs 68 (x, y) landmarks, got shape {pts.shape}")
    cam = camera_matrix(image_shape[0], image_shape[1])
    # Start from a frontal face in front of the camera: without a guess the solver may settle on the
    # mirror solution behind the camera (same projections, roll off by ~180 degrees).
    iod_model = float(np.linalg.norm(FACE_MODEL_68[45] - FACE_MODEL_68[36]))
    iod_image = max(float(np.linalg.norm(pts[45] - pts[36])), 1e-6)
    z = cam[0, 0] * iod_model / iod_image
    centre = pts.mean(0)
    tvec = np.array([[(centre[0] - cam[0, 2]) * z / cam[0, 0]], [(centre[1] - cam[1, 2]) * z / cam[1, 1]], [z]])
    ok, rvec, tvec = cv2.solvePnP(
        FACE_MODEL_68, pts, cam, np.zeros(4), rvec=np.zeros((3, 1)), tvec=tvec, useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok or tvec[2, 0] <= 0:
        raise ValueError("solvePnP found no pose in front of the camera for these landmarks")
    rot, _ = cv2.Rodrigues(rvec)
    return euler_from_matrix(rot)


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in degrees, wrapped to [0, 180]."""
    d = (np.asarray(a, dtype=float) - np.asarray(b, dtype=float) + 180.0) % 360.0 - 180.0
    return np.abs(d)
