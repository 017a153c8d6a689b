-- Slurm: each try is one batch job (see docs/executors.md#slurm). No schedule: it runs only when
-- triggered (`sluice dags trigger slurm_example`), so the example folder loads and serves on a
-- machine without Slurm too. [slurm] work_dir must be storage the compute nodes share.
local d = dag {
  id = "slurm_example",
  description = "Split, process on the cluster, then report locally",
  tags = { "example", "slurm" },
  max_active_tasks = 16,
  default_args = {
    executor = "slurm",
    retries = 2,
    execution_timeout = "30m",             -- also the jobs' --time (30 minutes)
    slurm = { cpus = 1, mem = "500M" },    -- add partition = "...", account = "..." for your cluster
  },
}

local split = d:task "split" {
  cmd = "echo 'chunks=[\"a\", \"b\", \"c\"]' >> \"$SLUICE_OUTPUT\"; echo split on $(hostname) as job $SLURM_JOB_ID",
}

local work = d:map "work" {
  over = "{{ outputs.split.chunks }}",
  cmd = "echo processing {{ item }} on $(hostname) with $SLURM_CPUS_PER_TASK CPUs; sleep 2; "
     .. "echo lines_{{ item }}=$(( {{ map_index }} * 100 )) >> \"$SLUICE_OUTPUT\"",
  slurm = { cpus = 2, time = "10m", extra = { comment = "sluice example" } }, -- merged with default_args' slurm
}

local report = d:task "report" {
  executor = "local",                      -- on the daemon's machine
  cmd = "echo all chunks processed",
}

d:flow(split >> work >> report)
return d
