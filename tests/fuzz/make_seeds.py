#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Run from the repository root:  /usr/bin/python3 tests/fuzz/make_seeds.py
(Debian's python3 with python3-numpy and python3-pil). The output is
committed; rerunning rewrites the same files.

Valid seeds come from independent writers (NumPy for .npy, Pillow for
images, struct for IDX) so the fuzzer starts inside every format's main
paths; a few malformed ones start it at the error paths. Each image seed
begins with the fuzz_image control byte (channels and the PNG CRC fix-up
bit, see fuzz_image.c); each tree seed with the control byte of
fuzz_in9.c / fuzz_rival10.c.
"""
import io
import os
import struct

import numpy as np
from numpy.lib import format as npf
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- npy
def npy(arr, version=None):
    b = io.BytesIO()
    npf.write_array(b, arr, version=version, allow_pickle=False)
    return b.getvalue()


fixtures = os.path.join(ROOT, "tests", "fixtures", "npy")
for f in sorted(os.listdir(fixtures)):
    with open(os.path.join(fixtures, f), "rb") as src:
        put("npy", f, src.read())
put("npy", "mask_bool_4x5.npy", npy(np.arange(20).reshape(4, 5) % 3 == 0))
put("npy", "u1_1x3x4.npy", npy(np.arange(12, dtype=np.uint8).reshape(1, 3, 4)))
put("npy", "f8_fortran_2x3x2.npy", npy(np.asfortranarray(np.arange(12.0).reshape(2, 3, 2))))
put("npy", "i1_be_v2.npy", npy(np.array([-128, 0, 127], dtype=">i4"), (2, 0)))
put("npy", "rank8.npy", npy(np.zeros((1, 1, 1, 1, 1, 1, 2, 1), dtype="<f4")))
# malformed: truncated data, header length past the end, a Python-ish dict
# with an unknown key, a shape with a negative entry, rank 9, u4 dtype
good = npy(np.arange(6, dtype="<f4").reshape(2, 3))
put("npy", "bad_truncated.npy", good[:-3])
put("npy", "bad_hlen.npy", good[:8] + b"\xff\xff" + good[10:])
put("npy", "bad_key.npy", good.replace(b"'shape'", b"'shapf'"))
put("npy", "bad_negdim.npy", good.replace(b"(2, 3)", b"(2,-3)"))
put("npy", "bad_rank9.npy", npy(np.zeros((1,) * 9, dtype="<f4")))
put("npy", "bad_u4.npy", npy(np.arange(3, dtype="<u4")))


# ---------------------------------------------------------------- idx
def idx(code, fmt, shape, values):
    hdr = struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">%dI" % len(shape), *shape)
    return hdr + struct.pack(">%d%s" % (len(values), fmt), *values)


put("idx", "u8_2x3x3.idx", idx(0x08, "B", (2, 3, 3), range(18)))
put("idx", "labels_u8_5.idx", idx(0x08, "B", (5,), [0, 9, 3, 3, 1]))
put("idx", "i8_4.idx", idx(0x09, "b", (4,), [-128, -1, 0, 127]))
put("idx", "i16_2x2.idx", idx(0x0B, "h", (2, 2), [-32768, -1, 1, 32767]))
put("idx", "i32_3.idx", idx(0x0C, "i", (3,), [-(2**31), 0, 2**31 - 1]))
put("idx", "f32_2x2.idx", idx(0x0D, "f", (2, 2), [0.5, -1.0, 3.25, float("inf")]))
put("idx", "f64_2.idx", idx(0x0E, "d", (2,), [1e300, float("nan")]))
put("idx", "zero_dim.idx", idx(0x08, "B", (0, 28, 28), []))
put("idx", "bad_magic.idx", b"\x01" + idx(0x08, "B", (2,), [1, 2])[1:])
put("idx", "bad_short.idx", idx(0x08, "B", (2, 3), range(6))[:-1])
put("idx", "bad_long.idx", idx(0x08, "B", (2, 3), range(6)) + b"\0")
put("idx", "bad_type.idx", idx(0x08, "B", (2,), [1, 2]).replace(b"\x08", b"\x0a", 1))


# ---------------------------------------------------------------- images
def enc(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


y, x = np.mgrid[0:6, 0:7]
rgb = np.stack([x * 36, y * 40, (x + y) * 20], -1).astype(np.uint8)
rgba = np.concatenate([rgb, (x * 30 + 40)[..., None].astype(np.uint8)], -1)
gray = rgb[..., 0]
la = np.stack([gray, rgb[..., 1]], -1)
FIX = 0x80  # fuzz_image control bit: rewrite PNG CRCs

images = {
    "rgb.png": enc(Image.fromarray(rgb), "PNG"),
    "rgba.png": enc(Image.fromarray(rgba), "PNG"),
    "gray.png": enc(Image.fromarray(gray), "PNG"),
    "la.png": enc(Image.fromarray(la, "LA"), "PNG"),
    "pal_trns.png": enc(Image.fromarray(rgb).quantize(5), "PNG", transparency=1),
    "gray16.png": enc(Image.fromarray((gray.astype(np.uint16) * 257), "I;16"), "PNG"),
    "bilevel.png": enc(Image.fromarray(gray > 100), "PNG"),
    "rgb.jpg": enc(Image.fromarray(rgb), "JPEG", quality=90),
    "gray.jpg": enc(Image.fromarray(gray), "JPEG", quality=75),
    "rgb_444.jpg": enc(Image.fromarray(rgb), "JPEG", quality=95, subsampling=0),
    "progressive.jpg": enc(Image.fromarray(rgb), "JPEG", quality=80, progressive=True),
    "rgb24.bmp": enc(Image.fromarray(rgb), "BMP"),
    "gray8.bmp": enc(Image.fromarray(gray), "BMP"),
    "pal4.bmp": enc(Image.fromarray(rgb).quantize(12), "BMP"),
    "mono.bmp": enc(Image.fromarray(gray > 100), "BMP"),
}
for i, (name, data) in enumerate(sorted(images.items())):
    put("image", name, bytes([FIX | (i % 5)]) + data)
# the same files asking for other channel counts, CRCs left as they are
for c, name in enumerate(["rgb.png", "la.png", "rgb.jpg", "pal4.bmp", "gray.png"]):
    put("image", "ch%d_%s" % (c, name), bytes([c]) + images[name])
# malformed: truncated PNG and JPEG, a bad CRC, a PNG claiming 16384x16384,
# a BMP with RLE, a JPEG without EOI
png = images["rgb.png"]
put("image", "bad_trunc.png", bytes([3]) + png[: len(png) // 2])
put("image", "bad_crc.png", bytes([3]) + png[:29] + bytes([png[29] ^ 1]) + png[30:])
put("image", "bad_huge.png", bytes([FIX]) + png[:16] + struct.pack(">II", 16384, 16384) + png[24:])
jpg = images["rgb.jpg"]
put("image", "bad_trunc.jpg", bytes([3]) + jpg[: len(jpg) * 2 // 3])
put("image", "bad_noeoi.jpg", bytes([0]) + jpg[:-2])
bmp = bytearray(images["gray8.bmp"])
bmp[30:34] = struct.pack("<I", 1)
put("image", "bad_rle.bmp", bytes([1]) + bytes(bmp))


# ---------------------------------------------------------------- trees
def tree(ctrl, lines):
    return bytes([ctrl]) + "\n".join(lines).encode() + b"\n"


# in9 control: variant = b & 3 (original, mixed_rand, mixed_same, only_fg),
# val = b & 4, mask mode = (b >> 3) % 3 (required, optional, none)
put("in9", "original_required", tree(0, [
    "original/train/00_dog/n02085620_1.JPEG", "original/train/00_dog/n02085620_2.jpg",
    "original/train/01_bird/n01530575_7.png",
    "fg_mask/train/00_dog/n02085620_1.npy", "fg_mask/train/00_dog/n02085620_2.npy",
    "fg_mask/train/01_bird/n01530575_7.npy"]))
put("in9", "mixed_rand_val_optional", tree(1 | 4 | 8, [
    "mixed_rand/val/00_dog/fg_n02085620_1_bg_n01530575_7.JPEG",
    "mixed_rand/val/00_dog/fg_n02085620_3_bg_x_bg_y.png",
    "mixed_rand/val/01_bird/fg_n01530575_7_bg_n02085620_1.JPEG",
    "mixed_rand/val/01_bird/.hidden.jpg",
    "fg_mask/val/00_dog/n02085620_1.npy", "fg_mask/val/01_bird/n01530575_7.npy"]))
put("in9", "only_fg_none", tree(3 | 16, [
    "only_fg/train/a/x.bmp", "only_fg/train/b/y.JPEG", "only_fg/train/b/z.PNG"]))
put("in9", "folder_masks", tree(8, [
    "f/cat/1.jpg", "f/cat/2.png", "f/dog/3.jpeg",
    "f_masks/cat/1.npy", "f_masks/cat/2.png", "f_masks/dog/3.npy", "f_masks/dog/3.png"]))
put("in9", "bad_missing_mask", tree(0, [
    "original/train/00_dog/a.jpg", "original/train/00_dog/b.jpg", "fg_mask/train/00_dog/a.npy"]))
put("in9", "bad_file_as_class", tree(16, ["original/train/readme.txt", "original/train/c/a.jpg"]))
put("in9", "bad_not_image", tree(16, ["original/train/c/a.jpg", "original/train/c/notes.txt",
                                      "f/c/a.jpg", "f/c/b.gif"]))
put("in9", "bad_empty_class", tree(16, ["original/train/c/", "f/c/"]))

# rival10 control: test = b & 1, mask mode = (b >> 1) % 3
MAP = ('{"tench": ["fish", 0], "goldfish": ["fish", 0], "beagle": ["dog", 1], '
       '"n01530575": ["bird", 2]}')
W2C = '{"n01440764": "tench", "n01443537": "goldfish", "n02088364": "beagle"}'
put("rival10", "train_required", tree(0, [
    "meta/label_mappings.json\t" + MAP, "meta/wnid_to_class.json\t" + W2C,
    "train/ordinary/n01440764_1.JPEG", "train/ordinary/n01440764_1_attr_labels.npy",
    "train/ordinary/n01440764_1_attr_dict.pkl", "train/ordinary/n01440764_1_merged_mask.JPEG",
    "train/ordinary/n02088364_5.JPEG", "train/ordinary/n01530575_9.JPEG",
    "train/entire_object_masks/n01440764_1.JPEG", "train/entire_object_masks/n02088364_5.png",
    "train/entire_object_masks/n01530575_n01530575_9.JPEG"]))
put("rival10", "test_optional", tree(1 | 2, [
    "meta/label_mappings.json\t" + MAP, "meta/wnid_to_class.json\t" + W2C,
    "test/ordinary/n01443537_3.JPEG", "test/ordinary/n02088364_4.jpg",
    "test/entire_object_masks/n01443537_3.jpeg"]))
put("rival10", "wnid_keyed_none", tree(4, [
    'meta/label_mappings.json\t{"n01": ["a", 0], "n02": ["b", 1]}',
    "train/ordinary/n01_1.JPEG", "train/ordinary/n02_1.JPEG"]))
put("rival10", "bad_json", tree(4, [
    'meta/label_mappings.json\t{"n01": ["a", 0], "n02": ["b", 1.5]',
    "train/ordinary/n01_1.JPEG"]))
put("rival10", "bad_label_gap", tree(4, [
    'meta/label_mappings.json\t{"n01": ["a", 0], "n02": ["b", 2]}',
    "train/ordinary/n01_1.JPEG"]))
put("rival10", "bad_unknown_wnid", tree(4, [
    'meta/label_mappings.json\t{"tench": ["fish", 0]}',
    'meta/wnid_to_class.json\t{"n01440764": "tench"}',
    "train/ordinary/n01440764_1.JPEG", "train/ordinary/n09999999_1.JPEG"]))
put("rival10", "bad_two_names", tree(4, [
    'meta/label_mappings.json\t{"n01": ["a", 0], "n02": ["b", 0]}',
    "train/ordinary/n01_1.JPEG"]))


# ---------------------------------------------------------------- safetensors
def safetensors(tensors, meta=None, pad=True, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes), written in that order."""
    import json
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = raw_header if raw_header is not None else json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = np.arange(6, dtype="<f4").reshape(2, 3)
u8 = np.array([0, 1, 254, 255], dtype=np.uint8)
put("safetensors", "two_tensors_meta.safetensors", safetensors(
    [("conv1.weight", "F32", f32.shape, f32.tobytes()), ("fc.bias", "U8", u8.shape, u8.tobytes())],
    meta={"arch": "resnet18", "epoch": "3"}))
put("safetensors", "f64_scalar_i64.safetensors", safetensors(
    [("step", "F64", (), np.array(2.5, dtype="<f8").tobytes()),
     ("optim.t", "I64", (2, 2), np.array([[-1, 0], [1, 2**62]], dtype="<i8").tobytes())]))
put("safetensors", "empty_tensor.safetensors", safetensors(
    [("e", "F32", (0, 3), b""), ("x", "U8", (1,), b"\x07")]))
put("safetensors", "no_tensors.safetensors", safetensors([], meta={"k": "v"}))
good = safetensors([("a", "F32", (2,), np.array([1, 2], dtype="<f4").tobytes()),
                    ("b", "F32", (1,), np.array([3], dtype="<f4").tobytes())])
put("safetensors", "bad_truncated.safetensors", good[:-2])
put("safetensors", "bad_header_len.safetensors", struct.pack("<Q", 2**40) + good[8:])
put("safetensors", "bad_overlap.safetensors", safetensors([], raw_header=(
    b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
    b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')) + b"\0" * 8)
put("safetensors", "bad_dtype.safetensors", safetensors([("a", "BF16", (2,), b"\0" * 4)]))
put("safetensors", "bad_not_json.safetensors", safetensors([], raw_header=b"{'a': 1}"))
put("safetensors", "bad_duplicate.safetensors", safetensors([], raw_header=(
    b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
    b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}')) + b"\1\2")
