#!/usr/bin/env python3
"""Correctness of sluice-kernel's wordcount, sort, merge, partition and topk against coreutils
on generated data, the output committer (a killed try, a duplicated try, a re-run), --memory, bad
rows, usage errors, and an end-to-end `sluice dags test` of a d:mapreduce DAG.

Usage: kernels.py [PATH/TO/sluice-kernel]   (default: $SLUICE_KERNEL or build/kernels/sluice-kernel)
Runs in the plain and the sanitizer tier; data sizes are small enough for both."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import check, expect, finish  # noqa: E402

from kfiles import C_ENV, KERNEL, kern, make_tmp, path, read, write  # noqa: E402

TMP = make_tmp("sluice-kern-")
WS = b" \t\n\r\v\f"
SANITIZED = b"libasan" in subprocess.run(["ldd", KERNEL], capture_output=True).stdout


def eq(got, want, what=""):
    """harness.eq, but a long bytes mismatch shows where it starts, not both whole values."""
    if got == want:
        return
    if isinstance(got, bytes) and isinstance(want, bytes) and max(len(got), len(want)) > 300:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        raise AssertionError("%s: %d vs %d bytes, first difference at byte %d: got %r, wanted %r" %
                             (what, len(got), len(want), i, got[max(0, i - 40):i + 80], want[max(0, i - 40):i + 80]))
    harness.eq(got, want, what)


def sh(cmd, data=None):
    return subprocess.run(cmd, shell=True, capture_output=True, input=data, env=C_ENV, check=True).stdout


def coreutils_counts(files):
    """word<TAB>count lines as `tr | sort | uniq -c` computes them (byte order)."""
    # a newline after each file: a word never spans two files
    out = sh("for f in %s; do cat \"$f\"; echo; done | tr -s ' \\t\\n\\r\\v\\f' '\\n' | grep -av '^$' | sort | uniq -c" %
             " ".join("'%s'" % f for f in files))
    lines = []
    for ln in out.split(b"\n"):
        if not ln.strip(b" "):
            continue
        ln = ln.lstrip(b" ")
        n, _, w = ln.partition(b" ")
        lines.append(w + b"\t" + n + b"\n")
    return b"".join(lines)


def wordcount(inputs, splits=1, parts=1, memory=None, name="wc"):
    """Run the map and reduce steps; returns the concatenated, sorted parts."""
    shuf, out = path(name, "shuffle"), path(name, "out")
    shutil.rmtree(path(name), ignore_errors=True)
    extra = ["--memory", memory] if memory else []
    for i in range(splits):
        kern("wordcount", "map", "--split", "%d/%d" % (i, splits), "--partitions", parts, "-o", shuf, *extra, *inputs)
    for p in range(parts):
        kern("wordcount", "reduce", "--partition", p, "--partitions", parts, "--maps", splits, "-o", out, shuf)
    expect(os.path.exists(os.path.join(out, "_SUCCESS")), "no _SUCCESS in the reduce output")
    data = b"".join(read(os.path.join(out, "part-%05d.tsv" % p)) for p in range(parts))
    return b"".join(sorted(data.splitlines(True), key=lambda ln: ln.rsplit(b"\t", 1)[0]))


def gen_words(rng, n, vocab):
    return [vocab[min(int(rng.paretovariate(1.1)) - 1, len(vocab) - 1)] for _ in range(n)]


def make_corpus(rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 20))) for _ in range(3000)]
    vocab += ["caf\u00e9", "\u00fcber", "\u043f\u0440\u0438\u0432\u0435\u0442", "\u65e5\u672c", "x" * 40]
    vocab = [v.encode() for v in vocab] + [b"a\x00b", b"\x00", b"\x00\x00zz", b"\x01\x02", b"\xff\xfe"]
    files = []
    seps = [b" ", b" ", b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\v", b"\f", b"\n\n"]
    for k in range(3):
        words = gen_words(rng, 60000, vocab)
        buf = bytearray()
        for i, w in enumerate(words):
            buf += w
            buf += b"\n" if i % 11 == 10 else rng.choice(seps)
        if k == 1:
            buf += b"tail-without-newline"  # no trailing newline
        files.append(write("corpus/f%d.txt" % k, bytes(buf)))
    files.append(write("corpus/empty.txt", b""))
    files.append(write("corpus/blank.txt", b" \n\t\r\n\v\f  \n"))
    # one huge line (1 MiB, no newline at all) with words longer than the 16 inline bytes
    huge = b" ".join(rng.choice(vocab) + (b"-long-word-%d" % (i % 500)) for i in range(40000))
    files.append(write("corpus/huge.txt", huge[:1 << 20]))
    return files


FILES = []


def t_wordcount_vs_coreutils():
    rng = random.Random(7)
    FILES.extend(make_corpus(rng))
    want = coreutils_counts(FILES)
    got = wordcount(FILES)
    expect(len(want) > 1000, "the reference is empty")
    eq(got, want, "wordcount vs tr|sort|uniq -c")


def t_wordcount_splits_partitions():
    want = wordcount(FILES)
    for splits, parts in ((2, 1), (3, 2), (5, 3), (7, 4)):
        eq(wordcount(FILES, splits, parts, name="wc%d_%d" % (splits, parts)), want,
           "splits=%d partitions=%d" % (splits, parts))


def t_wordcount_wc_w():
    # Printable text: the total of the counts equals LC_ALL=C wc -w.
    rng = random.Random(3)
    words = [rng.choice(["alpha", "beta", "gamma", "d", "ee", "f\u00e9e"]) for _ in range(20000)]
    text = "".join(w + rng.choice([" ", "\n", "\t", "\r\n", "  "]) for w in words).encode()
    f = write("wcw/a.txt", text)
    got = wordcount([f], 3, 2, name="wcw_run")
    total = sum(int(ln.rsplit(b"\t", 1)[1]) for ln in got.splitlines())
    eq(total, int(sh("wc -w < '%s'" % f)), "sum of counts vs wc -w")


def t_wordcount_edge_inputs():
    eq(wordcount([write("e/empty", b"")], 2, 2, name="e1"), b"", "empty input")
    eq(wordcount([write("e/ws", b" \n\n\t ")], 2, 1, name="e2"), b"", "whitespace only")
    eq(wordcount([write("e/one", b"word")], 3, 2, name="e3"), b"word\t1\n", "one word without a newline")
    eq(wordcount([write("e/crlf", b"a b\r\nb\r\n")], name="e4"), b"a\t1\nb\t2\n", "CRLF")
    nul = b"x\x00y z\x00 \x00\n"
    eq(wordcount([write("e/nul", nul)], name="e5"), b"\x00\t1\nx\x00y\t1\nz\x00\t1\n", "NUL bytes")
    # words exactly at the 16-byte inline limit and around it, at a page end
    ws = [b"p" * n for n in (15, 16, 17)]
    data = b"q" * 4090 + b" " + ws[0] + b" " + ws[1] + b" " + ws[2]
    eq(wordcount([write("e/page", data)], name="e6"),
       b"".join(sorted([b"q" * 4090 + b"\t1\n"] + [w + b"\t1\n" for w in ws])), "words around 16 bytes")


def t_wordcount_one_line_splits():
    # One 1.9 MB line: splits cut at whitespace, so three map tasks share it.
    f = write("oneline/l.txt", " ".join("w%d" % (i % 1000) for i in range(300000)).encode())
    got = wordcount([f], 3, 1, name="oneline_run")
    eq(got, b"".join(sorted(b"w%d\t300\n" % i for i in range(1000))), "counts of one line over 3 splits")
    shuf = path("oneline_run", "shuffle")
    rows = [json.load(open(os.path.join(shuf, "_manifest-%05d.json" % t)))["rows_in"] for t in range(3)]
    expect(min(rows) > 90000, "one line not spread over the splits: %s" % rows)


def t_wordcount_memory_spill():
    rng = random.Random(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    # many distinct words: a vocabulary too big for the bound
    words = ["%x%s" % (rng.getrandbits(40), rng.choice(letters)) for _ in range(250000)]
    text = ("\n".join(" ".join(words[i:i + 10]) for i in range(0, len(words), 10)) + "\n").encode() * 2
    f = write("mem/big.txt", text)
    want = wordcount([f], name="mem_ref")
    shuf = path("mem", "shuffle")

    def peak(args):
        """Run a map; its peak RSS as the kernel measured it (VmHWM, in the manifest)."""
        p = subprocess.run([KERNEL] + args, capture_output=True, timeout=120)
        expect(p.returncode == 0, "map failed: %r" % p.stderr)
        man = json.load(open(os.path.join(shuf, "_manifest-00000.json")))
        return man["peak_rss"], p.stderr.decode()

    rss_small, err = peak(["wordcount", "map", "-v", "--memory", "12M", "-o", shuf, f])
    expect("spilled" in err, "no spill with --memory 12M: " + err)
    kern("wordcount", "reduce", "--partition", 0, "--partitions", 1, "-o", path("mem", "out"), shuf)
    eq(read(path("mem", "out", "part-00000.tsv")), want, "spilled counts")
    shutil.rmtree(shuf)
    rss_big, _ = peak(["wordcount", "map", "--memory", "1G", "-o", shuf, f])
    # The bound holds (with slack for the binary, the sanitizer runtime and the mapped input
    # window), and the unbounded run needs more: the check can fail.
    # (Under AddressSanitizer, shadow memory and the allocation quarantine dwarf the bound: the RSS
    # checks apply to the plain build only.)
    if not SANITIZED:
        limit = 12 * 2**20 * 1.5 + 6 * 2**20  # + the binary and the mapped input window
        expect(rss_small <= limit, "peak RSS %.1f MB above the 12M bound" % (rss_small / 2**20))
        expect(rss_big > rss_small, "the unbounded run used no more memory (%d vs %d)" % (rss_big, rss_small))


def t_committer_kill_and_retry():
    rng = random.Random(5)
    words = ["%x" % rng.getrandbits(36) for _ in range(300000)]
    f = write("kill/in.txt", (" ".join(words) + "\n").encode() * 3)
    ref = path("kill", "ref")
    kern("wordcount", "map", "--partitions", 4, "--memory", "8M", "-o", ref, f)
    shuf = path("kill", "shuffle")
    killed = 0
    for delay in (0.02, 0.05, 0.1, 0.2, 0.3):
        proc = subprocess.Popen([KERNEL, "wordcount", "map", "--partitions", "4", "--memory", "8M", "-o", shuf, f],
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        if rc == -signal.SIGKILL and not os.path.exists(os.path.join(shuf, "_manifest-00000.json")):
            killed += 1
            # never a partial part: nothing visible but complete files identical to the reference
            for name in (os.listdir(shuf) if os.path.isdir(shuf) else []):
                if name.startswith("_"):
                    continue
                eq(read(os.path.join(shuf, name)), read(os.path.join(ref, name)), "visible part " + name)
        else:
            shutil.rmtree(shuf)
    expect(killed > 0, "no try was killed mid-run (the machine is too fast for the delays)")
    kern("wordcount", "map", "--partitions", 4, "--memory", "8M", "-o", shuf, f)  # the retry
    for p in range(4):
        name = "m-00000.p-%05d.tsv" % p
        eq(read(os.path.join(shuf, name)), read(os.path.join(ref, name)), "retried " + name)
    expect(os.path.exists(os.path.join(shuf, "_SUCCESS")), "no _SUCCESS after the retry")
    leftovers = [n for n in os.listdir(os.path.join(shuf, "_temporary")) if not n.startswith(".")]
    eq(leftovers, [], "attempt directories of dead tries left behind")
    # a re-run of a committed task is a no-op
    m = os.path.join(shuf, "_manifest-00000.json")
    before = os.stat(m).st_mtime_ns
    kern("wordcount", "map", "--partitions", 4, "-o", shuf, f)
    eq(os.stat(m).st_mtime_ns, before, "manifest rewritten by a re-run")
    man = json.load(open(m))
    eq(man["rows_in"], 900000, "manifest rows_in")
    eq(len(man["files"]), 4, "manifest files")
    expect(all(len(x["checksum"]) == 16 for x in man["files"]), "manifest checksums")


def t_committer_duplicate_try():
    f = FILES[0]
    ref = path("dup", "ref")
    kern("wordcount", "map", "--split", "1/3", "--partitions", 2, "-o", ref, *FILES)
    shuf = path("dup", "shuffle")
    procs = [subprocess.Popen([KERNEL, "wordcount", "map", "--split", "1/3", "--partitions", "2", "-o", shuf, *FILES],
                              stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        eq(p.returncode, 0, "duplicated try: " + err.decode())
    for p in range(2):
        name = "m-00001.p-%05d.tsv" % p
        eq(read(os.path.join(shuf, name)), read(os.path.join(ref, name)), "duplicated " + name)
    expect(not os.path.exists(os.path.join(shuf, "_SUCCESS")), "_SUCCESS with 1 of 3 tasks committed")
    r = kern("wordcount", "reduce", "--partition", 0, "--partitions", 2, "--maps", 3, "-o", path("dup", "o"), shuf,
             ok=(1,))
    expect(b"have not committed" in r.stderr, "reduce over an incomplete shuffle: %r" % r.stderr)
    kern("wordcount", "map", "--partitions", 2, "-o", path("dup", "p2"), FILES[0])
    r = kern("wordcount", "reduce", "--partition", 2, "--partitions", 3, "--maps", 1, "-o", path("dup", "o3"),
             path("dup", "p2"), ok=(1,))
    expect(b"fewer --partitions" in r.stderr, "reduce of a partition the maps did not write: %r" % r.stderr)
    del f


def gnu_sort(args, data):
    return sh("sort " + args, data)


def t_sort_vs_gnu():
    rng = random.Random(9)
    rows = []
    for i in range(40000):
        key = "".join(rng.choice("abcAB\u00e9") for _ in range(rng.randint(0, 6)))
        rows.append("%s\t%d\t%s\t%.3f" % (key, rng.randint(-500, 500), "v%d" % i, rng.uniform(-1e3, 1e3)))
    data = ("\n".join(rows) + "\n").encode()
    f = write("sort/in.tsv", data)
    cases = [([], ""), (["-k", 2, "-n"], "-s -t'\t' -k2,2n"), (["-k", 1], "-s -t'\t' -k1,1"),
             (["-k", 1, "-r"], "-s -r -t'\t' -k1,1"), (["-k", 4, "-n", "-r"], "-s -t'\t' -k4,4gr"),
             (["-k", 2, "-n", "--memory", "256K"], "-s -t'\t' -k2,2n"), (["--memory", "300K", "--threads", 2], "")]
    for i, (ours, theirs) in enumerate(cases):
        out = path("sort", "o%d" % i)
        kern("sort", "-o", out, *ours, f)
        eq(read(os.path.join(out, "part-00000.tsv")), gnu_sort(theirs, data), "sort %s" % ours)
    # several files (a directory, lines held across file ends), with and without spills
    third = len(rows) // 3
    for k, chunk in enumerate((rows[:third], rows[third:2 * third], [], rows[2 * third:])):
        write("sortdir/f%d.tsv" % k, ("\n".join(chunk) + "\n").encode() if chunk else b"")
    for mem in ("1G", "200K"):
        out = path("sort", "dir" + mem)
        kern("sort", "-k", 2, "-n", "--memory", mem, "-o", out, path("sortdir"))
        eq(read(os.path.join(out, "part-00000.tsv")), gnu_sort("-s -t'\t' -k2,2n", data), "sort of a directory, " + mem)
    # splits sorted separately, then merged: the same as one stable sort
    for n in (2, 3):
        work = path("sort", "w%d" % n)
        for i in range(n):
            kern("sort", "--split", "%d/%d" % (i, n), "-k", 2, "-n", "--memory", "512K", "-o", work, f)
        kern("merge", "-k", 2, "-n", "-o", path("sort", "m%d" % n), work)
        eq(read(path("sort", "m%d" % n, "part-00000.tsv")), gnu_sort("-s -t'\t' -k2,2n", data), "split sort + merge")
    # edge inputs
    for name, d in (("empty", b""), ("nonl", b"b\na\nc"), ("crlf", b"b\r\na\r\n"), ("nul", b"b\x00x\na\x00\n\x00\n")):
        fp = write("sort/" + name, d)
        kern("sort", "-o", path("sort", "e" + name), fp)
        eq(read(path("sort", "e" + name, "part-00000.tsv")), gnu_sort("", d if d.endswith(b"\n") or not d else d + b"\n"),
           "sort of " + name)


def t_sort_memory():
    rng = random.Random(4)
    data = "".join("%d\t%s\n" % (rng.randint(0, 10**9), "r" * rng.randint(10, 60)) for _ in range(150000)).encode()
    f = write("smem/in.tsv", data)
    want = gnu_sort("-s -t'\t' -k1,1n", data)
    rss = {}
    for mem in ("3M", "1G"):
        out = path("smem", mem)
        r = kern("sort", "-v", "-k", 1, "-n", "--memory", mem, "-o", out, f)
        eq(read(os.path.join(out, "part-00000.tsv")), want, "sort --memory %s" % mem)
        rss[mem] = json.load(open(os.path.join(out, "_manifest-00000.json")))["peak_rss"]
        if mem == "3M":
            expect(b"spilled" in r.stderr, "no spill with --memory 3M")
    if not SANITIZED:
        expect(rss["3M"] <= 3 * 2**20 * 1.5 + 6 * 2**20, "sort peak RSS %.1f MB above 3M" % (rss["3M"] / 2**20))
        expect(rss["1G"] > rss["3M"], "the unbounded sort used no more memory")


def t_bad_rows():
    f = write("bad/in.tsv", b"a\t1\nb\tx\nc\t3\nd\n")
    r = kern("sort", "-k", 2, "-n", "-o", path("bad", "o1"), f, ok=(1,))
    expect(b"in.tsv:2: key 'x' is not a number" in r.stderr, "message: %r" % r.stderr)
    expect(not os.path.exists(path("bad", "o1", "part-00000.tsv")), "a failed sort left a part")
    r = kern("sort", "-k", 2, "-n", "--bad-rows", "skip:1", "-o", path("bad", "o2"), f, ok=(1,))
    expect(b"more than 1 bad rows" in r.stderr, "limit message: %r" % r.stderr)
    kern("sort", "-k", 2, "-n", "--bad-rows", "skip", "-o", path("bad", "o3"), f)
    eq(read(path("bad", "o3", "part-00000.tsv")), b"a\t1\nc\t3\n", "skipped bad rows")
    eq(json.load(open(path("bad", "o3", "_manifest-00000.json")))["bad_rows"], 2, "bad rows in the manifest")


def t_partition_topk():
    data = read(path("sort", "in.tsv"))
    f = path("sort", "in.tsv")
    for i in range(2):
        kern("partition", "--split", "%d/2" % i, "--partitions", 3, "-k", 1, "-o", path("part"), f)
    parts = [[read(path("part", "m-%05d.p-%05d.tsv" % (t, p))) for t in range(2)] for p in range(3)]
    union = b"".join(b"".join(x) for x in parts)
    eq(sorted(union.splitlines()), sorted(data.splitlines()), "partitions hold every row once")
    keys = [set(ln.split(b"\t")[0] for ln in b"".join(x).splitlines()) for x in parts]
    expect(not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2]), "a key in two partitions")
    for i in range(3):
        kern("topk", "--split", "%d/3" % i, "-n", 7, "-k", 2, "-o", path("topk", "w"), f)
    kern("topk", "-n", 7, "-k", 2, "-o", path("topk", "final"), path("topk", "w"))
    eq(read(path("topk", "final", "part-00000.tsv")), b"".join(gnu_sort("-s -t'\t' -k2,2nr", data).splitlines(True)[:7]),
       "topk vs sort | head")


def t_partition_pinned():
    # The partition of a key is part of the shuffle format (maps and reduces of different builds or
    # machines must agree): these placements must never change.
    f = write("pin/keys", b"a\nb\nc\nhello\nworld\nsluice\n\n0123456789abcdef0123\n")
    kern("partition", "--partitions", 8, "-o", path("pin", "o"), f)
    want = {0: b"world\n", 1: b"hello\n0123456789abcdef0123\n", 4: b"sluice\n\n", 5: b"a\nc\n", 7: b"b\n"}
    for p in range(8):
        eq(read(path("pin", "o", "m-00000.p-%05d.tsv" % p)), want.get(p, b""), "partition %d" % p)


def t_header():
    rng = random.Random(2)
    files = []
    for k in range(3):
        rows = "".join("k%d\t%d\n" % (rng.randint(0, 50), rng.randint(0, 10**6)) for _ in range(3000))
        files.append(write("hdr/f%d.tsv" % k, ("name\tvalue\n" + rows).encode()))
    body = b"".join(read(f).split(b"\n", 1)[1] for f in files)
    kern("sort", "--header", "-k", 2, "-n", "--memory", "64K", "-o", path("hdr", "s"), *files)
    eq(read(path("hdr", "s", "part-00000.tsv")), b"name\tvalue\n" + gnu_sort("-s -t'\t' -k2,2n", body), "sort --header")
    kern("topk", "--header", "-n", 3, "-k", 2, "-o", path("hdr", "t"), *files)
    eq(read(path("hdr", "t", "part-00000.tsv")),
       b"name\tvalue\n" + b"".join(gnu_sort("-s -t'\t' -k2,2nr", body).splitlines(True)[:3]), "topk --header")
    for i in range(2):
        kern("partition", "--header", "--split", "%d/2" % i, "--partitions", 2, "-k", 1, "-o", path("hdr", "p"), *files)
    got = []
    for t in range(2):
        for p in range(2):
            data = read(path("hdr", "p", "m-%05d.p-%05d.tsv" % (t, p)))
            expect(data.startswith(b"name\tvalue\n"), "partition file without the header")
            got += data.splitlines(True)[1:]
    eq(sorted(got), sorted(body.splitlines(True)), "partition --header rows")
    kern("merge", "--header", "-k", 2, "-n", "-o", path("hdr", "m"), path("hdr", "s", "part-00000.tsv"),
         path("hdr", "s", "part-00000.tsv"))
    merged = read(path("hdr", "m", "part-00000.tsv"))
    eq(merged, b"name\tvalue\n" + gnu_sort("-s -t'\t' -k2,2n", body + body), "merge --header")


def t_usage():
    for cmd in (["wordcount", "map"], ["wordcount", "reduce"], ["sort"], ["merge"], ["partition"], ["topk"]):
        r = kern(*cmd, "--help")
        expect(b"usage: sluice-kernel" in r.stdout, "--help of %s" % cmd)
    r = kern("sort", "--bogus", "x", ok=(2,))
    expect(b"unknown option '--bogus'" in r.stderr, "unknown option: %r" % r.stderr)
    r = kern("wordcount", "map", "--split", "3/2", "-o", path("u"), FILES[0], ok=(2,))
    expect(b"--split '3/2'" in r.stderr, "bad split: %r" % r.stderr)
    r = kern("sort", "--memory", "lots", "-o", path("u"), FILES[0], ok=(2,))
    expect(b"--memory 'lots'" in r.stderr, "bad memory: %r" % r.stderr)
    r = kern("wordcount", "map", "-o", path("u2"), path("nope.txt"), ok=(1,))
    expect(b"nope.txt: No such file" in r.stderr, "missing input: %r" % r.stderr)
    kern("frobnicate", ok=(2,))


def t_dags_test_mapreduce():
    h = harness.Home()
    try:
        inp = os.path.join(h.dir, "in")
        os.makedirs(inp)
        for i, f in enumerate(FILES):
            shutil.copy(f, os.path.join(inp, "f%d" % i))
        h.write_dag("wc.lua", """
