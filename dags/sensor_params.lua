-- A sensor waits for a file another task writes; params are overridden by a trigger's conf:
--   sluice dags test sensor_params --conf '{"greeting": "hallo"}'
local d = dag {
  id = "sensor_params",
  description = "A file sensor and params with conf overrides",
  tags = { "example" },
  params = { greeting = "hello", target = "world" },
}

local marker = "${TMPDIR:-/tmp}/sluice-example/sensor_params/{{ ds_nodash }}.ready"

local produce = d:task "produce" {
  cmd = "mkdir -p $(dirname " .. marker .. ") && touch " .. marker,
}

local wait = d:sensor "wait_for_file" {
  cmd = "test -e " .. marker,
  poke_interval = "1s",
  timeout = "1m",
}

local greet = d:task "greet" {
  cmd = "echo '{{ params.greeting }}, {{ params.target }}!' && rm -f " .. marker,
}

d:chain(produce, wait, greet)
return d
