"""Image size from a compressed file's header, read before any pixel is decoded.

A decompression bomb (a 10 KB lossless WebP of 16383 x 16383 pixels, a JPEG whose SOF
comes after 70 KB of padding segments) costs gigabytes once decoded, so the size check has
to run on the header. ``header_size`` knows every format this OpenCV build's ``imdecode``
accepts (the same signatures OpenCV tests), reads its (width, height) by walking the
header's structure, never a fixed prefix, and raises ``HeaderError`` for a format it does
not know or a header it cannot read: what cannot be measured is not decoded.

Formats: JPEG (first SOF, wherever it is), PNG/APNG (IHDR), WebP (VP8, VP8L, VP8X canvas),
GIF (logical screen), BMP, TIFF (first IFD, classic and BigTIFF), JPEG 2000 (JP2 ``ihdr``
box, J2K ``SIZ`` marker), PBM/PGM/PPM/PAM/PFM, Sun raster, Radiance HDR. Refused: AVIF and
anything else (its size sits deep in an ISO-BMFF box tree; convert to PNG/JPEG/WebP).
"""

from __future__ import annotations

import re

# Text headers (PxM, HDR) are short; a "header" longer than this is not one.
_TEXT_HEADER_MAX = 4096
# Segments (JPEG) or boxes (JP2) before the size: real files have tens. The walk is Python, so
# a stream of millions of 2-byte markers must not cost seconds.
_MAX_SEGMENTS = 10_000


class HeaderError(ValueError):
    """A compressed image whose format is unknown or whose header does not give its size."""


def _u16(b: bytes, i: int, big: bool) -> int:
    return int.from_bytes(b[i : i + 2], "big" if big else "little")


def _u32(b: bytes, i: int, big: bool) -> int:
    return int.from_bytes(b[i : i + 4], "big" if big else "little")


def _need(b: bytes, n: int, fmt: str) -> None:
    if len(b) < n:
        raise HeaderError(f"{fmt} header is truncated ({len(b)} bytes)")


def _jpeg(b: bytes) -> tuple[int, int]:
    """Walk the marker segments up to the first SOF, as libjpeg does, over the whole buffer."""
    i, n = 2, len(b)
    for _ in range(_MAX_SEGMENTS):
        if i + 4 > n:
            break
        if b[i] != 0xFF:
            raise HeaderError(f"JPEG: no marker at byte {i} before the frame header")
        marker = b[i + 1]
        if marker == 0xFF:  # fill bytes: skip the whole run at C speed
            i = n - len(b[i + 1 :].lstrip(b"\xff"))
            i -= 1  # back onto the last 0xFF, which introduces the marker
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            raise HeaderError("JPEG: scan data or end of image before any frame header (SOF)")
        seg_len = _u16(b, i + 2, True)
        if seg_len < 2:
            raise HeaderError(f"JPEG: segment length {seg_len} at byte {i}")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            _need(b, i + 9, "JPEG SOF")
            h, w = _u16(b, i + 5, True), _u16(b, i + 7, True)
            if h == 0:
                raise HeaderError("JPEG: height 0 in SOF (given later by a DNL marker)")
            return w, h
        i += 2 + seg_len
    else:
        raise HeaderError(f"JPEG: more than {_MAX_SEGMENTS} segments before the frame header")
    raise HeaderError("JPEG: no frame header (SOF) in the data")


def _png(b: bytes) -> tuple[int, int]:
    _need(b, 24, "PNG")
    if b[12:16] != b"IHDR":
        raise HeaderError("PNG: first chunk is not IHDR")
    return _u32(b, 16, True), _u32(b, 20, True)


