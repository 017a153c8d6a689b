#!/usr/bin/env python3
"""Correctness of sluice-kernel groupby and its CSV/TSV reader: against awk on generated data, against
a reference RFC 4180 parser on quoted CSV (commas, newlines and doubled quotes in fields, CRLF,
UTF-8, NUL bytes), split boundaries inside quoted fields (splits 1..N and threads 1..N give the same
result), map/reduce = single process, --memory spills, empty input, header/no header, TSV, a bad
cell (file:line:column; --bad-rows skip counts it), usage errors.

Usage: groupby_csv.py [PATH/TO/sluice-kernel]   (default: $SLUICE_KERNEL or build/kernels/sluice-kernel)"""
import json
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import check, eq, expect, finish  # noqa: E402

from kfiles import C_ENV, KERNEL, fresh, kern, make_tmp, path, read, write  # noqa: E402

TMP = make_tmp("sluice-gb-")


def csv_quote(cell):
    if any(c in cell for c in (b",", b'"', b"\n", b"\r")):
        return b'"' + cell.replace(b'"', b'""') + b'"'
    return cell


def parse_csv(data, delim=b","):
    """Reference RFC 4180 parser (bytes): a list of records (lists of cells); blank lines skipped."""
    recs, i, n = [], 0, len(data)
    quoting = delim == b","
    while i < n:
        if data[i:i + 1] == b"\n":
            i += 1
            continue
        if data[i:i + 2] == b"\r\n":
            i += 2
            continue
        rec, cell = [], b""
        while True:
            if quoting and i < n and data[i:i + 1] == b'"' and cell == b"":
                j = i + 1
                buf = b""
                while True:
                    k = data.index(b'"', j)
                    buf += data[j:k]
                    if data[k + 1:k + 2] == b'"':
                        buf += b'"'
                        j = k + 2
                    else:
                        i = k + 1
                        break
                cell = buf
                quoted = True
            else:
                quoted = False
            j = i
            while j < n and data[j:j + 1] not in (delim, b"\n"):
                j += 1
            if not quoted:
                cell = data[i:j]
                if j < n and data[j:j + 1] == b"\n" and cell.endswith(b"\r"):
                    cell = cell[:-1]
            else:
                expect(data[i:j] in (b"", b"\r"), "reference parser: text after a quote")
            rec.append(cell)
            if j >= n or data[j:j + 1] == b"\n":
                i = j + 1
                break
            i = j + 1
            cell = b""
        recs.append(rec)
    return recs


def tsv_unescape(cell):
    out, i = b"", 0
    while i < len(cell):
        c = cell[i:i + 1]
        if c == b"\\" and i + 1 < len(cell):
            out += {b"t": b"\t", b"n": b"\n", b"r": b"\r"}.get(cell[i + 1:i + 2], cell[i + 1:i + 2])
            i += 2
        else:
            out += c
            i += 1
    return out


def result_rows(p):
    """A TSV result file: (header, {key tuple: [cells]})."""
    lines = read(p).split(b"\n")
    expect(lines[-1] == b"", "result ends with a newline")
    hdr = lines[0].split(b"\t")
    rows = [[tsv_unescape(c) for c in ln.split(b"\t")] for ln in lines[1:-1]]
    return hdr, rows


def reference(recs, keys, aggs):
    """Group reference rows: recs are lists of cells (no header); keys, aggs use 0-based columns."""
    groups = {}
    for r in recs:
        k = tuple(r[c] for c in keys)
        g = groups.setdefault(k, [None] * len(aggs))
        for i, (kind, col) in enumerate(aggs):
            cell = r[col] if col is not None else b"x"
            if kind == "count":
                g[i] = (g[i] or 0) + (1 if cell != b"" else 0)
            elif kind in ("first", "last"):
                if kind == "last" or g[i] is None:
                    g[i] = cell
            elif cell != b"":
                v = float(cell)
                if kind == "sum":
                    g[i] = (g[i] or 0) + v
                elif kind == "min":
                    g[i] = v if g[i] is None else min(g[i], v)
                elif kind == "max":
                    g[i] = v if g[i] is None else max(g[i], v)
                elif kind == "mean":
                    s, c = g[i] or (0, 0)
                    g[i] = (s + v, c + 1)
    out = {}
    for k, g in groups.items():
        out[k] = [(x[0] / x[1] if isinstance(x, tuple) else x) for x in g]
    return out


