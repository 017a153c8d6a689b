#!/usr/bin/env python3
"""The pandas peer of bench/kernels-groupby.sh: one question end to end from the CSV file (read_csv,
aggregate or merge, to_csv), timed inside the process. Prints "seconds rows".
usage: kernels-groupby-pandas.py q1..q5|j1|j2 DATA_DIR OUT_FILE"""
import sys
import time

import pandas as pd

qid, d, out = sys.argv[1:4]
t0 = time.perf_counter()
if qid.startswith("q"):
    df = pd.read_csv(f"{d}/G1.csv")
    g = {
        "q1": lambda: df.groupby("id1", observed=True).agg(v1=("v1", "sum")),
        "q2": lambda: df.groupby(["id1", "id2"], observed=True).agg(v1=("v1", "sum")),
        "q3": lambda: df.groupby("id3", observed=True).agg(v1=("v1", "sum"), v3=("v3", "mean")),
        "q4": lambda: df.groupby("id4", observed=True).agg(v1=("v1", "mean"), v2=("v2", "mean"), v3=("v3", "mean")),
        "q5": lambda: df.groupby("id6", observed=True).agg(v1=("v1", "sum"), v2=("v2", "sum"), v3=("v3", "sum")),
    }
    res = g[qid]()
    res.to_csv(out)
else:
    x = pd.read_csv(f"{d}/x.csv")
    y = pd.read_csv(f"{d}/{'small' if qid == 'j1' else 'medium'}.csv")
    res = x.merge(y, on="id1" if qid == "j1" else "id2", how="inner")
    res.to_csv(out, index=False)
print(f"{time.perf_counter() - t0:.3f} {len(res)}")
