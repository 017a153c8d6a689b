-- Daily sales ETL on the native kernels (docs/kernels.md):
--
--   sample     writes a day of sales (4 TSV files: day, region, customer_id, amount) and a
--              customer table (CSV-free TSV with a header: customer_id, name, segment)
--   by_region  sluice-kernel partition: the sales hash-partitioned by region (field 2) into 4 files
--   totals     d:groupby: amount per (region, customer) - sum, count, mean, max - over the partitions
--              (2 map tasks, each the combiner of a split; 2 reduce tasks, one per key partition)
--   enrich     d:join: the totals joined with the customer table on customer_id (a broadcast join:
--              the customer table is small; 2 tasks, each a split of the totals)
--   top10      sluice-kernel topk: the 10 (region, customer) pairs with the largest total
--   report     prints the winner into the task's outputs
--
-- Each step is ordinary tasks (mapped where it fans out), so retries, pools and executors apply; with
-- executor = "ssh" and the root on shared storage the same DAG runs across hosts.
local d = dag {
  id = "sales_etl",
  description = "Daily sales: partition by region, group-by, join with customers, top 10",
  schedule = "@daily",
  start_date = "2026-11-01",
  catchup = false,
  tags = { "example", "kernels", "etl" },
  params = { root = "/tmp/sluice-example/sales" },
  default_args = { retries = 2, retry_delay = "1s", execution_timeout = "10m" },
}

local base = "{{ params.root }}/{{ run_id }}"

-- Sample data: 4 files of 2,000 sales each over 5 regions and 200 customers (a real DAG would point
-- at the day's landed files, e.g. after a d:sensor).
local sample = d:task "sample" {
  cmd = "mkdir -p '" .. base .. "/sales' && cd '" .. base .. "' && " ..
        "for f in 1 2 3 4; do awk -v f=$f 'BEGIN { split(\"north south east west central\", r, \" \"); " ..
        "for (i = 1; i <= 2000; i++) { s = (i * 7919 + f * 104729) % 1000003; " ..
        "printf \"{{ ds }}\\t%s\\tc%03d\\t%d.%02d\\n\", r[1 + s % 5], s % 200, 1 + s % 500, s % 100 } }' " ..
        "> sales/part$f.tsv; done && " ..
        "awk 'BEGIN { split(\"retail wholesale online\", g, \" \"); print \"customer_id\\tname\\tsegment\"; " ..
        "for (i = 0; i < 200; i++) printf \"c%03d\\tCustomer %d\\t%s\\n\", i, i, g[1 + i % 3] }' > customers.tsv",
}

local by_region = d:map "by_region" {
  over = { "0", "1" },
  cmd = { "{{ kernel }}", "partition", "--split", "{{ item }}/2", "--partitions", "4", "--key", "2",
          "-o", base .. "/by_region", "--", base .. "/sales" },
}

local totals = d:groupby "totals" {
  input = base .. "/by_region",
  output = base .. "/totals",
  format = "tsv", header = false,               -- columns by number: 2 region, 3 customer, 4 amount
  key = { "2", "3" },
  agg = { "sum:4", "count", "mean:4", "max:4" },
  types = { "4:float" },
  splits = 2, partitions = 2,
  memory = "256M",
}

local enrich = d:join "enrich" {
  left = base .. "/totals",                     -- header: c2 c3 sum_4 count mean_4 max_4
  right = base .. "/customers.tsv",             -- header: customer_id name segment
  output = base .. "/enrich",
  left_key = "c3", right_key = "customer_id",
  type = "left",
  format = "tsv",
  splits = 2,
}

-- topk over the two join parts (their header rows are not numbers: skipped as bad rows)
local top10 = d:task "top10" {
  cmd = { "{{ kernel }}", "topk", "-o", base .. "/top10", "-n", "10", "--key", "3", "--bad-rows", "skip:2",
          "--", base .. "/enrich" },
}

local report = d:task "report" {
  cmd = "echo best=$(head -1 '" .. base .. "/top10/part-00000.tsv' | cut -f1,2,3 | tr '\\t' ' ') " ..
        ">> \"$SLUICE_OUTPUT\"; cat '" .. base .. "/top10/part-00000.tsv'",
}

d:flow(sample >> by_region >> totals >> enrich >> top10 >> report)
return d