def same_groups(rows, nkeys, ref, aggs, what):
    got = {tuple(r[:nkeys]): r[nkeys:] for r in rows}
    eq(sorted(got), sorted(ref), what + ": group keys")
    eq(len(rows), len(got), what + ": one row per group")
    for k, want in ref.items():
        for (kind, _), g, w in zip(aggs, got[k], want):
            if kind in ("first", "last"):
                eq(g, w, "%s: %s of %r" % (what, kind, k))
            elif w is None:
                eq(g, b"", "%s: %s of %r (no values)" % (what, kind, k))
            else:
                gv = float(g)
                expect(abs(gv - w) <= 1e-9 * max(1.0, abs(w)), "%s: %s of %r: %r vs %r" % (what, kind, k, g, w))


def manifest(d, n=0):
    return json.loads(read(os.path.join(d, "_manifest-%05d.json" % n)))


def gen_plain(rnd, n):
    keys = ["a", "b", "ü", "日本", "x y", "k" * 40]
    lines = [b"k1,k2,v,f,s"]
    for i in range(n):
        v = rnd.randint(-1000, 1000)
        f = "%.6f" % rnd.uniform(-100, 100) if rnd.random() > 0.1 else ""
        lines.append(("%s,%d,%d,%s,w%d" % (rnd.choice(keys), rnd.randint(1, 4), v, f, i)).encode())
    return b"\n".join(lines) + b"\n"


AWK = r'''
BEGIN { FS = "," }
NR > 1 {
  k = $1; n[k]++; s[k] += $3
  if (!(k in mn) || $3 < mn[k]) mn[k] = $3
  if (!(k in mx) || $3 > mx[k]) mx[k] = $3
  if ($4 != "") { fs[k] += $4; fc[k]++ }
  if (!(k in first)) first[k] = $5
  last[k] = $5
}
END { for (k in n) printf "%s\t%d\t%d\t%d\t%d\t%.17g\t%d\t%s\t%s\n", k, s[k], n[k], mn[k], mx[k], fs[k], fc[k], first[k], last[k] }
'''


def t_vs_awk():
    data = gen_plain(random.Random(1), 20000)
    f = write("plain.csv", data)
    out = fresh("o")
    kern("groupby", "-o", out, "--key", "k1", "--agg", "sum:v,count,min:v,max:v,mean:f,count:f,first:s,last:s", f)
    hdr, rows = result_rows(os.path.join(out, "part-00000.tsv"))
    eq(hdr, [b"k1", b"sum_v", b"count", b"min_v", b"max_v", b"mean_f", b"count_f", b"first_s", b"last_s"], "header")
    awk = subprocess.run(["awk", AWK, f], capture_output=True, check=True, env=C_ENV).stdout
    ref = {}
    for ln in awk.strip(b"\n").split(b"\n"):
        c = ln.split(b"\t")
        ref[c[0]] = c
    eq(sorted(r[0] for r in rows), sorted(ref), "groups")
    for r in rows:
        a = ref[r[0]]
        eq(r[1:5], a[1:5], "sum/count/min/max of %r" % r[0])
        expect(abs(float(r[5]) - float(a[5]) / int(a[6])) < 1e-9, "mean of %r" % r[0])
        eq(r[6:], a[6:], "count:f, first, last of %r" % r[0])
    # rows are sorted by key bytes
    eq([r[0] for r in rows], sorted(r[0] for r in rows), "sorted by key bytes")
    # two keys, against the reference
    out2 = fresh("o")
    kern("groupby", "-o", out2, "--key", "k1,k2", "--agg", "sum:v,mean:f,count", f)
    _, rows2 = result_rows(os.path.join(out2, "part-00000.tsv"))
    aggs = [("sum", 2), ("mean", 3), ("count", None)]
    same_groups(rows2, 2, reference(parse_csv(data)[1:], [0, 1], aggs), aggs, "k1,k2")


