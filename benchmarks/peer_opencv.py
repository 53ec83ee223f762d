"""The script a user would write with OpenCV's dnn_superres: the peer to beat.

    python peer_opencv.py MODEL.pb FACTOR INPUT_DIR OUTPUT_DIR EXT      (end to end)
    python peer_opencv.py MODEL.pb FACTOR INPUT_DIR --in-memory         (upsample() only)
    python peer_opencv.py MODEL.pb FACTOR --check                       (can the model load?)

Runs in its own virtual environment (opencv-contrib-python-headless conflicts with the
project's OpenCV wheel), installed from requirements/peer.txt. A model OpenCV cannot load is
one line on stderr naming the model and the OpenCV version, and exit status 2.
"""

import sys
import time
from pathlib import Path

import cv2

model, factor = sys.argv[1], int(sys.argv[2])
sr = cv2.dnn_superres.DnnSuperResImpl_create()
try:
    sr.readModel(model)
except cv2.error as exc:
    reason = str(exc).strip().splitlines()[-1].strip()
    print(f"OpenCV {cv2.__version__} cannot load the peer model {model}: {reason}", file=sys.stderr)
    sys.exit(2)
sr.setModel("espcn", factor)
if sys.argv[3] == "--check":
    sys.exit(0)
src = Path(sys.argv[3])
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
