#!/usr/bin/env python3
"""Correctness of sluice-kernel join: inner, left and full joins against coreutils `join` on sorted
generated inputs (duplicate keys on both sides), the same result by broadcast, by the grace join
(--memory small), by join map/reduce over 1..3 partitions and by --split 1..N; quoted CSV (commas,
newlines, quotes, CRLF, UTF-8, NUL) against a reference join; empty inputs; bad rows; usage errors.

Usage: join.py [PATH/TO/sluice-kernel]   (default: $SLUICE_KERNEL or build/kernels/sluice-kernel)"""
import json
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import check, eq, expect, finish  # noqa: E402

from kfiles import C_ENV, fresh, kern, make_tmp, path, read, write  # noqa: E402

TMP = make_tmp("sluice-join-")


def body(p, header=True):
    """The data lines of a TSV result (its header dropped), sorted by bytes."""
    lines = read(p).split(b"\n")
    expect(lines[-1] == b"", "ends with a newline")
    return sorted(lines[1 if header else 0:-1])


def gen_side(rnd, n, keys, tag):
    rows = [b"%s\t%s%d\t%d" % (rnd.choice(keys), tag, i, rnd.randint(0, 99)) for i in range(n)]
    return rows


def coreutils_join(lf, rf, how):
    flags = {"inner": "", "left": "-a1", "full": "-a1 -a2"}[how]
    cmd = "join -t \"$(printf '\\t')\" %s -e '' -o auto <(sort -t \"$(printf '\\t')\" -k1,1 %s) " \
          "<(sort -t \"$(printf '\\t')\" -k1,1 %s) | sort" % (flags, lf, rf)
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, check=True, env=C_ENV).stdout
    return sorted(x for x in out.split(b"\n") if x)


def t_vs_coreutils():
    rnd = random.Random(1)
    keys = [b"k%03d" % i for i in range(300)]
    left = gen_side(rnd, 3000, keys[:250], b"L")
    right = gen_side(rnd, 500, keys[100:], b"R")
    lf = write("l.tsv", b"\n".join(left) + b"\n")
    rf = write("r.tsv", b"\n".join(right) + b"\n")
    common = ("--format", "tsv", "--header", "no", "--key", "1")
    for how in ("inner", "left", "full"):
        want = coreutils_join(lf, rf, how)
        expect(len(want) > 1000, "a join with matches")
        o = fresh("o")
        kern("join", "-o", o, "--type", how, *common, lf, rf)
        eq(body(os.path.join(o, "part-00000.tsv")), want, "broadcast %s" % how)
        eq(read(os.path.join(o, "part-00000.tsv")).split(b"\n")[0], b"c1\tc2\tc3\tc2\tc3", "header without names")
        o = fresh("o")
        p = kern("join", "-v", "-o", o, "--type", how, "--memory", "8k", *common, lf, rf)
        expect(b"grace join" in p.stderr, p.stderr)
        eq(body(os.path.join(o, "part-00000.tsv")), want, "grace %s" % how)
        for parts in (1, 3):
            sl, sr, res = fresh("sl"), fresh("sr"), fresh("res")
            for i in range(2):
                kern("join", "map", "-o", sl, "--split", "%d/2" % i, "--partitions", parts, *common, lf)
            kern("join", "map", "-o", sr, "--partitions", parts, *common, rf)
            got = []
            for p in range(parts):
                kern("join", "reduce", "-o", res, "--type", how, "--partition", p, "--partitions", parts, sl, sr)
                got += body(os.path.join(res, "part-%05d.tsv" % p))
            eq(sorted(got), want, "map/reduce %s, %d partitions" % (how, parts))
        if how != "full":
            for n in (2, 5):
                got, o = [], fresh("o")
                for i in range(n):
                    kern("join", "-o", o, "--type", how, "--split", "%d/%d" % (i, n), *common, lf, rf)
                    got += body(os.path.join(o, "part-%05d.tsv" % i))
                eq(sorted(got), want, "%s with %d splits of the left side" % (how, n))
                expect(os.path.exists(os.path.join(o, "_SUCCESS")), "_SUCCESS after all splits")


