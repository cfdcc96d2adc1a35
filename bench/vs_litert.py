#!/usr/bin/env python3
"""Times the official TFLite runtime (LiteRT, XNNPACK) on the same networks, sizes and
thread counts as `styleframe bench`, the way ../shared/reference/make_reference.py does
(2 warm-up runs, median of 7) but with as many runs as `styleframe bench`: 15, and 51 for the
prediction network (a few ms long): single runs on a shared VM vary by up to 1.5x. Prints one line per setting: key<TAB>ms.

    python3 bench/vs_litert.py MODELS_DIR RESIZED_DIR [NETWORK]
NETWORK (e.g. style_predict_quantized_256) times that network only.
RESIZED_DIR holds the transfer files rewritten for 256x448 (LiteRT cannot run the fixed
384x384 graph at another size): ../shared/reference/resized.
"""
import os, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter

models, resized = sys.argv[1:3]
only = sys.argv[3] if len(sys.argv) > 3 else None
settings = [('style_predict_quantized_256', os.path.join(models, 'style_predict_quantized_256.tflite'), '256x256')]
for m in ['style_transfer_f16_384', 'style_transfer_quantized_384']:
    settings.append((m, os.path.join(models, m + '.tflite'), '384x384'))
    settings.append((m, os.path.join(resized, f'{m}_256x448.tflite'), '256x448'))
for model, path, size in settings:
    if not os.path.exists(path) or (only and model != only):
        continue
    for threads in (1, 2):
        it = Interpreter(model_path=path, num_threads=threads)
        it.allocate_tensors()
        rng = np.random.default_rng(0)
        for d in it.get_input_details():
            it.set_tensor(d['index'], rng.random(d['shape'], dtype=np.float32))
        for _ in range(2):
            it.invoke()
        ts = []
        for _ in range(51 if 'predict' in model else 15):
            t = time.perf_counter(); it.invoke(); ts.append((time.perf_counter() - t) * 1000)
        print(f'{model}\t{size}\t{threads}\t{np.median(ts):.2f}', flush=True)