def quoted_data(rnd, n, crlf=False):
    """CSV with quoted keys and values holding commas, CR, LF, doubled quotes, UTF-8 and NUL."""
    keys = [b"plain", b"com,ma", b"new\nline", b'quo"te', b"\xc3\xa9t\xc3\xa9", b"nul\x00byte", b"cr\r\nlf",
            b"", b'"', b"x" * 300]
    eol = b"\r\n" if crlf else b"\n"
    out = [b"key,v,note" + eol]
    for i in range(n):
        k = rnd.choice(keys)
        note = rnd.choice([b"n%d" % i, b"long, note\nwith\nlines %d" % i, b'say ""hi"" %d' % i, b""])
        kq = csv_quote(k) if (rnd.random() < 0.5 or k != csv_quote(k)) else k
        if kq == k and rnd.random() < 0.3:
            kq = b'"' + k + b'"'  # quoting a field that needs none is allowed too
        out.append(kq + b"," + str(rnd.randint(0, 99)).encode() + b"," + csv_quote(note) + eol)
    return b"".join(out)


def t_quoted_csv():
    for crlf in (False, True):
        data = quoted_data(random.Random(2 + crlf), 3000, crlf)
        if crlf:
            data = data[:-2]  # and no line end at the very end
        f = write("quoted-%d.csv" % crlf, data)
        out = fresh("o")
        aggs = [("sum", 1), ("count", None), ("first", 2), ("last", 2), ("min", 1)]
        kern("groupby", "-o", out, "--key", "key", "--agg", "sum:v,count,first:note,last:note,min:v", f)
        _, rows = result_rows(os.path.join(out, "part-00000.tsv"))
        same_groups(rows, 1, reference(parse_csv(data)[1:], [0], aggs), aggs, "quoted crlf=%s" % crlf)
        # CSV output quotes what needs it and reads back to the same groups
        out2 = fresh("o")
        kern("groupby", "-o", out2, "--key", "key", "--agg", "sum:v,count,first:note,last:note,min:v",
             "--output-format", "csv", f)
        back = parse_csv(read(os.path.join(out2, "part-00000.csv")))
        eq(back[0], [b"key", b"sum_v", b"count", b"first_note", b"last_note", b"min_v"], "csv header")
        eq(sorted(back[1:]), sorted(rows), "csv output = tsv output")


def split_result(f, n, parts, extra=()):
    """map with --split i/n into `parts` partitions, then reduce: the sorted result rows."""
    shuf, res = fresh("shuf"), fresh("res")
    for i in range(n):
        kern("groupby", "map", "-o", shuf, "--split", "%d/%d" % (i, n), "--partitions", parts, *extra, f)
    rows = []
    for p in range(parts):
        kern("groupby", "reduce", "-o", res, "--partition", p, "--partitions", parts, shuf)
        rows += result_rows(os.path.join(res, "part-%05d.tsv" % p))[1]
    expect(os.path.exists(os.path.join(res, "_SUCCESS")), "reduce _SUCCESS")
    return sorted(rows)


def t_splits_inside_quotes():
    # long quoted fields full of newlines: most nominal split offsets land inside one
    rnd = random.Random(3)
    recs = [b"key,v,blob"]
    for i in range(400):
        blob = b"\n".join(b"line %d, \"\" quoted" % j for j in range(rnd.randint(0, 30)))
        recs.append(csv_quote(rnd.choice([b"a", b"b,c", b"d\ne", b"f"])) + b",%d," % rnd.randint(1, 9) + csv_quote(blob))
    data = b"\n".join(recs) + b"\n"
    f = write("splits.csv", data)
    extra = ("--key", "key", "--agg", "sum:v,count,first:blob,last:blob,max:v")
    one = fresh("one")
    kern("groupby", "-o", one, *extra, f)
    want = sorted(result_rows(os.path.join(one, "part-00000.tsv"))[1])
    aggs = [("sum", 1), ("count", None), ("first", 2), ("last", 2), ("max", 1)]
    same_groups(want, 1, reference(parse_csv(data)[1:], [0], aggs), aggs, "split source")
    for n in (1, 2, 3, 5, 8, 13):
        for parts in (1, 3):
            eq(split_result(f, n, parts, extra), want, "splits %d partitions %d" % (n, parts))
    for t in (2, 3, 4):
        o = fresh("thr")
        kern("groupby", "--threads", t, "-o", o, *extra, f)
        eq(read(os.path.join(o, "part-00000.tsv")), read(os.path.join(one, "part-00000.tsv")), "threads %d" % t)
    # the resync rule directly: every byte offset as a split point of 2 splits
    small = quoted_data(random.Random(4), 40)
    g = write("small.csv", small)
    base = fresh("b")
    kern("groupby", "-o", base, "--key", "key", "--agg", "count,sum:v", g)
    want2 = sorted(result_rows(os.path.join(base, "part-00000.tsv"))[1])
    for n in (2, 7, 31):
        eq(split_result(g, n, 1, ("--key", "key", "--agg", "count,sum:v")), want2, "small file, %d splits" % n)


