"""The script a user would write with OpenCV's dnn_superres: the peer to beat.

    python peer_opencv.py MODEL.pb FACTOR INPUT_DIR OUTPUT_DIR EXT      (end to end)
    python peer_opencv.py MODEL.pb FACTOR INPUT_DIR --in-memory         (upsample() only)

Runs in its own virtual environment (opencv-contrib-python-headless conflicts with the
project's OpenCV wheel).
"""

import sys
import time
from pathlib import Path

import cv2

model, factor, src = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
sr = cv2.dnn_superres.DnnSuperResImpl_create()
sr.readModel(model)
sr.setModel("espcn", factor)
if sys.argv[4] == "--in-memory":
    images = [cv2.imread(str(p)) for p in sorted(src.iterdir())]
    sr.upsample(images[0])  # warm up
    started = time.perf_counter()
    pixels = sum(sr.upsample(img).shape[0] * img.shape[1] * factor for img in images)
    print(f"{time.perf_counter() - started} {pixels}")
else:
    out, ext = Path(sys.argv[4]), sys.argv[5]
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        cv2.imwrite(str(out / (path.stem + ext)), sr.upsample(cv2.imread(str(path))))
