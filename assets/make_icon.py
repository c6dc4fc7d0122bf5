#!/usr/bin/env python3
"""Writes assets/icon.png (64x64 RGBA): a timeline of three connection bars, one cut by a reset.

Standard library only (zlib + struct), so it runs anywhere: python3 assets/make_icon.py
"""
import os
import struct
import zlib

W = H = 64


def png(pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    px = [[0, 0, 0, 0] * W for _ in range(H)]

    def put(x, y, c):
        if 0 <= x < W and 0 <= y < H:
            px[y][4 * x:4 * x + 4] = c

    def rect(x0, y0, x1, y1, c):
        for y in range(y0, y1):
            for x in range(x0, x1):
                put(x, y, c)

    # Rounded dark background.
    r = 12
    for y in range(H):
        for x in range(W):
            dx = max(r - x, x - (W - 1 - r), 0)
            dy = max(r - y, y - (H - 1 - r), 0)
            if dx * dx + dy * dy <= r * r:
                put(x, y, [28, 34, 46, 255])
    # Time axis ticks.
    for x in range(10, 56, 9):
        rect(x, 8, x + 1, 13, [140, 150, 170, 255])
    # Three connections: graceful (green), open (blue), reset (red, with a RST mark).
    rect(8, 18, 50, 26, [90, 170, 90, 255])
    rect(16, 32, 58, 40, [70, 130, 230, 255])
    rect(8, 46, 34, 54, [220, 50, 47, 255])
    rect(34, 42, 38, 58, [255, 235, 235, 255])
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "icon.png")
    with open(out, "wb") as f:
        f.write(png(px))
    print(out)


if __name__ == "__main__":
    main()