def _webp(b: bytes) -> tuple[int, int]:
    _need(b, 30, "WebP")
    chunk = b[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1, height-1
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1, 14-bit height-1
        if b[20] != 0x2F:
            raise HeaderError("WebP VP8L: bad signature")
        bits = _u32(b, 21, False)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code 9d 01 2a, 14-bit width, height
        if b[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("WebP VP8: bad start code")
        return _u16(b, 26, False) & 0x3FFF, _u16(b, 28, False) & 0x3FFF
    raise HeaderError(f"WebP: unknown first chunk {chunk!r}")


def _bmp(b: bytes) -> tuple[int, int]:
    _need(b, 26, "BMP")
    if _u32(b, 14, False) == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return _u16(b, 18, False), _u16(b, 20, False)
    w = int.from_bytes(b[18:22], "little", signed=True)
    h = int.from_bytes(b[22:26], "little", signed=True)
    return abs(w), abs(h)  # a negative height is a top-down bitmap


def _tiff(b: bytes) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) of the first IFD: the page imdecode reads."""
    big = b[:2] == b"MM"
    _need(b, 16, "TIFF")
    bigtiff = _u16(b, 2, big) == 43
    if bigtiff:
        ifd = int.from_bytes(b[8:16], "big" if big else "little")
        count_size, entry_size, value_at = 8, 20, 12
    else:
        ifd, count_size, entry_size, value_at = _u32(b, 4, big), 2, 12, 8
    _need(b, ifd + count_size, "TIFF IFD")
    count = int.from_bytes(b[ifd : ifd + count_size], "big" if big else "little")
    size: dict[int, int] = {}
    for k in range(min(count, 4096)):
        e = ifd + count_size + k * entry_size
        _need(b, e + entry_size, "TIFF IFD entry")
        tag, typ = _u16(b, e, big), _u16(b, e + 2, big)
        if tag in (256, 257):
            if typ == 3:  # SHORT, left-justified in the value field
                size[tag] = _u16(b, e + value_at, big)
            elif typ in (4, 16):  # LONG, LONG8
                size[tag] = int.from_bytes(
                    b[e + value_at : e + value_at + (8 if typ == 16 else 4)],
                    "big" if big else "little",
                )
            else:
                raise HeaderError(f"TIFF: image size tag {tag} has type {typ}")
        if len(size) == 2:
            return size[256], size[257]
    raise HeaderError("TIFF: first IFD has no ImageWidth/ImageLength")


def _jp2(b: bytes) -> tuple[int, int]:
    """JP2: the ``ihdr`` box inside the ``jp2h`` super box (height, width)."""
    i, n = 0, len(b)
    end = n
    for _ in range(_MAX_SEGMENTS):
        if i + 8 > end:
            break
        length, kind = _u32(b, i, True), b[i + 4 : i + 8]
        head = 8
        if length == 1:
            _need(b, i + 16, "JP2 box")
            length, head = int.from_bytes(b[i + 8 : i + 16], "big"), 16
        elif length == 0:
            length = end - i
        if length < head:
            raise HeaderError(f"JP2: box length {length} at byte {i}")
        if kind == b"jp2h":  # descend into the header super box
            end, i = min(n, i + length), i + head
            continue
        if kind == b"ihdr":
            _need(b, i + head + 8, "JP2 ihdr")
            return _u32(b, i + head + 4, True), _u32(b, i + head, True)
        if kind == b"jp2c":
            break
        i += length
    raise HeaderError("JP2: no image header box (ihdr) before the codestream")


def _j2k(b: bytes) -> tuple[int, int]:
    """J2K codestream: SIZ (Xsiz, Ysiz, XOsiz, YOsiz) right after SOC."""
    _need(b, 24, "J2K")
    if b[2:4] != b"\xff\x51":
        raise HeaderError("J2K: SIZ marker does not follow SOC")
    xs, ys, xo, yo = (_u32(b, 8 + 4 * k, True) for k in range(4))
    return max(xs - xo, 0), max(ys - yo, 0)


_INT = re.compile(rb"(?:\s|#[^\n]*\n?)*(\d+)")


def _pxm(b: bytes) -> tuple[int, int]:
    """PBM/PGM/PPM (P1-P6) and PFM (PF/Pf): width and height are the first two numbers after
    the magic (comments allowed); PAM (P7): the WIDTH and HEIGHT header lines."""
    head = b[:_TEXT_HEADER_MAX]
    if head[:2] == b"P7":
        w = re.search(rb"\nWIDTH\s+(\d+)", head)
        h = re.search(rb"\nHEIGHT\s+(\d+)", head)
        if not (w and h):
            raise HeaderError("PAM: WIDTH/HEIGHT missing from the header")
        return int(w.group(1)), int(h.group(1))
    m1 = _INT.match(head, 2)
    m2 = _INT.match(head, m1.end()) if m1 else None
    if not (m1 and m2):
        raise HeaderError("PNM/PFM: width and height missing from the header")
    return int(m1.group(1)), int(m2.group(1))


def _hdr(b: bytes) -> tuple[int, int]:
    """Radiance: header lines up to an empty line, then e.g. ``-Y 480 +X 640``."""
    head = b[:_TEXT_HEADER_MAX]
    m = re.search(rb"\n\n([-+])([XY]) (\d+) ([-+])([XY]) (\d+)\n", head)
    if not m:
        raise HeaderError("HDR: no resolution line in the header")
    first, second = int(m.group(3)), int(m.group(6))
    return (second, first) if m.group(2) == b"Y" else (first, second)


def _gif(b: bytes) -> tuple[int, int]:
    _need(b, 10, "GIF")
    return _u16(b, 6, False), _u16(b, 8, False)


def _sun(b: bytes) -> tuple[int, int]:
    _need(b, 12, "Sun raster")
    return _u32(b, 4, True), _u32(b, 8, True)


def _format(b: bytes) -> str | None:
    if b[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "WebP"
    if b[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if b[:2] == b"BM":
        return "BMP"
    if b[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if b[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        return "JP2"
    if b[:2] == b"\xff\x4f":
        return "J2K"
    if len(b) > 2 and b[0:1] == b"P" and (b[1:2] in b"1234567" or b[1:2] in b"Ff"):
        return "PNM"
    if b[:4] == b"\x59\xa6\x6a\x95":
        return "Sun raster"
    if b[:10] == b"#?RADIANCE" or b[:6] == b"#?RGBE":
        return "HDR"
    if b[4:8] == b"ftyp":
        return "ISO-BMFF (AVIF/HEIF)"
    return None


_READERS = {
    "JPEG": _jpeg, "PNG": _png, "WebP": _webp, "GIF": _gif, "BMP": _bmp, "TIFF": _tiff,
    "JP2": _jp2, "J2K": _j2k, "PNM": _pxm, "Sun raster": _sun, "HDR": _hdr,
}
KNOWN_FORMATS: tuple[str, ...] = tuple(_READERS)


def header_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header of a compressed image, without decoding.

    Raises ``HeaderError`` for an unknown format (or one whose size cannot be read before
    decoding, such as AVIF) and for a header that is truncated or inconsistent.
    """
    fmt = _format(data)
    if fmt is None:
        raise HeaderError(
            f"unknown image format (first bytes {data[:8]!r}); readable: {', '.join(KNOWN_FORMATS)}"
        )
    reader = _READERS.get(fmt)
    if reader is None:
        raise HeaderError(f"{fmt}: its size cannot be read before decoding; convert it to "
                          "PNG, JPEG or WebP")
    w, h = reader(data)
    return fmt, int(w), int(h)