def csvq(c):
    return b'"' + c.replace(b'"', b'""') + b'"' if any(x in c for x in (b",", b'"', b"\n", b"\r")) else c


def tsv_esc(c):
    return c.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def t_quoted_csv():
    rnd = random.Random(2)
    keys = [b"a,b", b"new\nline", b'q"uote', b"\xe2\x82\xac", b"n\x00l", b"plain", b"cr\r\nlf"]
    L = [(rnd.choice(keys), b"left %d, with\nnewline" % i if i % 3 == 0 else b"l%d" % i) for i in range(200)]
    R = [(k, b'right ""%d""' % i) for i, k in enumerate(keys[2:] + [b"only-right"])] + [(keys[3], b"second")]
    lf = write("l.csv", b"key,lv\r\n" + b"".join(csvq(k) + b"," + csvq(v) + b"\r\n" for k, v in L))
    rf = write("r.csv", b"key,rv\n" + b"".join(csvq(k) + b"," + csvq(v) + b"\n" for k, v in R))
    for how in ("inner", "left", "full"):
        want = []
        matched = set()
        for k, lv in L:
            ms = [rv for rk, rv in R if rk == k]
            for rv in ms:
                want.append(tsv_esc(k) + b"\t" + tsv_esc(lv) + b"\t" + tsv_esc(rv))
                matched.add(k)
            if not ms and how != "inner":
                want.append(tsv_esc(k) + b"\t" + tsv_esc(lv) + b"\t")
        if how == "full":
            want += [tsv_esc(k) + b"\t\t" + tsv_esc(rv) for k, rv in R if k not in matched]
        o = fresh("o")
        kern("join", "-o", o, "--key", "key", "--type", how, lf, rf)
        eq(read(os.path.join(o, "part-00000.tsv")).split(b"\n")[0], b"key\tlv\trv", "header")
        eq(body(os.path.join(o, "part-00000.tsv")), sorted(want), "quoted %s" % how)
        o = fresh("o")
        kern("join", "-o", o, "--key", "key", "--type", how, "--memory", "4k", lf, rf)
        eq(body(os.path.join(o, "part-00000.tsv")), sorted(want), "quoted grace %s" % how)
    # CSV output
    o = fresh("o")
    kern("join", "-o", o, "--key", "key", "--output-format", "csv", lf, rf)
    out = read(os.path.join(o, "part-00000.csv"))
    expect(b'"a,b"' not in out and b'"q""uote"' in out and b'"cr\r\nlf"' in out, out[:400])


def t_empty_and_bad():
    lf = write("el.csv", b"id,a\n1,x\n2,y\n")
    e = write("e.csv", b"")
    h = write("h.csv", b"id,b\n")
    o = fresh("o")
    kern("join", "-o", o, "--key", "id", lf, h)
    eq(read(os.path.join(o, "part-00000.tsv")), b"id\ta\tb\n", "inner with an empty right side")
    o = fresh("o")
    kern("join", "-o", o, "--key", "id", "--type", "left", lf, h)
    eq(read(os.path.join(o, "part-00000.tsv")), b"id\ta\tb\n1\tx\t\n2\ty\t\n", "left with an empty right side")
    o = fresh("o")
    kern("join", "-o", o, "--key", "id", "--type", "full", e, lf)
    eq(read(os.path.join(o, "part-00000.tsv")), b"id\ta\n1\tx\n2\ty\n", "full join, an empty (0-byte) left side")
    bad = write("bad.csv", b'id,b\n1,p\n2\n3,"open\n')
    p = kern("join", "-o", fresh("o"), "--key", "id", lf, bad, ok=(1,))
    expect(("%s:3: 1 fields, expected 2" % bad).encode() in p.stderr, p.stderr)
    o = fresh("o")
    p = kern("join", "-o", o, "--key", "id", "--bad-rows", "skip", lf, bad)
    eq(read(os.path.join(o, "part-00000.tsv")), b"id\ta\tb\n1\tx\tp\n", "bad rows skipped")
    eq(json.loads(read(os.path.join(o, "_manifest-00000.json")))["bad_rows"], 2, "manifest bad rows")
    for args in (["--key", "id", lf], ["--key", "id", "--type", "cross", lf, lf], [lf, lf],
                 ["--key", "id", "--type", "full", "--split", "0/2", lf, lf]):
        p = kern("join", "-o", fresh("o"), *args, ok=(2,))
        expect(b"join" in p.stderr, p.stderr)
    p = kern("join", "-o", fresh("o"), "--key", "nope", lf, lf, ok=(1,))
    expect(b"no column 'nope'" in p.stderr, p.stderr)
    expect(b"--type" in kern("join", "--help").stdout, "help")
    # different key names per side, several files per side
    r2 = write("r2.csv", b"ref,b\n2,B\n1,A\n")
    o = fresh("o")
    kern("join", "-o", o, "--left-key", "id", "--right-key", "ref", lf, lf, "--right", r2)
    eq(body(os.path.join(o, "part-00000.tsv")), sorted([b"1\tx\tA", b"1\tx\tA", b"2\ty\tB", b"2\ty\tB"]),
       "left-key/right-key, two left files")
    other = write("other.csv", b"a,id\nz,1\n")
    p = kern("join", "-o", fresh("o"), "--left-key", "id", "--right-key", "ref", lf, other, "--right", r2, ok=(1,))
    expect(b"other.csv:1: its header differs" in p.stderr, p.stderr)