def t_memory_spill():
    rnd = random.Random(5)
    lines = [b"k,v"] + [b"key%d,%d" % (rnd.randint(0, 30000), rnd.randint(0, 9)) for _ in range(60000)]
    f = write("many.csv", b"\n".join(lines) + b"\n")
    a, b = fresh("a"), fresh("b")
    kern("groupby", "-o", a, "--key", "k", "--agg", "sum:v,count,min:v", f)
    p = kern("groupby", "-v", "-o", b, "--key", "k", "--agg", "sum:v,count,min:v", "--memory", "1M", f)
    expect(b"flushed" in p.stderr, "spilled: %r" % p.stderr[-300:])
    eq(sorted(result_rows(os.path.join(b, "part-00000.tsv"))[1]), sorted(result_rows(os.path.join(a, "part-00000.tsv"))[1]),
       "spilled = in memory")
    # the bound holds: 300,000 groups of 5 aggregates need ~70 MB in memory, 16M keeps the peak low
    if b"libasan" not in subprocess.run(["ldd", KERNEL], capture_output=True).stdout:
        big = write("big.csv", b"k,v\n" + b"".join(b"key%07d,%d\n" % (i * 7919 % 300000, i % 10) for i in range(300000)))
        free_, bound = fresh("free"), fresh("bound")
        kern("groupby", "-o", free_, "--key", "k", "--agg", "sum:v,count,min:v,max:v,mean:v", big)
        kern("groupby", "-o", bound, "--key", "k", "--agg", "sum:v,count,min:v,max:v,mean:v", "--memory", "16M", big)
        hi, lo = manifest(free_)["peak_rss"], manifest(bound)["peak_rss"]
        expect(hi > 60 << 20 and lo < (28 << 20), "peak RSS %d MB unbounded, %d MB with --memory 16M" %
               (hi >> 20, lo >> 20))
        eq(sorted(result_rows(os.path.join(bound, "part-00000.tsv"))[1]),
           sorted(result_rows(os.path.join(free_, "part-00000.tsv"))[1]), "bounded = unbounded")
    c = fresh("c")
    kern("groupby", "--threads", 3, "-o", c, "--key", "k", "--agg", "sum:v,count,min:v", "--memory", "1M", f)
    eq(sorted(result_rows(os.path.join(c, "part-00000.tsv"))[1]), sorted(result_rows(os.path.join(a, "part-00000.tsv"))[1]),
       "3 threads, spilled = in memory")
    # the map's combiner flushes too; the reduce merges the repeated keys
    eq(split_result(f, 2, 2, ("--key", "k", "--agg", "sum:v,count,min:v", "--memory", "1M")),
       sorted(result_rows(os.path.join(a, "part-00000.tsv"))[1]), "map flushes + reduce")


