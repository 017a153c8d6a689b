-- An ETL chain: outputs flow downstream, a flaky step is retried, a report always runs.
local d = dag {
  id = "etl_chain",
  description = "Extract, validate, transform and load a day of orders",
  schedule = "0 3 * * *",
  timezone = "Europe/Berlin",
  start_date = "2026-11-01",
  catchup = false,
  tags = { "example", "etl" },
  owner = "data-eng",
  params = { region = "eu", min_rows = 3 },
  default_args = { retries = 2, retry_delay = "1s", execution_timeout = "5m", env = { LANG = "C" } },
}

local workdir = "${TMPDIR:-/tmp}/sluice-example/{{ dag_id }}/{{ ds_nodash }}"

local extract = d:task "extract" {
  description = "Writes a CSV for the day and reports its row count as an output",
  cmd = "mkdir -p " .. workdir .. " && " ..
        "printf 'id,region,amount\\n1,{{ params.region }},10\\n2,{{ params.region }},32\\n3,us,7\\n' > " .. workdir .. "/orders.csv && " ..
        "echo rows=3 >> \"$SLUICE_OUTPUT\" && echo file=" .. workdir .. "/orders.csv >> \"$SLUICE_OUTPUT\"",
}

local validate = d:task "validate" {
  -- Fails on its first try (a flaky source), succeeds on the retry.
  cmd = "test \"$SLUICE_TRY_NUMBER\" -ge 2 || { echo 'source not ready yet' >&2; exit 1; }; " ..
        "test {{ outputs.extract.rows }} -ge {{ params.min_rows }}",
}

local transform = d:task "transform" {
  cmd = { "awk", "-F,", "NR > 1 { s[$2] += $3 } END { for (r in s) print r \"=\" s[r] }",
          "{{ outputs.extract.file }}" },
}

local load = d:task "load" {
  cmd = "awk -F, 'NR > 1 { n++ } END { print \"loaded=\" n }' {{ outputs.extract.file }} >> \"$SLUICE_OUTPUT\"",
  no_retry_exit_codes = { 2 },
}

local report = d:task "report" {
  trigger_rule = "all_done",
  cmd = "echo 'run {{ run_id }} for {{ ds }}: loaded {{ outputs.load.loaded }} rows'",
}

d:flow(extract >> validate >> transform >> load >> report)
return d