local d = dag { id = "wc_e2e", start_date = "2026-11-01", default_args = { retries = 1, retry_delay = "1s" } }
local pre = d:task "pre" { cmd = "true" }
local wc = d:mapreduce "wc" { kernel = "wordcount", input = "%s", output = "%s/out/{{ ds_nodash }}",
                               splits = 3, partitions = 2, memory = "64M", final = "merge", pool = "default_pool" }
local s = d:sort "bycount" { input = "%s/out/{{ ds_nodash }}/part-*.tsv", output = "%s/sorted/{{ ds_nodash }}",
                              splits = 2, key = 2, numeric = true, reverse = true }
local post = d:task "post" { cmd = {"{{ kernel }}", "--version"} }
d:flow(pre >> wc >> s >> post)
return d
""" % (inp, h.dir, h.dir, h.dir))
        show = h.run("dags", "show", "wc_e2e")
        eq(show.returncode, 0, "dags show: " + show.stderr)
        for t in ("wc.map", "wc.reduce", "wc.final", "bycount.sort", "bycount.merge"):
            expect(t in show.stdout, "dags show lacks %s:\n%s" % (t, show.stdout))
        run = h.test_run("wc_e2e", "--logical-date", "2026-11-05", expect_state="success")
        maps = [k for k in harness.tis(run) if isinstance(k, tuple) and k[0] == "wc.map"]
        eq(len(maps), 3, "map instances")
        got = read(os.path.join(h.dir, "out", "20261105", "final", "part-00000.tsv"))
        eq(got, coreutils_counts(FILES), "d:mapreduce word count vs coreutils")
        sorted_out = read(os.path.join(h.dir, "sorted", "20261105", "part-00000.tsv"))
        parts = b"".join(read(os.path.join(h.dir, "out", "20261105", "part-%05d.tsv" % p)) for p in range(2))
        eq(sorted_out, gnu_sort("-s -t'\t' -k2,2nr", parts), "d:sort by count")
    finally:
        h.cleanup()


def t_dsl_errors():
    h = harness.Home()
    try:
        bad = {
            "a.lua": ('d:mapreduce "wc" { kernel = "wordcount", input = "x", output = "y", splitz = 3 }',
                      "a.lua:2: d:mapreduce 'wc': unknown field 'splitz' (did you mean 'splits'?)"),
            "b.lua": ('d:mapreduce "wc" { kernel = "grep", input = "x", output = "y" }',
                      "b.lua:2: d:mapreduce 'wc': kernel must be \"wordcount\""),
            "c.lua": ('d:mapreduce "wc" { kernel = "wordcount", input = "x" }', "c.lua:2: d:mapreduce 'wc': output is required"),
            "g.lua": ('d:task "wc.map" { cmd = "true" }\nd:mapreduce "wc" { kernel = "wordcount", input = "x", output = "y" }',
                      "g.lua:3: duplicate task id 'wc.map' (first declared at line 2)"),
            "e.lua": ('d:sort "s" { input = "x", output = "y", splits = 2.5 }', "e.lua:2: d:sort 's': splits must be 1..10000"),
            "f.lua": ('local t = d:task "t" { cmd = "true" }\nd:flow(d:sort "s" { input = "x", output = "y" } >> t, t >> d:task "u" { cmd = "true" })\n'
                      'd:flow(t >> d:mapreduce "m" { kernel = "wordcount", input = "x", output = "y", final = "merge" } >> t)',
                      "cycle in task dependencies"),
        }
        for name, (body, _) in bad.items():
            h.write_dag(name, 'local d = dag { id = "%s" }\n%s\nreturn d\n' % (name[0], body))
        p = h.run("dags", "check")
        for name, (_, msg) in bad.items():
            expect(msg in p.stdout + p.stderr, "%s: wanted %r in:\n%s%s" % (name, msg, p.stdout, p.stderr))
    finally:
        h.cleanup()


check("d:mapreduce and d:sort errors name the file and line", t_dsl_errors)
check("wordcount matches tr | sort | uniq -c (NUL, UTF-8, CRLF, huge line, no newline)", t_wordcount_vs_coreutils)
check("wordcount: splits 1..7 x partitions 1..4 give identical counts", t_wordcount_splits_partitions)
check("wordcount total equals LC_ALL=C wc -w on printable text", t_wordcount_wc_w)
check("wordcount edge inputs", t_wordcount_edge_inputs)
check("wordcount: one huge line is shared by the splits", t_wordcount_one_line_splits)
check("wordcount --memory: spills and stays within the bound", t_wordcount_memory_spill)
check("committer: a killed try leaves no partial part; the retry is identical; re-run is a no-op",
      t_committer_kill_and_retry)
check("committer: duplicated tries agree; reduce refuses an incomplete shuffle", t_committer_duplicate_try)
check("sort and merge match GNU sort (stable, numeric, reverse, spills, splits)", t_sort_vs_gnu)
check("sort --memory: spills and stays within the bound", t_sort_memory)
check("bad rows: fail with file:line, skip with a limit, counted in the manifest", t_bad_rows)
check("partition and topk", t_partition_topk)
check("partition placements are pinned (khash64 never changes)", t_partition_pinned)
check("--header in sort, topk, partition and merge", t_header)
check("usage errors and --help", t_usage)
check("sluice dags test of a d:mapreduce + d:sort DAG", t_dags_test_mapreduce)
shutil.rmtree(TMP, ignore_errors=True)
finish()