def t_empty_header_tsv():
    e = write("empty.csv", b"")
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v,count", e)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\tcount\n", "empty input: the header only")
    h = write("hdronly.csv", b"k,v\r\n")
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", h)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\n", "header only")
    o, s = fresh("o"), fresh("s")
    kern("groupby", "map", "-o", s, "--key", "k", "--agg", "sum:v", "--partitions", 2, e)
    kern("groupby", "reduce", "-o", o, "--partition", 1, "--partitions", 2, s)
    eq(read(os.path.join(o, "part-00001.tsv")), b"k\tsum_v\n", "empty input through map/reduce")
    # no header: columns by number
    nh = write("nohdr.csv", b"a,1\nb,2\na,3\n\n")
    o = fresh("o")
    kern("groupby", "-o", o, "--header", "no", "--key", "1", "--agg", "sum:2,max:2", nh)
    eq(read(os.path.join(o, "part-00000.tsv")), b"c1\tsum_2\tmax_2\na\t4\t3\nb\t2\t2\n", "no header")
    # TSV: quotes are ordinary bytes
    t = write("t.tsv", b'k\tv\n"a\t1\n"a\t2\nb"\t5\n')
    o = fresh("o")
    kern("groupby", "-o", o, "--format", "tsv", "--key", "k", "--agg", "sum:v", t)
    eq(read(os.path.join(o, "part-00000.tsv")), b'k\tsum_v\n"a\t3\nb"\t5\n', "tsv")
    # typed columns: float sums, an int column refusing a float
    ty = write("typed.csv", b"k,v\na,1\na,2.5\nb,7\n")
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v,mean:v", ty)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\tmean_v\na\t3.5\t1.75\nb\t7\t7\n", "int + float")
    p = kern("groupby", "-o", fresh("o"), "--key", "k", "--agg", "sum:v", "--types", "v:int", ty, ok=(1,))
    expect(b"typed.csv:3:2: '2.5' is not an int64" in p.stderr, p.stderr)
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "min:v,max:v", "--types", "v:string", ty)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tmin_v\tmax_v\na\t1\t2.5\nb\t7\t7\n", "string min/max")


def t_bad_rows():
    data = b'k,v\na,1\nb,x1\nc,3\n"d,4\n'
    f = write("bad.csv", data)
    p = kern("groupby", "-o", fresh("o"), "--key", "k", "--agg", "sum:v", f, ok=(1,))
    expect(("%s:3:2: 'x1' is not a number" % f).encode() in p.stderr, p.stderr)
    o = fresh("o")
    p = kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", "--bad-rows", "skip", f)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\na\t1\nc\t3\n", "bad rows skipped")
    eq(manifest(o)["bad_rows"], 2, "manifest counts the bad cell and the open quote")
    expect(b"not closed" in p.stderr, p.stderr)
    p = kern("groupby", "-o", fresh("o"), "--key", "k", "--agg", "sum:v", "--bad-rows", "skip:1", f, ok=(1,))
    expect(b"more than 1 bad rows" in p.stderr, p.stderr)
    # too few fields; text after a closing quote
    g = write("bad2.csv", b'k,v\na\n"b"x,1\nc,2\n')
    o = fresh("o")
    p = kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", "--bad-rows", "skip", g)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\nc\t2\n", "short row and stray text skipped")
    expect(("%s:2:" % g).encode() in p.stderr and ("%s:3:" % g).encode() in p.stderr, p.stderr)


