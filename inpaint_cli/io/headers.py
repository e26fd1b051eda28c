"""Container headers, read before any decoding: format, pixel size, EXIF orientation, truncation.

The readers (`read`, `scale`) ask this module first, so an oversized image is refused before cv2
allocates its pixels and a cut-short download is named as such instead of as "corrupt". Pure byte
parsing of PNG, JPEG, WebP, BMP and TIFF (struct only: no numpy, cv2 or torch); a header it cannot
parse yields an empty `HeaderInfo`, and the decoder has the final word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["HeaderInfo", "read_header"]


@dataclass
class HeaderInfo:
    """What the container says before decoding: format, size (width, height), orientation, truncation."""

    kind: str | None = None
    size: tuple[int, int] | None = None
    orientation: int = 1
    truncated: bool = False


def read_header(data: bytes) -> HeaderInfo:
    """What the header of the encoded image `data` says; an empty HeaderInfo for unknown formats.

    A malformed header must not crash the reader: the decoder gets the final word on anything this
    cannot parse."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _inspect_png(data)
        if data.startswith(b"\xff\xd8\xff"):
            return _inspect_jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _inspect_webp(data)
        if data.startswith(b"BM") and len(data) >= 26:
            return _inspect_bmp(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _inspect_tiff(data)
    except (struct.error, IndexError, ValueError):
        pass
    return HeaderInfo()


def _inspect_png(data: bytes) -> HeaderInfo:
    info = HeaderInfo(kind="PNG", truncated=True)
    pos, end = 8, len(data)
    while pos + 8 <= end:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = pos + 8
        if ctype == b"IHDR" and body + 8 <= end:
            width, height = struct.unpack(">II", data[body : body + 8])
            info.size = (width, height)
        elif ctype == b"eXIf" and body + length <= end:
            info.orientation = _exif_orientation(data[body : body + length])
        elif ctype == b"IEND":
            info.truncated = False
            break
        pos = body + length + 4  # data + CRC
    return info


# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _inspect_jpeg(data: bytes) -> HeaderInfo:
    """Walk the marker segments (and skip entropy-coded data) until EOI; running out first = truncated.

    Walking, rather than looking for FF D9 at the very end, copes with data appended after EOI (motion
    photos, vendor trailers) and ignores the EOI of an embedded EXIF thumbnail.
    """
    info = HeaderInfo(kind="JPEG")
    pos, end = 2, len(data)
    exif_seen = False
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < end and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos < 0 or pos >= end:
            info.truncated = True
            return info
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return info
        if 0xD0 <= marker <= 0xD8 or marker in (0x00, 0x01):  # markers without a length
            continue
        if pos + 2 > end:
            info.truncated = True
            return info
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            return info  # malformed; let the decoder judge it
        segment = data[pos + 2 : pos + length]
        if pos + length > end:
            info.truncated = True
            return info
        if marker in _JPEG_SOF and len(segment) >= 5 and info.size is None:
            height, width = struct.unpack(">HH", segment[1:5])
            if height and width:  # height 0 = defined later by a DNL marker; check after decoding
                info.size = (width, height)
        elif marker == 0xE1 and not exif_seen and segment.startswith(b"Exif\x00\x00"):
            exif_seen = True
            info.orientation = _exif_orientation(segment[6:])
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= end:
                    info.truncated = True
                    return info
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte or restart marker
                    pos += 2
                elif following == 0xFF:
                    pos += 1
                else:
                    break


def _inspect_webp(data: bytes) -> HeaderInfo:
    info = HeaderInfo(kind="WebP")
    (riff_size,) = struct.unpack("<I", data[4:8])
    info.truncated = len(data) < 8 + riff_size
    pos, end = 12, min(len(data), 8 + riff_size)
    while pos + 8 <= end:
        fourcc, length = struct.unpack("<4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if fourcc == b"VP8X" and len(body) >= 10:
            width = int.from_bytes(body[4:7], "little") + 1
            height = int.from_bytes(body[7:10], "little") + 1
            info.size = (width, height)
        elif fourcc == b"VP8 " and len(body) >= 10 and info.size is None and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", body[6:10])
            info.size = (width & 0x3FFF, height & 0x3FFF)
        elif fourcc == b"VP8L" and len(body) >= 5 and info.size is None and body[0] == 0x2F:
            (bits,) = struct.unpack("<I", body[1:5])
            info.size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif fourcc == b"EXIF":
            # Some writers keep the JPEG-style "Exif\0\0" prefix inside the chunk.
            info.orientation = _exif_orientation(body[6:] if body.startswith(b"Exif\x00\x00") else body)
        pos += 8 + length + (length & 1)  # chunks are padded to an even size
    return info


def _inspect_bmp(data: bytes) -> HeaderInfo:
    info = HeaderInfo(kind="BMP")
    (offset, header_size) = struct.unpack("<II", data[10:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height, _, bpp = struct.unpack("<HHHH", data[18:26])
        compression = 0
    else:
        width, height, _, bpp, compression = struct.unpack("<iiHHI", data[18:34])
    width, height = abs(width), abs(height)  # negative height = rows stored top-down
    info.size = (width, height)
    if compression in (0, 3) and bpp in (1, 4, 8, 16, 24, 32):
        # Uncompressed rows are padded to 4 bytes; the pixel array must fit in the file.
        row = (bpp * width + 31) // 32 * 4
        info.truncated = len(data) < offset + row * height
    return info


def _inspect_tiff(data: bytes) -> HeaderInfo:
    info = HeaderInfo(kind="TIFF")
    # Writers often put the directory after the pixel data, so a cut-short file can lose it entirely.
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data) or ifd + 2 + 12 * struct.unpack(order + "H", data[ifd : ifd + 2])[0] > len(data):
        info.truncated = True
        return info
    # Orientation (274) is deliberately not read: cv2's TIFF decoder applies it itself, even with
    # IMREAD_UNCHANGED, so info.orientation stays 1 and the image is not turned twice.
    tags = _tiff_ifd0(data, {256, 257, 273, 279, 324, 325})
    if 256 in tags and 257 in tags:
        info.size = (tags[256][0], tags[257][0])
    # Strips or tiles that point past the end of the file mean the download/copy was cut short.
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets and counts and len(offsets) == len(counts):
            info.truncated |= max(o + c for o, c in zip(offsets, counts, strict=True)) > len(data)
    return info


_TIFF_TYPE_SIZES = {3: ("H", 2), 4: ("I", 4)}  # SHORT, LONG: all the tags we read use these


def _tiff_ifd0(tiff: bytes, wanted: set[int]) -> dict[int, list[int]]:
    """The integer values of the `wanted` tags of the first IFD of a TIFF structure (EXIF uses the same)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return {}
    order = "<" if tiff[:2] == b"II" else ">"
    magic, ifd = struct.unpack(order + "HI", tiff[2:8])
    if magic != 42 or ifd + 2 > len(tiff):
        return {}
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    found: dict[int, list[int]] = {}
    for index in range(count):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack(order + "HHI", tiff[entry : entry + 8])
        if tag not in wanted or kind not in _TIFF_TYPE_SIZES or n == 0:
            continue
        code, size = _TIFF_TYPE_SIZES[kind]
        if n * size <= 4:
            start = entry + 8
        else:
            (start,) = struct.unpack(order + "I", tiff[entry + 8 : entry + 12])
        if start + n * size > len(tiff):
            continue
        found[tag] = list(struct.unpack(f"{order}{n}{code}", tiff[start : start + n * size]))
    return found


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of an EXIF block (TIFF header onward); 1 when absent or invalid."""
    try:
        values = _tiff_ifd0(tiff, {0x0112}).get(0x0112)
    except (struct.error, ValueError):
        return 1
    if values and 1 <= values[0] <= 8:
        return int(values[0])
    return 1