def t_dsl_groupby_join():
    """d:groupby (map/reduce) and d:join (partitioned and broadcast) through a real `sluice dags test`."""
    h = harness.Home()
    try:
        rnd = random.Random(7)
        sales = os.path.join(h.dir, "sales")
        os.makedirs(sales)
        rows = []
        for f in range(3):
            lines = [b"region,cust,amount"]
            for _ in range(500):
                r = (rnd.choice([b"north", b"south", b'"east, far"']), b"c%d" % rnd.randint(0, 20), rnd.randint(1, 99))
                rows.append(r)
                lines.append(b"%s,%s,%d" % r)
            with open(os.path.join(sales, "s%d.csv" % f), "wb") as fh:
                fh.write(b"\n".join(lines) + b"\n")
        with open(os.path.join(h.dir, "cust.csv"), "wb") as fh:
            fh.write(b"cust,name\n" + b"".join(b"c%d,Name %d\n" % (i, i) for i in range(0, 25, 2)))
        h.write_dag("gj.lua", """
local d = dag { id = "gj", start_date = "2026-11-01", default_args = { retries = 1, retry_delay = "1s" } }
local g = d:groupby "tot" { input = "%(dir)s/sales", output = "%(dir)s/tot", key = { "cust" },
                            agg = { "sum:amount", "count" }, splits = 3, partitions = 2 }
local j = d:join "named" { left = "%(dir)s/tot", right = "%(dir)s/cust.csv", output = "%(dir)s/named",
                           key = "cust", type = "full", strategy = "partitioned", splits = 2, partitions = 2,
                           format = "tsv", right_format = "csv" }
local b = d:join "bc" { left = "%(dir)s/tot", right = "%(dir)s/cust.csv", output = "%(dir)s/bc",
                        left_key = "cust", right_key = "cust", splits = 2, left_format = "tsv" }
d:flow(g >> j >> b)
return d
""" % {"dir": h.dir})
        show = h.run("dags", "show", "gj")
        eq(show.returncode, 0, "dags show: " + show.stderr)
        for t in ("tot.map", "tot.reduce", "named.map_left", "named.map_right", "named.reduce", "bc.join"):
            expect(t in show.stdout, "dags show lacks %s" % t)
        h.test_run("gj", "--logical-date", "2026-11-05", expect_state="success")
        want = {}
        for _, c, a in rows:
            s, n = want.get(c, (0, 0))
            want[c] = (s + a, n + 1)
        got = []
        for p in range(2):
            got += body(os.path.join(h.dir, "tot", "part-%05d.tsv" % p))
        eq(sorted(got), sorted(b"%s\t%d\t%d" % (c, s, n) for c, (s, n) in want.items()), "d:groupby")
        named = []
        for p in range(2):
            named += body(os.path.join(h.dir, "named", "part-%05d.tsv" % p))
        names = {b"c%d" % i: b"Name %d" % i for i in range(0, 25, 2)}
        full = [b"%s\t%d\t%d\t%s" % (c, s, n, names.get(c, b"")) for c, (s, n) in want.items()]
        full += [b"%s\t\t\t%s" % (c, nm) for c, nm in names.items() if c not in want]
        eq(sorted(named), sorted(full), "d:join full, partitioned")
        bc = []
        for p in range(2):
            bc += body(os.path.join(h.dir, "bc", "part-%05d.tsv" % p))
        eq(sorted(bc), sorted(x for x in full if x.split(b"\t")[1] and x.split(b"\t")[3]), "d:join inner, broadcast")
    finally:
        h.cleanup()