def t_usage():
    f = write("u.csv", b"k,v\na,1\n")
    for args in (["--key", "k", "--agg", "avg:v", f], ["--key", "k", f], ["--agg", "sum:v", f],
                 ["--key", "k", "--agg", "sum:v"], ["--key", "k", "--agg", "sum", f],
                 ["--key", "k", "--agg", "sum:v", "--format", "xml", f]):
        p = kern("groupby", "-o", fresh("o"), *args, ok=(2,))
        expect(b"groupby" in p.stderr, p.stderr)
    p = kern("groupby", "-o", fresh("o"), "--key", "nope", "--agg", "sum:v", f, ok=(1,))
    expect(b"no column 'nope'" in p.stderr, p.stderr)
    p = kern("groupby", "--help")
    expect(b"--agg" in p.stdout and b"reduce" in p.stdout, "help")
    p = kern("groupby", "reduce", "-o", fresh("o"), "--partition", 0, "--partitions", 1, fresh("nodir"), ok=(1,))
    expect(b"_SUCCESS" in p.stderr or b"No such" in p.stderr, p.stderr)
    # every input file's header must be the first's
    d = path("hdrs")
    os.makedirs(d, exist_ok=True)
    write("hdrs/a.csv", b"k,v\na,1\n")
    write("hdrs/b.csv", b"k,v\r\nb,2\n")
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", d)
    eq(read(os.path.join(o, "part-00000.tsv")), b"k\tsum_v\na\t1\nb\t2\n", "two files, same header (LF, CRLF)")
    write("hdrs/c.csv", b"v,k\n3,c\n")
    p = kern("groupby", "-o", fresh("o"), "--key", "k", "--agg", "sum:v", d, ok=(1,))
    expect(b"c.csv:1: its header differs" in p.stderr, p.stderr)
    # without -o the result goes to standard output; --sum COL etc. add aggregates
    p = kern("groupby", "--key", "k", "--sum", "v", "--count", "--agg", "max:v", f)
    eq(p.stdout, b"k\tmax_v\tsum_v\tcount\na\t1\t1\t1\n", "stdout, --sum/--count after --agg")
    # a re-run of a committed task is a no-op
    o = fresh("o")
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", f)
    before = read(os.path.join(o, "_manifest-00000.json"))
    kern("groupby", "-o", o, "--key", "k", "--agg", "sum:v", f)
    eq(read(os.path.join(o, "_manifest-00000.json")), before, "re-run is a no-op")


def t_random_bytes():
    """Random CSV-ish bytes: every subcommand ends with 0 or 1 (a clear error), never a crash; and the
    records a split sees always add up to the whole (splits 1..4 agree on count)."""
    rnd = random.Random(9)
    alpha = [b'"', b",", b"\n", b"\r", b"a", b"1", b"2.5", b"\x00", b"\t", b'""', b"\xc3\xa9", b"x", b"-", b"e"]
    for it in range(40):
        data = b"k,v,s\n" + b"".join(rnd.choice(alpha) for _ in range(rnd.randint(0, 300)))
        f = write("rnd.csv", data)
        for args in (["groupby", "-o", fresh("o"), "--key", "k", "--agg", "sum:v,first:s,count,max:v", "--bad-rows", "skip",
                      "--threads", rnd.randint(1, 3)],
                     ["groupby", "map", "-o", fresh("m"), "--key", "k,s", "--agg", "mean:v,last:s", "--partitions", 3],
                     ["join", "-o", fresh("j"), "--key", "k", "--type", rnd.choice(["inner", "left", "full"]),
                      "--bad-rows", "skip", "--memory", rnd.choice(["1k", "1G"]), f]):
            kern(*(args + [f]), ok=(0, 1))
        counts = set()
        for n in (1, 2, 3, 4):
            shuf, res = fresh("s"), fresh("r")
            rc = 0
            for i in range(n):
                rc |= kern("groupby", "map", "-o", shuf, "--split", "%d/%d" % (i, n), "--key", "k", "--agg", "count",
                           "--bad-rows", "skip", f, ok=(0, 1)).returncode
            if rc:
                continue
            kern("groupby", "reduce", "-o", res, "--partition", 0, "--partitions", 1, shuf)
            counts.add(sum(int(r[1]) for r in result_rows(os.path.join(res, "part-00000.tsv"))[1]))
        expect(len(counts) <= 1, "record counts differ between split counts: %r for %r" % (counts, data))


check("groupby matches awk (sum count min max mean first last; one and two keys)", t_vs_awk)
check("groupby on quoted CSV: commas, newlines, quotes, CRLF, UTF-8, NUL; CSV output", t_quoted_csv)
check("groupby: splits 1..13, partitions, threads agree; splits inside quoted fields", t_splits_inside_quotes)
check("groupby --memory: spills (run and map) give the same groups", t_memory_spill)
check("groupby: empty input, header only, no header, TSV, types", t_empty_header_tsv)
check("groupby: bad cells report file:line:column; --bad-rows skip counts them", t_bad_rows)
check("groupby: usage errors, --help, re-run no-op", t_usage)
check("random bytes: no crash; splits agree on the records", t_random_bytes)
shutil.rmtree(TMP, ignore_errors=True)
finish()
