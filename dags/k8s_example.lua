-- Tasks as Kubernetes Jobs (executor = "k8s"; docs/executors.md#kubernetes). It loads anywhere
-- (`sluice dags check`); running it needs a cluster: [k8s] kubeconfig in sluice.cfg, or the
-- daemon in a pod with the service account of docs/k8s-rbac.yaml.
local d = dag {
  id = "k8s_example",
  description = "Fetch, crunch in parallel on the cluster, report locally",
  tags = { "example", "k8s" },
  owner = "platform",
  -- No schedule: it runs when triggered (`sluice dags trigger k8s_example`).
  default_args = {
    executor = "k8s",
    retries = 2, retry_delay = "30s",
    execution_timeout = "30m",          -- the Jobs' activeDeadlineSeconds too
    k8s = {
      image = "python:3.12-slim",
      namespace = "batch",
      cpu = "500m", memory = "512Mi",
      env = { PYTHONUNBUFFERED = "1" },
    },
  },
}

local fetch = d:task "fetch" {
  -- A shell string runs under /bin/sh -c in the container; $SLUICE_OUTPUT is /sluice/output,
  -- handed back as the container's termination message.
  cmd = "python -c 'print(\"fetched\")' && echo shards=4 >> \"$SLUICE_OUTPUT\"",
}

local crunch = d:map "crunch" {
  over = { "0", "1", "2", "3" },
  cmd = { "python", "-c", "import os; print('shard', os.environ['SHARD'], 'of {{ outputs.fetch.shards }}')" },
  env = { SHARD = "{{ item }}" },
  k8s = {
    cpu = "2", memory = "4Gi",
    node_selector = { ["kubernetes.io/arch"] = "amd64" },
    tolerations = { { key = "dedicated", operator = "Equal", value = "batch", effect = "NoSchedule" } },
    pod_template = {
      metadata = { labels = { team = "platform" } },
      spec = { securityContext = { runAsNonRoot = true, runAsUser = 1000 } },
    },
  },
}

local report = d:task "report" {
  executor = "local",                   -- default_args' k8s fields reach only k8s tasks
  cmd = "echo all {{ outputs.fetch.shards }} shards done",
}

d:flow(fetch >> crunch >> report)
return d
