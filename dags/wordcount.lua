-- Word count, the PySpark example rewritten for sluice:
--
--   counts = sc.textFile("in/").flatMap(lambda l: l.split()).map(lambda w: (w, 1)) \
--              .reduceByKey(lambda a, b: a + b)
--   counts.saveAsTextFile("out/")
--
-- d:mapreduce expands into `splits` map tasks (wordcount.map, one instance per byte-range split of
-- the folder; each counts its words in a hash table, the combiner) and `partitions` reduce tasks
-- (wordcount.reduce, one per hash partition), then a final top-10 by count. The tasks run
-- sluice-kernel (docs/kernels.md); the same DAG runs on SSH hosts with executor = "ssh" and the
-- folders on shared storage.
local d = dag {
  id = "wordcount",
  description = "Word frequencies of a folder of text (map, shuffle, reduce, top 10)",
  schedule = nil,
  start_date = "2026-11-01",
  tags = { "example", "kernels" },
  params = { root = "/tmp/sluice-example/wordcount" },
  default_args = { retries = 2, retry_delay = "1s", execution_timeout = "10m" },
}

local base = "{{ params.root }}/{{ run_id }}"

-- A sample corpus: four files of text (a real DAG would point input at its own folder).
local sample = d:task "sample" {
  cmd = "mkdir -p '" .. base .. "/input' && cd '" .. base .. "/input' && " ..
        "for f in 1 2 3 4; do awk -v f=$f 'BEGIN { " ..
        "split(\"the quick brown fox jumps over the lazy dog and the dog sleeps while the fox runs " ..
        "a word is a maximal run of bytes that are not white space\", w, \" \"); " ..
        "for (i = 1; i <= 500; i++) { line = \"\"; for (j = 1; j <= 12; j++) " ..
        "line = line w[1 + (i * 7 + j * j * f) % 30] (j < 12 ? \" \" : \"\"); print line } }' " ..
        "> part$f.txt; done",
}

local wc = d:mapreduce "wc" {
  kernel = "wordcount",
  input = base .. "/input",
  output = base .. "/counts",
  splits = 4, partitions = 2,
  memory = "256M",
  final = { op = "topk", n = 10, key = 2 },   -- counts/final/part-00000.tsv: the 10 most frequent
}

local report = d:task "report" {
  cmd = "echo top=$(head -1 '" .. base .. "/counts/final/part-00000.tsv' | cut -f1) >> \"$SLUICE_OUTPUT\"; " ..
        "cat '" .. base .. "/counts/final/part-00000.tsv'",
}

d:flow(sample >> wc >> report)
return d
