-- Trigger rules, skips (exit code 99) and failure handling. The run succeeds: its only leaf,
-- `finalize`, runs whatever happened upstream.
local d = dag {
  id = "trigger_rules",
  description = "Skips, failures and the rules that react to them",
  tags = { "example" },
}

local check = d:task "check_source" {
  cmd = "echo 'no new data today'; exit 99",          -- 99 = skipped
}
local load = d:task "load_if_present" {              -- all_success: skipped with its upstream
  cmd = "echo loading",
}
local carry_on = d:task "carry_on" {
  trigger_rule = "none_failed",                      -- skipped upstreams are fine
  cmd = "echo carrying on",
}
local flaky = d:task "flaky" {
  cmd = "echo 'this step fails on purpose'; exit 3",
  retries = 3,
  no_retry_exit_codes = { 3 },                       -- ... and is not retried for code 3
}
local on_fail = d:task "handle_failure" {
  trigger_rule = "one_failed",
  cmd = "echo 'flaky failed; cleaning up'",
}
local finalize = d:task "finalize" {
  trigger_rule = "all_done",
  cmd = "echo done",
}

d:flow(check >> load >> carry_on >> finalize, flaky >> on_fail >> finalize)
return d