def t_dsl_errors():
    h = harness.Home()
    try:
        cases = {
            "a": ('d:groupby "g" { input = "x", output = "y", key = "k", agg = { "avg:v" } }', "'avg:v' is not an aggregate"),
            "b": ('d:groupby "g" { input = "x", output = "y", agg = "count" }', "d:groupby 'g': key is required"),
            "c": ('d:join "j" { left = "x", right = "y", output = "z", key = "k", type = "full", splits = 2 }',
                  "a full join reads the whole left side"),
            "e": ('d:join "j" { left = "x", right = "y", output = "z" }', "key (or left_key and right_key) is required"),
            "f": ('d:join "j" { left = "x", right = "y", output = "z", key = "k", type = "cross" }', "type must be one of"),
        }
        for name, (body_, _) in cases.items():
            h.write_dag(name + ".lua", 'local d = dag { id = "%s" }\n%s\nreturn d\n' % (name, body_))
        out = h.run("dags", "check")
        for name, (_, msg) in cases.items():
            expect(("%s.lua:2:" % name) in out.stdout + out.stderr and msg in out.stdout + out.stderr,
                   "%s: %r not in %s" % (name, msg, out.stdout + out.stderr))
    finally:
        h.cleanup()


def t_sales_etl_example():
    """dags/sales_etl.lua end to end: its top 10 against the same computation in Python."""
    root_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dags")
    h = harness.Home(dags=os.path.abspath(root_dir))
    try:
        root = os.path.join(h.dir, "sales")
        run = h.test_run("sales_etl", "--conf", json.dumps({"root": root}), expect_state="success")
        base = os.path.join(root, run["run_id"])
        tot = {}
        for name in sorted(os.listdir(os.path.join(base, "sales"))):
            for ln in read(os.path.join(base, "sales", name)).split(b"\n"):
                if ln:
                    _, region, cust, amount = ln.split(b"\t")
                    s, n = tot.get((region, cust), (0.0, 0))
                    tot[(region, cust)] = (s + float(amount), n + 1)
        names = {}
        for ln in read(os.path.join(base, "customers.tsv")).split(b"\n")[1:]:
            if ln:
                c, nm, seg = ln.split(b"\t")
                names[c] = (nm, seg)
        want = sorted(tot.items(), key=lambda kv: -kv[1][0])[:10]
        got = [ln.split(b"\t") for ln in read(os.path.join(base, "top10", "part-00000.tsv")).split(b"\n") if ln]
        eq(len(got), 10, "top10 rows")
        for (key, (s, n)), row in zip(want, got):
            eq((row[1], row[0]), key, "top10 key order")
            expect(abs(float(row[2]) - s) < 1e-6 and int(row[3]) == n, "sum/count of %r: %r" % (key, row))
            eq(tuple(row[6:8]), names[key[1]], "joined customer of %r" % (key,))
    finally:
        h.cleanup()


check("join matches coreutils join (inner/left/full; broadcast, grace, map/reduce, splits)", t_vs_coreutils)
check("join on quoted CSV: commas, newlines, quotes, CRLF, UTF-8, NUL", t_quoted_csv)
check("join: empty inputs, bad rows, usage errors, per-side keys", t_empty_and_bad)
check("d:groupby and d:join through sluice dags test", t_dsl_groupby_join)
check("d:groupby and d:join DSL errors", t_dsl_errors)
check("dags/sales_etl.lua: partition, group-by, join, top 10", t_sales_etl_example)
shutil.rmtree(TMP, ignore_errors=True)
finish()
