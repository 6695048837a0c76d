#!/usr/bin/python3
"""Golden files for src/model/image_processor (tests/model/image_processor_test.cpp).

Reference implementation of the LLaVA-1.5 / CLIPImageProcessor image pipeline with Pillow and
numpy only (Debian: python3-pil, python3-numpy), written from the documented behaviour of
  - LLaVA-1.5 `expand2square(img, tuple(int(x * 255) for x in image_mean))` (image_aspect_ratio
    "pad"; HuatuoGPT-Vision does the same),
  - transformers' CLIPImageProcessor: convert RGB, resize the shortest edge with
    PIL `Image.resize(size, resample)` (reducing_gap=None), center crop, rescale (uint8 * factor in
    float64, then float32), normalize ((x - mean) / std in float32), channels first.
Pillow does the resize itself, so the uint8 image after the resize is Pillow's own output.

Usage: /usr/bin/python3 scripts/reference/clip_preprocess_ref.py [--data ../shared/data]
Writes tests/data/image_processor/golden.json (hashes, sizes, sampled values; a few KB).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def synthetic(pattern, w, h):
    """Same formulas as synthetic_image() in tests/model/image_processor_test.cpp."""
    y, x = np.mgrid[0:h, 0:w].astype(np.uint64)
    out = np.zeros((h, w, 3), dtype=np.uint8)
    for c in range(3):
        if pattern == "ramp":
            v = (x * 3 + y * 5 + c * 85) % 256
        elif pattern == "noise":
            m = np.uint64(0xFFFFFFFF)
            hh = ((x * np.uint64(73856093)) & m) ^ ((y * np.uint64(19349663)) & m) ^ np.uint64(
                (c * 83492791) & 0xFFFFFFFF)
            v = (hh >> np.uint64(11)) & np.uint64(255)
        elif pattern == "checker":
            v = ((x // 4 + y // 4) % 2) * 255
        else:
            raise ValueError(pattern)
        out[:, :, c] = v.astype(np.uint8)
    return Image.fromarray(out, "RGB")


def expand2square(img, background):
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    result = Image.new(img.mode, (side, side), background)
    result.paste(img, ((side - w) // 2, (side - h) // 2))
    return result


def resize_shortest(img, shortest, resample):
    # transformers get_resize_output_image_size(default_to_square=False)
    w, h = img.size
    short, long_ = (w, h) if w <= h else (h, w)
    if short == shortest:
        return img
    new_short, new_long = shortest, int(shortest * long_ / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((nw, nh), resample=resample, reducing_gap=None)


def center_crop(arr, ch, cw):
    h, w = arr.shape[:2]
    if h < ch or w < cw:  # transformers pads with zeros, centred, then crops
        nh, nw = max(h, ch), max(w, cw)
        padded = np.zeros((nh, nw, arr.shape[2]), dtype=arr.dtype)
        top, left = (nh - h) // 2, (nw - w) // 2
        padded[top:top + h, left:left + w] = arr
        arr, h, w = padded, nh, nw
    top, left = (h - ch) // 2, (w - cw) // 2
    return arr[top:top + ch, left:left + cw]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def run_case(case, data_dir):
    if "file" in case:
        img = Image.open(os.path.join(data_dir, case["file"]))
        img = img.convert("RGB")
    else:
        s = case["synthetic"]
        img = synthetic(s["pattern"], s["width"], s["height"])
    decoded = np.asarray(img, dtype=np.uint8)
    mean = case.get("image_mean", CLIP_MEAN)
    std = case.get("image_std", CLIP_STD)
    shortest = case.get("shortest_edge", 336)
    crop = case.get("crop_size", 336)
    resample = case.get("resample", 3)
    if case["pad"]:
        img = expand2square(img, tuple(int(x * 255) for x in mean))
    padded_size = img.size
    img = resize_shortest(img, shortest, resample)
    resized = np.asarray(img, dtype=np.uint8)
    cropped = center_crop(resized, crop, crop)
    x = (cropped * (1 / 255)).astype(np.float32)  # float64 product, then float32
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    chw = np.ascontiguousarray(x.transpose(2, 0, 1)).astype("<f4")

    rh, rw = resized.shape[:2]
    rng = np.random.default_rng(12345)
    samples = []
    for _ in range(12):
        yy, xx, cc = int(rng.integers(rh)), int(rng.integers(rw)), int(rng.integers(3))
        samples.append([xx, yy, cc, int(resized[yy, xx, cc])])
    flat = chw.reshape(-1)
    idx = sorted(set(int(i) for i in rng.integers(flat.size, size=8)))
    out = dict(case)
    out.update({
        "decoded_size": [int(decoded.shape[1]), int(decoded.shape[0])],
        "decoded_sha256": sha(decoded.tobytes()),
        "padded_size": [int(padded_size[0]), int(padded_size[1])],
        "resized_size": [int(rw), int(rh)],
        "resized_sha256": sha(np.ascontiguousarray(resized).tobytes()),
        "resized_samples": samples,
        "output_sha256": sha(chw.tobytes()),
        "output_sum": float(chw.astype(np.float64).sum()),
        "output_samples": [[i, float(flat[i])] for i in idx],
    })
    return out


def cases():
    out = []
    files = [
        "vqa_rad/images/synpic100228.jpg",  # 833x794 CT, near square
        "vqa_rad/images/synpic13385.jpg",  # 987x1200 tall
        "vqa_rad/images/synpic16170.jpg",  # 1023x841
        "vqa_rad/images/synpic100176.jpg",  # 1024x1024 square
        "nonmedical/photos/waterview.jpg",  # 1000x667 photo
        "nonmedical/photos/rocket.jpg",  # 640x427
        "nonmedical/photos/chelsea.png",  # 451x300
        "nonmedical/photos/coins.png",  # 384x303 greyscale
        "nonmedical/photos/page.png",  # 384x191 greyscale: upscaled without pad
        "nonmedical/photos/text.png",  # 448x172 greyscale
        "nonmedical/charts/precisiondate.png",  # 1237x525 wide chart
        "nonmedical/photos/color.png",  # 371x370
        "mmmu/images/ai2d_00000443.png",  # 432x318 diagram
    ]
    for f in files:
        out.append({"name": f + " pad", "file": f, "pad": True})
        out.append({"name": f + " nopad", "file": f, "pad": False})
    syn = [
        ("noise", 1000, 800, True), ("noise", 1000, 800, False),  # downscale ~3x
        ("noise", 200, 120, True), ("noise", 200, 120, False),  # upscale
        ("checker", 50, 300, True), ("checker", 50, 300, False),  # tall, strong upscale
        ("ramp", 337, 336, True), ("ramp", 336, 337, False),  # off by one
        ("noise", 336, 336, True),  # identity resize
        ("ramp", 1, 1, True),  # 1x1 -> 336x336
        ("ramp", 3, 700, True),  # extreme aspect, padded
        ("checker", 7, 40, False),  # extreme aspect, no pad: 336x1920
        ("noise", 4000, 300, True),  # wide downscale by ~12
    ]
    for p, w, h, pad in syn:
        out.append({"name": f"{p} {w}x{h} {'pad' if pad else 'nopad'}",
                    "synthetic": {"pattern": p, "width": w, "height": h}, "pad": pad})
    # Other filters and a non-CLIP config (shortest edge 224, crop 224, mean/std 0.5).
    for resample in (0, 1, 2, 4, 5):
        if resample == 0:
            continue  # NEAREST is not supported by image_processor (PIL uses another path)
        out.append({"name": f"noise 640x480 resample {resample}", "resample": resample,
                    "synthetic": {"pattern": "noise", "width": 640, "height": 480}, "pad": False})
        out.append({"name": f"checker 90x70 resample {resample}", "resample": resample,
                    "synthetic": {"pattern": "checker", "width": 90, "height": 70}, "pad": True})
    out.append({"name": "rocket 224 half", "file": "nonmedical/photos/rocket.jpg", "pad": True,
                "shortest_edge": 224, "crop_size": 224, "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5]})
    out.append({"name": "ramp 300x200 crop larger than resize", "pad": False,
                "synthetic": {"pattern": "ramp", "width": 300, "height": 200},
                "shortest_edge": 200, "crop_size": 256})
    return out


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "image_processor",
                                                  "golden.json"))
    a = ap.parse_args()
    res = [run_case(c, a.data) for c in cases()]
    doc = {"generator": "scripts/reference/clip_preprocess_ref.py",
           "pillow": PIL.__version__, "numpy": np.__version__, "cases": res}
    with open(a.out, "w") as f:  # one case per line, so diffs stay readable
        head = {k: v for k, v in doc.items() if k != "cases"}
        f.write(json.dumps(head)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in res))
        f.write("\n]}\n")
    print(f"wrote {len(res)} cases to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
