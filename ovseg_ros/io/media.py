"""Reading frames from an image, a folder of images or a video; writing PNGs and videos.

numpy + OpenCV only (shared by the command line and tools). Frames are RGB uint8 (H, W, 3).
Files are read through ``cv2.imdecode`` on their bytes, which also works for non-ASCII paths
and goes through the same size checks as ROS compressed images: the size is read from the
file's header and checked before any pixel is decoded (``io.image_header``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ovseg_ros.io.image_codec import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_compressed

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = tuple(
    ".png .jpg .jpeg .bmp .tif .tiff .webp .ppm .pgm .pnm .jp2".split()
)
VIDEO_EXTENSIONS: tuple[str, ...] = tuple(
    ".mp4 .avi .mkv .mov .webm .m4v .mpg .mpeg .wmv .flv .ts".split()
)


def samples_dir() -> Path:
    """The sample images: inside the package (a wheel from `pip install .`), share/ovseg_ros/
    samples of a colcon install, else the source tree's samples/ (a checkout)."""
    packaged = Path(__file__).resolve().parent / "samples"
    if packaged.is_dir():
        return packaged
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("ovseg_ros")) / "samples"
        if shared.is_dir():
            return shared
    except Exception:  # not installed through colcon, or no ament index
        pass
    return Path(__file__).resolve().parents[2] / "samples"


class MediaError(RuntimeError):
    """A path that cannot be read as images or video (missing, unreadable, empty folder)."""


@dataclass(frozen=True)
class Frame:
    """One input frame: ``name`` is unique within a source and safe as a file-name stem."""

    name: str
    index: int
    rgb: np.ndarray  # (H, W, 3) uint8
    path: str | None = None  # source file (None for video frames)


@dataclass
class FrameIterator:
    """Iterator over ``Frame``s that also reports what it skipped.

    ``kind`` is "image", "folder" or "video"; ``total`` the expected frame count (None when a
    video does not say); ``skipped`` / ``skipped_paths`` the unreadable images of a folder.
    """

    kind: str
    total: int | None
    _make: Callable[[FrameIterator], Iterator[Frame]] = field(repr=False)
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)
    _cleanup: Callable[[], None] | None = field(default=None, repr=False)
    _gen: Iterator[Frame] | None = field(default=None, repr=False)

    def __iter__(self) -> FrameIterator:
        return self

    def __next__(self) -> Frame:
        if self._gen is None:
            self._gen = self._make(self)
        return next(self._gen)

    def close(self) -> None:
        """Release the video capture early (also done when iteration ends)."""
        if self._gen is not None and hasattr(self._gen, "close"):
            self._gen.close()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> FrameIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _natural_key(name: str) -> tuple:
    # "frame2" before "frame10"; split alternates text/digits so positions compare alike.
    parts = re.split(r"(\d+)", name.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (not recursive, no hidden files), naturally sorted."""
    folder = Path(folder)
    files = [
        p for p in folder.iterdir() if p.is_file() and _is_image(p) and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: _natural_key(p.name))


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); raises ``MediaError`` if it cannot."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return decode_compressed(path.suffix.lstrip(".").lower(), data, max_pixels)
    except ImageDecodeError as exc:
        raise MediaError(f"cannot decode image {path}: {exc}") from exc


def _unique_names(files: list[Path]) -> list[str]:
    stems = [p.stem for p in files]
    dup = {s for s in stems if stems.count(s) > 1} if len(set(stems)) < len(stems) else set()
    # a.png and a.jpg in one folder: keep the extension so outputs do not overwrite each other.
    return [f"{p.stem}_{p.suffix.lstrip('.').lower()}" if p.stem in dup else p.stem for p in files]


def _open_video(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"cannot open {path} as a video (unknown format or unreadable file)")
    return cap


def iter_frames(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FrameIterator:
    """Frames of a single image, a folder of images or a video file.

    Folder: images directly inside it (extensions in ``IMAGE_EXTENSIONS``, any case), in
    natural sort order, named by file stem; unreadable ones are skipped with a warning and
    counted in ``.skipped``. Video: every frame, named ``<stem>_<index:06d>``. Missing paths,
    empty folders and unreadable single files raise ``MediaError`` here, not mid-iteration.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError(f"no such file or folder: {p}")

    if p.is_dir():
        files = list_images(p)
        if not files:
            exts = ", ".join(IMAGE_EXTENSIONS)
            raise MediaError(f"folder {p} contains no images (looked for {exts})")
        names = _unique_names(files)

        def folder_frames(it: FrameIterator) -> Iterator[Frame]:
            index = 0
            for f, name in zip(files, names, strict=True):
                try:
                    rgb = read_image(f, max_pixels)
                except MediaError as exc:
                    it.skipped += 1
                    it.skipped_paths.append(str(f))
                    log.warning("skipping unreadable image: %s", exc)
                    continue
                yield Frame(name, index, rgb, str(f))
                index += 1
            if index == 0:
                raise MediaError(f"none of the {len(files)} images in {p} could be read")

        return FrameIterator("folder", len(files), folder_frames)

    if _is_image(p):
        rgb = read_image(p, max_pixels)

        def one(_: FrameIterator) -> Iterator[Frame]:
            yield Frame(p.stem, 0, rgb, str(p))

        return FrameIterator("image", 1, one)

    cap = _open_video(p)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    # The container's frame size, before any frame is decoded (each frame is checked again).
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if w * h > max_pixels:
        cap.release()
        raise MediaError(f"video {p}: {w}x{h} frames exceed max_pixels={max_pixels}")

    def video_frames(_: FrameIterator) -> Iterator[Frame]:
        try:
            index = 0
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                h, w = bgr.shape[:2]
                if h * w > max_pixels:
                    raise MediaError(f"video {p}: {w}x{h} frames exceed max_pixels={max_pixels}")
                if bgr.ndim == 2:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
                else:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Frame(f"{p.stem}_{index:06d}", index, rgb)
                index += 1
            if index == 0:
                raise MediaError(f"video {p} opened but no frame could be decoded")
        finally:
            cap.release()

    return FrameIterator("video", count if count > 0 else None, video_frames, _cleanup=cap.release)


def count_frames(path: str | Path) -> int | None:
    """Expected number of frames (for progress bars): 1 for an image, the number of image
    files in a folder, the container's frame count for a video (None if it does not say)."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"no such file or folder: {p}")
    if p.is_dir():
        return len(list_images(p))
    if _is_image(p):
        return 1
    cap = _open_video(p)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return n if n > 0 else None


def write_png(path: str | Path, arr: np.ndarray) -> Path:
    """Write a PNG, creating parent folders. ``arr``: RGB (H, W, 3) or RGBA (H, W, 4) uint8
    (converted to OpenCV's BGR order), or single-channel (H, W) uint8/uint16 (label ids,
    written losslessly, 16-bit when uint16). Returns the path."""
    path = Path(path)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_png: expected uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    elif arr.ndim != 2:
        raise ValueError(f"write_png: expected (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise MediaError(f"PNG encoding failed for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())
    return path


class VideoWriter:
    """RGB frames -> video file (MJPG for .avi, mp4v otherwise); size fixed by the first frame."""

    def __init__(self, path: str | Path, fps: float = 10.0) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame."""
        h, w = rgb.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            self._writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h)
            )
            if not self._writer.isOpened():
                self._writer = None
                raise MediaError(f"cannot open {self.path} for writing with codec {fourcc}")
            self._size = (w, h)
        elif (w, h) != self._size:
            raise ValueError(f"VideoWriter: frame size {w}x{h} differs from {self._size}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
