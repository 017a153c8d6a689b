-- Fan-out: a static map and a map over another task's output, then a fan-in.
local d = dag {
  id = "fanout",
  description = "Process shards in parallel, then combine",
  tags = { "example" },
  max_active_tasks = 8,
}

local list = d:task "list_shards" {
  cmd = "echo 'items=[\"north\", \"south\", \"east\", \"west\"]' >> \"$SLUICE_OUTPUT\"",
}

local per_shard = d:map "per_shard" {
  over = "{{ outputs.list_shards.items }}",
  cmd = "echo \"shard {{ item }} ({{ map_index }})\" && echo size=$(( {{ map_index }} + 10 )) >> \"$SLUICE_OUTPUT\"",
}

local per_format = d:map "per_format" {
  over = { "csv", "parquet" },
  cmd = "echo converting to {{ item }}",
}

local combine = d:task "combine" {
  cmd = "echo 'sizes: {{ outputs.per_shard.size }}'",
}

d:flow(list >> { per_shard, per_format } >> combine)
return d
