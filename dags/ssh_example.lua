-- Tasks on other machines over SSH (docs/executors.md, "SSH"). The hosts are aliases of the
-- ssh configuration ([ssh] config_file, else ~/.ssh/config): "build1" and "build2" here. The DAG
-- loads and checks anywhere (`sluice dags check` does not connect); it has no schedule, so it runs
-- only when triggered (`sluice dags trigger ssh_example`) where those hosts exist.
local d = dag {
  id = "ssh_example",
  description = "Builds on two SSH hosts, collects a figure from each, reports locally",
  tags = { "example", "ssh" },
  -- Every task runs on build1 or build2 (the one with more free slots) unless it says otherwise.
  default_args = { executor = "ssh", hosts = { "build1", "build2" }, retries = 2, retry_delay = "10s",
                   execution_timeout = "30m" },
}

local prepare = d:task "prepare" {
  -- One fixed host: a task's own host wins over default_args' hosts.
  host = "build1",
  cmd = "mkdir -p \"$HOME/work/{{ ds_nodash }}\" && df -Pk \"$HOME\" | awk 'NR == 2 { print \"free_kb=\" $4 }' >> \"$SLUICE_OUTPUT\"",
}

local shards = {}
for i = 1, 4 do
  -- Spread over both hosts; stdout and stderr stream into the local try log as they are written.
  shards[i] = d:task("shard" .. i) {
    cmd = "cd \"$HOME/work/{{ ds_nodash }}\" && echo shard " .. i .. " on $(hostname) && "
          .. "seq 1 100000 | awk '{ s += $1 } END { print \"sum=\" s }' >> \"$SLUICE_OUTPUT\"",
    env = { SHARD = tostring(i) },
  }
end

local report = d:task "report" {
  executor = "local", -- runs on the daemon's machine
  cmd = "echo build1 had {{ outputs.prepare.free_kb }} kB free; echo shard sums {{ outputs.shard1.sum }} "
        .. "{{ outputs.shard2.sum }} {{ outputs.shard3.sum }} {{ outputs.shard4.sum }}",
}

d:flow(prepare >> shards >> report)
return d
