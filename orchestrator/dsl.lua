-- sluice's DAG DSL, run inside the sandbox before each DAG file.
--
-- The loader calls this chunk with one argument, H, a table of trusted helpers written in C:
--   H.getline(level)        current line of the function at that stack level
--   H.duration(v)           microseconds for "30s" / 45 / "1h30m", or nil, message
--   H.cron(s)               true, or nil, message
--   H.tz(name)              true, or nil, message
--   H.date(s)               true, or nil, message
--   H.executor(name)        true, or nil, message
-- It returns two values: the table of globals the DAG file sees (added to the sandbox's safe
-- base functions) and export(values...), which turns what the file returned into plain,
-- validated tables for the C side (see dag_lua.c).
--
-- Errors a user can make raise error(message, level) with a level that points at the user's
-- line, so every import error reads "file:line: message".

local H = ...

-- The metatables are protected (__metatable): user code must not reach them, or it could add
-- a __gc field that the prelude's own setmetatable would then honour. Objects are recognised
-- through weak sets instead of getmetatable.
local DAG, TASK = { __metatable = "sluice dag" }, { __metatable = "sluice task" }
DAG.__index = DAG
TASK.__index = TASK
local created = {}      -- every DAG created by this file, in order
local dag_set = setmetatable({}, { __mode = "k" })
local task_set = setmetatable({}, { __mode = "k" })

local function is_task(v) return task_set[v] == true end
local function is_dag(v) return dag_set[v] == true end

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function valid_id(s)
  return type(s) == "string" and #s > 0 and #s <= 250 and not s:find("[^%w_.%-]")
    and s ~= "." and s ~= ".."
end

-- Field checkers: each returns the normalised value or nil, message.
local check = {}

function check.string(v)
  if type(v) == "string" then return v end
  return nil, "must be a string"
end

function check.bool(v)
  if type(v) == "boolean" then return v end
  return nil, "must be true or false"
end

function check.count(v)
  if math.type(v) == "integer" and v >= 0 then return v end
  if math.type(v) == "float" and v >= 0 and v == math.floor(v) and v < 2^31 then return math.tointeger(v) end
  return nil, "must be a non-negative integer"
end

function check.positive(v)
  local n, err = check.count(v)
  if not n then return nil, err end
  if n < 1 then return nil, "must be at least 1" end
  return n
end

function check.int(v)
  if math.type(v) == "integer" then return v end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^31 then return math.tointeger(v) end
  return nil, "must be an integer"
end

function check.duration(v)
  if type(v) ~= "string" and type(v) ~= "number" then
    return nil, "must be a duration such as \"30s\", \"10m\", \"2h\" or a number of seconds"
  end
  return H.duration(v)
end

-- Bytes: a number, or "512MiB", "2GiB", "64KiB" (powers of 1024) or "100MB", "1GB" (of 1000).
local UNITS = { [""] = 1, B = 1, KiB = 1024, MiB = 1024^2, GiB = 1024^3, TiB = 1024^4,
                KB = 1000, MB = 1000^2, GB = 1000^3, TB = 1000^4 }
function check.bytes(v)
  if math.type(v) == "integer" and v > 0 then return v end
  if type(v) == "string" then
    local n, u = v:match("^%s*(%d+)%s*(%a*)%s*$")
    if n and UNITS[u] and tonumber(n) > 0 then return math.tointeger(tonumber(n) * UNITS[u]) end
  end
  return nil, "must be a size such as \"512MiB\", \"2GiB\" or a number of bytes"
end

-- Resource limits of a task's process (setrlimit in its supervisor).
local LIMIT_FIELDS = { memory = check.bytes, cpu_seconds = check.positive, open_files = check.positive,
                       processes = check.positive, file_size = check.bytes }
function check.limits(v)
  if type(v) ~= "table" then return nil, "must be a table such as { memory = \"1GiB\", cpu_seconds = 600 }" end
  local out = {}
  for k, x in pairs(v) do
    local f = LIMIT_FIELDS[k]
    if not f then
      return nil, string.format("has an unknown limit '%s' (memory, cpu_seconds, open_files, processes, file_size)",
        tostring(k))
    end
    local val, err = f(x)
    if val == nil then return nil, string.format("%s %s", k, err) end
    out[k] = val
  end
  return out
end

function check.user(v)
  if type(v) == "string" and v:find("^[%a_][%w_.-]*%$?$") and #v <= 32 then return v end
  return nil, "must be a user name"
end

function check.cmd(v)
  if type(v) == "string" then
    if v:find("^%s*$") then return nil, "must not be empty" end
    return v
  end
  if type(v) == "table" then
    local out = {}
    for i, a in ipairs(v) do
      if type(a) == "number" then a = tostring(a) end
      if type(a) ~= "string" then return nil, string.format("element %d must be a string", i) end
      out[i] = a
    end
    if #out == 0 then return nil, "must not be an empty list" end
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > #out then
        return nil, "must be a string or a list of strings"
      end
    end
    return out
  end
  return nil, "must be a shell string or a list of strings (argv)"
end

function check.strlist(v)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then return nil, "must be a list of strings" end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return nil, string.format("element %d must be a string", i) end
    out[i] = s
  end
  return out
end

function check.intlist(v)
  if math.type(v) then v = { v } end
  if type(v) ~= "table" then return nil, "must be a list of integers" end
  local out = {}
  for i, n in ipairs(v) do
    local x = check.int(n)
    if not x then return nil, string.format("element %d must be an integer", i) end
    out[i] = x
  end
  return out
end

function check.env(v)
  if type(v) ~= "table" then return nil, "must be a table of NAME = \"value\"" end
  local out = {}
  for k, s in pairs(v) do
    if type(k) ~= "string" or not k:find("^[%a_][%w_]*$") then
      return nil, string.format("has an invalid variable name %s", tostring(k))
    end
    if type(s) == "number" or type(s) == "boolean" then s = tostring(s) end
    if type(s) ~= "string" then return nil, string.format("value of %s must be a string", k) end
    out[k] = s
  end
  return out
end

function check.trigger_rule(v)
  local rules = { all_success = 1, all_failed = 1, all_done = 1, all_skipped = 1, one_success = 1,
    one_failed = 1, one_done = 1, none_failed = 1, none_failed_min_one_success = 1,
    none_skipped = 1, always = 1 }
  if type(v) == "string" and rules[v] then return v end
  local names = {}
  for k in pairs(rules) do names[#names + 1] = k end
  table.sort(names)
  return nil, string.format("unknown trigger rule %s (expected one of: %s)",
    type(v) == "string" and ("'" .. v .. "'") or tostring(v), table.concat(names, ", "))
end

function check.executor(v)
  if type(v) ~= "string" then return nil, "must be a string" end
  local ok, err = H.executor(v)
  if not ok then return nil, err end
  return v
end

-- An ssh host alias (as ssh_config names it): no spaces, quotes or a leading '-'.
local function valid_host(s)
  return type(s) == "string" and #s > 0 and #s <= 255 and s:find("^[%w_][%w_.@:%-]*$") ~= nil
end

function check.host(v)
  if valid_host(v) then return v end
  return nil, "must be an ssh host alias such as \"build1\" (letters, digits, '_', '.', '-', '@', ':')"
end

function check.hosts(v)
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" or #v == 0 then return nil, "must be a non-empty list of ssh host aliases" end
  local out, seen = {}, {}
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then return nil, "must be a list of ssh host aliases" end
  end
  for i, h in ipairs(v) do
    if not valid_host(h) then return nil, string.format("element %d must be an ssh host alias", i) end
    if seen[h] then return nil, string.format("names host '%s' twice", h) end
    seen[h] = true
    out[i] = h
  end
  return out
end

-- The k8s executor's options: k8s = { image = ..., ... }, turned into what executors/k8s.c
-- reads (tolerations in the API's own spelling).
local function dns_label(s)
  return type(s) == "string" and #s > 0 and #s <= 63 and s:find("^[a-z0-9][a-z0-9%-]*$") ~= nil
    and s:find("[a-z0-9]$") ~= nil
end
local function dns_subdomain(s)
  if type(s) ~= "string" or #s == 0 or #s > 253 then return false end
  for part in (s .. "."):gmatch("([^.]*)%.") do
    if not dns_label(part) then return false end
  end
  return true
end
-- A label key: [prefix/]name, name at most 63 of [A-Za-z0-9._-], alphanumeric at both ends.
local function label_key(k)
  if type(k) ~= "string" then return false end
  local prefix, name = k:match("^(.+)/(.+)$")
  if not prefix then name = k end
  if prefix and not dns_subdomain(prefix) then return false end
  return #name <= 63 and name:find("^%w[%w._%-]*$") ~= nil and name:find("%w$") ~= nil
end
local function label_value(v)
  return type(v) == "string" and #v <= 63 and (v == "" or (v:find("^%w[%w._%-]*$") ~= nil and v:find("%w$") ~= nil))
end
-- A Kubernetes quantity: "500m", "2", "0.5", "512Mi", "1G", "1e3".
local function quantity(v, what)
  if type(v) == "number" then
    if v > 0 then return v end
    return nil, what .. " must be positive"
  end
  if type(v) == "string" then
    local n, u = v:match("^(%d+%.?%d*)([a-zA-Z]*)$")
    local units = { [""] = 1, m = 1, k = 1, M = 1, G = 1, T = 1, P = 1, E = 1,
                    Ki = 1, Mi = 1, Gi = 1, Ti = 1, Pi = 1, Ei = 1 }
    if n and units[u] and tonumber(n) > 0 then return v end
  end
  return nil, string.format("%s must be a Kubernetes quantity such as \"500m\", \"2\", \"512Mi\" or \"4Gi\"", what)
end
local TOLERATION_FIELDS = { key = "key", operator = "operator", value = "value", effect = "effect",
                            toleration_seconds = "tolerationSeconds", tolerationSeconds = "tolerationSeconds" }
local function tolerations(v)
  if type(v) ~= "table" then return nil, "tolerations must be a list of { key = ..., operator = ..., effect = ... }" end
  local out = {}
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then return nil, "tolerations must be a list" end
  end
  for i, t in ipairs(v) do
    if type(t) ~= "table" then return nil, string.format("tolerations[%d] must be a table", i) end
    local o = {}
    for k, x in pairs(t) do
      local f = TOLERATION_FIELDS[k]
      if not f then
        return nil, string.format("tolerations[%d] has an unknown field '%s' (key, operator, value, effect, toleration_seconds)",
          i, tostring(k))
      end
      if f == "tolerationSeconds" then
        if math.type(x) ~= "integer" then return nil, string.format("tolerations[%d].toleration_seconds must be an integer", i) end
      elseif type(x) ~= "string" then
        return nil, string.format("tolerations[%d].%s must be a string", i, k)
      end
      o[f] = x
    end
    if o.operator and o.operator ~= "Exists" and o.operator ~= "Equal" then
      return nil, string.format("tolerations[%d].operator must be \"Exists\" or \"Equal\"", i)
    end
    if o.effect and o.effect ~= "NoSchedule" and o.effect ~= "PreferNoSchedule" and o.effect ~= "NoExecute" then
      return nil, string.format("tolerations[%d].effect must be \"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\"", i)
    end
    if o.operator == "Exists" and o.value then
      return nil, string.format("tolerations[%d]: operator \"Exists\" takes no value", i)
    end
    if o.key and not label_key(o.key) then return nil, string.format("tolerations[%d].key is not a valid label key", i) end
    out[i] = o
  end
  return out
end
-- A table that becomes JSON: string keys or a list, no functions, at most 32 levels.
local function plain_json(v, depth)
  if depth > 32 then return false end
  if type(v) ~= "table" then
    return type(v) == "string" or type(v) == "number" or type(v) == "boolean"
  end
  for k, x in pairs(v) do
    if type(k) ~= "string" and math.type(k) ~= "integer" then return false end
    if not plain_json(x, depth + 1) then return false end
  end
  return true
end
local K8S_FIELDS = {
  image = function(v)
    if type(v) == "string" and #v > 0 and #v <= 4096 and not v:find("%s") then return v end
    return nil, "image must be an image reference such as \"python:3.12-slim\""
  end,
  namespace = function(v)
    if dns_label(v) then return v end
    return nil, "namespace must be a DNS-1123 label (lower-case letters, digits, '-', at most 63)"
  end,
  cpu = function(v) return quantity(v, "cpu") end,
  memory = function(v) return quantity(v, "memory") end,
  gpu = function(v)
    if math.type(v) == "integer" and v > 0 then return v end
    return nil, "gpu must be a positive integer (nvidia.com/gpu)"
  end,
  env = function(v)
    local e, err = check.env(v)
    if not e then return nil, "env " .. err end
    return e
  end,
  service_account = function(v)
    if dns_subdomain(v) then return v end
    return nil, "service_account must be a service account name (DNS-1123)"
  end,
  node_selector = function(v)
    if type(v) ~= "table" then return nil, "node_selector must be a table of label = \"value\"" end
    for k, x in pairs(v) do
      if not label_key(k) then return nil, string.format("node_selector: '%s' is not a valid label key", tostring(k)) end
      if not label_value(x) then return nil, string.format("node_selector: %s must be a label value (a string)", k) end
    end
    return v
  end,
  tolerations = tolerations,
  image_pull_policy = function(v)
    if v == "Always" or v == "IfNotPresent" or v == "Never" then return v end
    return nil, "image_pull_policy must be \"Always\", \"IfNotPresent\" or \"Never\""
  end,
  pod_template = function(v)
    if type(v) == "string" then
      if v:sub(1, 1) ~= "/" or not (v:find("%.ya?ml$") or v:find("%.json$")) then
        return nil, "pod_template must be a table or the absolute path of a .yaml, .yml or .json file"
      end
      return v
    end
    if type(v) ~= "table" or not plain_json(v, 0) then
      return nil, "pod_template must be a table (a pod template: { metadata = {...}, spec = {...} }) or a file path"
    end
    for k in pairs(v) do
      if k ~= "metadata" and k ~= "spec" then
        return nil, string.format("pod_template has an unknown field '%s' (metadata, spec)", tostring(k))
      end
    end
    return v
  end,
}
function check.k8s(v)
  if type(v) ~= "table" then return nil, "must be a table such as { image = \"alpine:3.20\", cpu = \"500m\" }" end
  local out = {}
  for k, x in pairs(v) do
    local f = K8S_FIELDS[k]
    if not f then
      local names = {}
      for n in pairs(K8S_FIELDS) do names[#names + 1] = n end
      table.sort(names)
      return nil, string.format("has an unknown field '%s' (%s)", tostring(k), table.concat(names, ", "))
    end
    local val, err = f(x)
    if val == nil then return nil, err end
    out[k] = val
  end
  return out
end

-- slurm = { partition, account, qos, cpus, mem, gres, time, extra = { ["sbatch-option"] = value } }:
-- what sbatch gets for the task's jobs. Names are checked so that nothing reaches sbatch's
-- command line but one option per field; time is a duration (seconds in the options).
local SLURM_NAME = "^[%w_.%-]+$"
local SLURM_OWN = { ["job-name"] = true, J = true, output = true, o = true, error = true, e = true,
                    parsable = true, wrap = true, chdir = true, D = true, export = true, ["open-mode"] = true,
                    input = true, i = true }
local SLURM_FIELDS = {
  partition = function(v)
    if type(v) == "string" and #v <= 200 and v:find("^[%w_.%-,]+$") then return v end
    return nil, "must be a partition name (or a comma-separated list of them)"
  end,
  account = function(v)
    if type(v) == "string" and #v <= 200 and v:find(SLURM_NAME) then return v end
    return nil, "must be an account name ([A-Za-z0-9_.-]+)"
  end,
  qos = function(v)
    if type(v) == "string" and #v <= 200 and v:find(SLURM_NAME) then return v end
    return nil, "must be a QOS name ([A-Za-z0-9_.-]+)"
  end,
  cpus = function(v)
    local n = check.positive(v)
    if n and n <= 100000 then return n end
    return nil, "must be a number of CPUs per task (1 or more)"
  end,
  mem = function(v)
    if math.type(v) == "integer" and v > 0 and v < 1e12 then return v end
    if type(v) == "string" and #v <= 16 and v:find("^%d+[KMGT]?$") and not v:find("^0+[KMGT]?$") then return v end
    return nil, "must be megabytes (a number) or a size such as \"4G\", \"500M\" (sbatch --mem)"
  end,
  gres = function(v)
    if type(v) == "string" and #v <= 500 and v:find("^[%w_.:,=%-]+$") then return v end
    return nil, "must be a generic resource list such as \"gpu:2\" or \"gpu:a100:1\""
  end,
  time = function(v)
    local us, err = check.duration(v)
    if not us then return nil, err end
    if us < 1000000 then return nil, "must be at least 1s" end
    return math.tointeger(us // 1000000)
  end,
  extra = function(v)
    if type(v) ~= "table" then return nil, "must be a table of sbatch options such as { constraint = \"skylake\" }" end
    local out = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" or not k:find("^%a[%w_%-]*$") or #k > 64 then
        return nil, string.format("has an option name %s that is not an sbatch option (letters, digits, '-')",
          type(k) == "string" and ("'" .. k .. "'") or tostring(k))
      end
      local opt = k:gsub("_", "-")
      if SLURM_OWN[opt] then return nil, string.format("cannot set '%s' (sluice sets it for each job)", k) end
      if type(x) == "string" then
        if x == "" or x:find("[%c]") then return nil, string.format("'%s' must be a one-line, non-empty value", k) end
        out[opt] = x
      elseif (math.type(x) == "integer" and x > -1e15 and x < 1e15) or x == true then
        out[opt] = x
      elseif x ~= false then
        return nil, string.format("'%s' must be a string, an integer or true", k)
      end
    end
    return out
  end,
}

function check.slurm(v)
  if type(v) ~= "table" then
    return nil, "must be a table such as { partition = \"batch\", cpus = 4, mem = \"8G\", time = \"2h\" }"
  end
  local out = {}
  for k, x in pairs(v) do
    local f = type(k) == "string" and SLURM_FIELDS[k]
    if not f then
      local names = {}
      for n in pairs(SLURM_FIELDS) do names[#names + 1] = n end
      table.sort(names)
      return nil, string.format("has an unknown field '%s' (expected one of: %s)", tostring(k), table.concat(names, ", "))
    end
    local val, err = f(x)
    if val == nil then return nil, string.format("%s %s", k, err) end
    out[k] = val
  end
  return out
end

function check.pool(v)
  if not valid_id(v) then return nil, "must be a pool name ([A-Za-z0-9_.-]+)" end
  return v
end

function check.table(v)
  if type(v) ~= "table" then return nil, "must be a table" end
  return v
end

function check.after(v)
  if is_task(v) or type(v) == "string" then return { v } end
  if type(v) ~= "table" then return nil, "must be a task, a task id or a list of them" end
  for i, u in ipairs(v) do
    if not is_task(u) and type(u) ~= "string" then
      return nil, string.format("element %d must be a task or a task id", i)
    end
  end
  return v
end

function check.over(v)
  if type(v) == "string" then return v end
  if type(v) ~= "table" then return nil, "must be a list of items or a template string" end
  local out = {}
  for i, item in ipairs(v) do
    if type(item) == "string" or type(item) == "number" or type(item) == "boolean" then
      out[i] = tostring(item)
    else
      return nil, string.format("item %d must be a string or a number", i)
    end
  end
  return out
end

function check.callback(v)
  if type(v) == "string" then return { cmd = v } end
  if type(v) ~= "table" then return nil, "must be a command string or { cmd = ... } / { webhook = ... }" end
  for k in pairs(v) do
    if k ~= "cmd" and k ~= "webhook" then return nil, string.format("has an unknown field '%s'", tostring(k)) end
  end
  if v.cmd ~= nil and type(v.cmd) ~= "string" then return nil, "cmd must be a string" end
  if v.webhook ~= nil and (type(v.webhook) ~= "string" or not v.webhook:find("^https?://")) then
    return nil, "webhook must be an http:// or https:// URL"
  end
  if v.cmd == nil and v.webhook == nil then return nil, "needs cmd or webhook" end
  return { cmd = v.cmd, webhook = v.webhook }
end

function check.date(v)
  if type(v) ~= "string" then return nil, "must be a date string such as \"2026-11-01\"" end
  local ok, err = H.date(v)
  if not ok then return nil, err end
  return v
end

function check.schedule(v)
  if type(v) ~= "string" then return nil, "must be a cron string such as \"0 3 * * *\" or \"@daily\"" end
  local ok, err = H.cron(v)
  if not ok then return nil, err end
  return v
end

function check.timezone(v)
  if type(v) ~= "string" then return nil, "must be an IANA time zone name such as \"Europe/Berlin\"" end
  local ok, err = H.tz(v)
  if not ok then return nil, err end
  return v
end

-- Fields a task accepts (also allowed in default_args, except those marked task_only).
local TASK_FIELDS = {
  cmd = check.cmd, retries = check.count, retry_delay = check.duration,
  retry_exponential_backoff = check.bool, max_retry_delay = check.duration,
  execution_timeout = check.duration, pool = check.pool, pool_slots = check.positive,
  executor = check.executor, env = check.env, trigger_rule = check.trigger_rule,
  no_retry_exit_codes = check.intlist, priority_weight = check.int, owner = check.string,
  cwd = check.string, description = check.string, doc_md = check.string, limits = check.limits,
  run_as = check.user, host = check.host, hosts = check.hosts, k8s = check.k8s, slurm = check.slurm,
  after = check.after,
}

-- The fields of a backend: they become the task's exec_options (what the executor gets), and
-- a task that sets one with another executor is an import error. Each function gets the
-- merged fields and the task's own and returns the options or nil, message.
local BACKEND_FIELDS = { host = "ssh", hosts = "ssh", k8s = "k8s", slurm = "slurm" }
local BACKEND_OPTIONS = {
  ssh = function(v, own)
    local from = (own.host ~= nil or own.hosts ~= nil) and own or v
    if from.host ~= nil and from.hosts ~= nil then return nil, "set host or hosts, not both" end
    local hosts = from.hosts or (from.host and { from.host })
    if not hosts then return nil, "executor \"ssh\" needs host = \"alias\" or hosts = {\"a\", \"b\"}" end
    if v.run_as then return nil, "run_as cannot be used with executor \"ssh\" (the remote user comes from the ssh configuration)" end
    return { hosts = hosts }
  end,
  k8s = function(v)
    if v.run_as then return nil, "run_as cannot be used with executor \"k8s\" (set the pod's securityContext in pod_template)" end
    local o = v.k8s
    if not o or not o.image then
      local tmpl = o and type(o.pod_template) == "table" and o.pod_template.spec
      local has_image = false
      for _, c in ipairs(tmpl and tmpl.containers or {}) do
        if type(c) == "table" and c.name == "task" and type(c.image) == "string" then has_image = true end
      end
      if not has_image and not (o and type(o.pod_template) == "string") then
        return nil, "executor \"k8s\" needs k8s = { image = \"...\" } (here or in default_args)"
      end
    end
    local out = {}
    for k, x in pairs(o) do out[k] = x end
    return out
  end,
  -- default_args' slurm table and the task's merge field by field (the task's win).
  slurm = function(v, own, da)
    if v.run_as then return nil, "run_as cannot be used with executor \"slurm\" (jobs run as the user who submits them)" end
    local opts = {}
    for k, x in pairs(da.slurm or {}) do opts[k] = x end
    for k, x in pairs(own.slurm or {}) do opts[k] = x end
    return opts
  end,
}
local TASK_ONLY = { cmd = true, after = true, description = true, doc_md = true }
local KIND_FIELDS = {
  task = {},
  map = { over = check.over },
  sensor = { path = check.string, poke_interval = check.duration, timeout = check.duration,
             mode = function(v)
               if v == "reschedule" or v == "poke" then return v end
               return nil, "must be \"reschedule\" or \"poke\""
             end },
}

local function suggest(name, fields)
  local best, bestd
  for k in pairs(fields) do
    -- Cheap similarity: common prefix length, then length difference.
    local p = 0
    while p < #k and p < #name and k:sub(p + 1, p + 1) == name:sub(p + 1, p + 1) do p = p + 1 end
    local d = -p * 2 + math.abs(#k - #name)
    if p >= 3 and (not bestd or d < bestd) then best, bestd = k, d end
  end
  return best and string.format(" (did you mean '%s'?)", best) or ""
end

-- Params: a plain value, or param { default = ..., description = "...", JSON Schema keywords }
-- (Airflow's Param). The schema is checked in C (params.c) when the DAG is read and whenever a
-- run is triggered with a conf.
local PARAM_FIELDS = {
  default = true, description = true, type = true, enum = true, const = true, minimum = true,
  maximum = true, exclusiveMinimum = true, exclusiveMaximum = true, multipleOf = true,
  minLength = true, maxLength = true, pattern = true, format = true, items = true, minItems = true,
  maxItems = true, uniqueItems = true, properties = true, required = true, title = true, examples = true,
}
local param_set = setmetatable({}, { __mode = "k" })
local param_specs = setmetatable({}, { __mode = "k" })

local function param_ctor(spec)
  if type(spec) ~= "table" then
    fail(2, "param expects a table: param { default = 3, description = \"...\", type = \"integer\" }")
  end
  local p = { schema = {} }
  for k, v in pairs(spec) do
    if type(k) ~= "string" or not PARAM_FIELDS[k] then
      fail(2, "param: unknown field '%s'%s", tostring(k), suggest(tostring(k), PARAM_FIELDS))
    end
    if k == "default" then
      p.value = v
    elseif k == "description" then
      if type(v) ~= "string" then fail(2, "param: description must be a string") end
      p.description = v
    else
      p.schema[k] = v
    end
  end
  param_set[p] = true
  return p
end

-- How deep tables nest (a DAG's params become JSON: more than 32 levels is refused).
local function depth(v, seen)
  if type(v) ~= "table" then return 0 end
  if seen[v] then return math.huge end -- a cycle
  seen[v] = true
  local d = 0
  for _, x in pairs(v) do
    local dx = depth(x, seen)
    if dx > d then d = dx end
    if d > 32 then break end
  end
  seen[v] = nil
  return d + 1
end

function check.params(v)
  if type(v) ~= "table" then return nil, "must be a table of name = value or name = param { ... }" end
  if depth(v, {}) > 32 then return nil, "nest tables more than 32 levels deep (or in a cycle)" end
  local values, specs = {}, {}
  for k, x in pairs(v) do
    if type(k) ~= "string" then return nil, "must be a table with names (name = value)" end
    if param_set[x] then
      values[k] = x.value
      specs[k] = { description = x.description, schema = x.schema, has_default = x.value ~= nil }
    else
      values[k] = x
      specs[k] = { schema = {}, has_default = true }
    end
  end
  param_specs[values] = specs
  return values
end

local DAG_FIELDS = {
  id = check.string, description = check.string, doc_md = check.string, schedule = check.schedule,
  timezone = check.timezone, start_date = check.date, end_date = check.date, catchup = check.bool,
  max_active_runs = check.positive, max_active_tasks = check.positive,
  dagrun_timeout = check.duration, tags = check.strlist, owner = check.string,
  params = check.params, default_args = check.table,
  on_failure = check.callback, on_success = check.callback, on_retry = check.callback,
}


-- Checks every field of spec against fields; returns a new table of normalised values.
local function check_fields(spec, fields, what, level)
  local out = {}
  for k, v in pairs(spec) do
    if type(k) ~= "string" then
      fail(level + 1, "%s: unexpected positional value %s (fields are written name = value)", what, tostring(v))
    end
    local f = fields[k]
    if not f then fail(level + 1, "%s: unknown field '%s'%s", what, k, suggest(k, fields)) end
    local val, err = f(v)
    if val == nil then fail(level + 1, "%s: %s %s", what, k, err or "is invalid") end
    out[k] = val
  end
  return out
end

-- Dependencies -------------------------------------------------------------------------

local function as_tasks(v, level)
  if is_task(v) then return { v } end
  if type(v) == "table" then
    local out = {}
    for i, t in ipairs(v) do
      if not is_task(t) then fail(level + 1, "element %d of a dependency list is not a task", i) end
      out[i] = t
    end
    return out
  end
  fail(level + 1, "expected a task or a list of tasks in a dependency, got %s", type(v))
end

local function add_edges(ups, downs, level)
  local line = H.getline(level + 1)
  for _, u in ipairs(ups) do
    for _, d in ipairs(downs) do
      d = d.group_entry or d -- an edge into a kernel group reaches its first stage
      if u.dag ~= d.dag then
        fail(level + 1, "tasks '%s' and '%s' belong to different DAGs", u.id, d.id)
      end
      if u == d then fail(level + 1, "task '%s' cannot depend on itself", u.id) end
      local up = rawget(d, "upstream")
      if not up then up = {}; d.upstream = up end -- made on the first edge: most tasks of a wide DAG have none
      up[#up + 1] = u
      u.dag.edge_lines[#u.dag.edge_lines + 1] = line
    end
  end
end

-- A list returned by >> keeps the metatable so that {a, b} >> c >> {d, e} chains.
local LIST = { __metatable = "sluice list" }
LIST.__shr = function(a, b)
  add_edges(as_tasks(a, 2), as_tasks(b, 2), 2)
  if type(b) == "table" and not is_task(b) and getmetatable(b) == nil then return setmetatable(b, LIST) end
  return b
end
TASK.__shr = LIST.__shr
TASK.__tostring = function(t) return "task " .. t.id end
DAG.__tostring = function(d) return "dag " .. d.id end

function TASK:after(...)
  for i = 1, select("#", ...) do add_edges(as_tasks(select(i, ...), 2), { self }, 2) end
  return self
end

function TASK:before(...)
  for i = 1, select("#", ...) do add_edges({ self }, as_tasks(select(i, ...), 2), 2) end
  return self
end

-- DAG methods ----------------------------------------------------------------------------

-- The fields a task of each kind takes, built once per kind (not once per task: a 10,000-task
-- file declares 10,000 tasks).
local ALLOWED = {}
local function allowed_fields(kind)
  local a = ALLOWED[kind]
  if not a then
    a = {}
    for k, f in pairs(TASK_FIELDS) do a[k] = f end
    for k, f in pairs(KIND_FIELDS[kind]) do a[k] = f end
    ALLOWED[kind] = a
  end
  return a
end

local function declare(d, kind, id, level)
  if not is_dag(d) then fail(level + 1, "use d:%s \"id\" { ... } (with a colon)", kind) end
  if not valid_id(id) then
    fail(level + 1, "task id %s is invalid: use letters, digits, '_', '.' and '-' (not . or ..)",
      type(id) == "string" and ("'" .. id .. "'") or tostring(id))
  end
  return function(spec)
    if spec == nil then spec = {} end
    if type(spec) ~= "table" then fail(2, "task '%s': expected a table of fields", id) end
    local allowed = allowed_fields(kind)
    local what = string.format("%s '%s'", kind == "sensor" and "sensor" or "task", id)
    local vals = check_fields(spec, allowed, what, 2)
    if kind == "map" and vals.over == nil then fail(2, "%s: a mapped task needs over = {...}", what) end
    if kind ~= "sensor" and vals.cmd == nil then fail(2, "%s: cmd is required", what) end
    if kind == "sensor" and vals.cmd == nil and vals.path == nil then
      fail(2, "%s: a sensor needs path = \"...\" or cmd = ...", what)
    end
    local line = H.getline(2)
    if d.by_id[id] then
      fail(2, "duplicate task id '%s' (first declared at line %d)", id, d.by_id[id].line)
    end
    local t = setmetatable({ id = id, dag = d, kind = kind, vals = vals, line = line }, TASK)
    task_set[t] = true
    d.tasks[#d.tasks + 1] = t
    d.by_id[id] = t
    return t
  end
end

-- Not tail calls: the error levels count this frame.
function DAG:task(id) local f = declare(self, "task", id, 2); return f end
function DAG:map(id) local f = declare(self, "map", id, 2); return f end
function DAG:sensor(id) local f = declare(self, "sensor", id, 2); return f end

-- Kernel task groups ------------------------------------------------------------------------
-- d:mapreduce and d:sort expand into ordinary tasks (mapped tasks, so one instance per split or
-- partition) that run sluice-kernel (docs/kernels.md). Every task field (retries, pool,
-- executor, host/hosts, env, limits, ...) applies to each task of the group. Edges into the group
-- (a >> g, g:after(a), after = {...} in its table) reach its first stage; the value returned is
-- its last task, so g >> b and after = { g } wait for the whole group.
--
-- kernel_group(d, id, spec, fields, stages, level, what) is the shared helper (K2's d:groupby and d:join
-- reuse it): it checks spec against TASK_FIELDS plus `fields` (a name -> checker table), and
-- creates one task per stage in order, each after the previous. A stage is
--   { suffix = "map", over = {...} or nil, cmd = function(vals) return argv end }
-- (cmd gets the checked fields; a stage with over is a d:map over those items). It returns the
-- first task, the last task and the checked fields. `what` names the call in messages (e.g.
-- "d:groupby 'sales'"); level is the caller's error level (2 from a DSL method's inner function).

local function new_task(d, id, kind, vals, line, level)
  if not valid_id(id) then fail(level + 1, "task id '%s' is invalid", tostring(id)) end
  if d.by_id[id] then
    fail(level + 1, "duplicate task id '%s' (first declared at line %d)", id, d.by_id[id].line)
  end
  local t = setmetatable({ id = id, dag = d, kind = kind, vals = vals, line = line }, TASK)
  task_set[t] = true
  d.tasks[#d.tasks + 1] = t
  d.by_id[id] = t
  return t
end

local function range_items(n)
  local out = {}
  for i = 0, n - 1 do out[#out + 1] = tostring(i) end
  return out
end

local GROUP_SKIP = { cmd = true, after = true }

local function kernel_group(d, id, spec, fields, stages, level, what)
  what = what or string.format("'%s'", id)
  if type(spec) ~= "table" then fail(level + 1, "%s: expected a table of fields", what) end
  local allowed = {}
  for k, f in pairs(TASK_FIELDS) do if k ~= "cmd" then allowed[k] = f end end
  for k, f in pairs(fields) do allowed[k] = f end
  local vals = check_fields(spec, allowed, what, level + 1)
  local line = H.getline(level + 1)
  local first, prev
  for _, st in ipairs(stages) do
    local tv = {}
    for k, x in pairs(vals) do
      if TASK_FIELDS[k] and not GROUP_SKIP[k] then tv[k] = x end
    end
    local ok, argv = pcall(st.cmd, vals)
    if not ok then fail(level + 1, "%s: %s", what, tostring(argv)) end
    tv.cmd = argv
    local kind = "task"
    if st.over then kind = "map"; tv.over = st.over end
    local t = new_task(d, id .. "." .. st.suffix, kind, tv, line, level + 1)
    if prev then t.upstream = { prev }; d.edge_lines[#d.edge_lines + 1] = line end
    first = first or t
    prev = t
  end
  if vals.after then first.vals.after = vals.after end
  if prev ~= first then prev.group_entry = first end
  return first, prev, vals
end

local function kcheck_inputs(v)
  if type(v) == "string" then return { v } end
  local out, err = check.strlist(v)
  if not out then return nil, err end
  if #out == 0 then return nil, "must name at least one file, directory or glob" end
  return out
end

local function kcheck_args(v)
  if type(v) ~= "table" then return nil, "must be a list of strings (extra sluice-kernel options)" end
  return check.cmd(v)
end

local function kcheck_final(v)
  if v == "merge" then return { op = "merge" } end
  if type(v) ~= "table" then return nil, "must be \"merge\" or a table { op = \"sort\"|\"topk\"|\"merge\", ... }" end
  local allowed = { op = true, key = true, numeric = true, reverse = true, n = true, smallest = true, string = true }
  for k in pairs(v) do
    if not allowed[k] then return nil, string.format("has an unknown field '%s'", tostring(k)) end
  end
  if v.op ~= "sort" and v.op ~= "topk" and v.op ~= "merge" then
    return nil, "op must be \"merge\", \"sort\" or \"topk\""
  end
  if v.key ~= nil and not check.positive(v.key) then return nil, "key must be a column number" end
  if v.n ~= nil and not check.positive(v.n) then return nil, "n must be a positive count" end
  return v
end

local KERNEL_FIELDS = {
  kernel = function(v)
    if v == "wordcount" then return v end
    return nil, "must be \"wordcount\" (d:sort sorts; d:groupby and d:join have their own helpers)"
  end,
  input = kcheck_inputs, output = check.string, work = check.string,
  splits = check.positive, partitions = check.positive, memory = check.string,
  map_args = kcheck_args, reduce_args = kcheck_args, final = kcheck_final, kernel_path = check.string,
}

local function append(t, list)
  for _, x in ipairs(list or {}) do t[#t + 1] = x end
  return t
end

-- The final step over the reduce parts: one file in OUTPUT/final/.
local function final_stage(vals, parts_dir, kbin)
  local f = vals.final
  return { suffix = "final", cmd = function(v)
    local out = v.output .. "/final"
    if f.op == "merge" then
      -- the parts are sorted by word (field 1)
      local argv = { kbin, "merge", "-o", out, "--key", tostring(f.key or 1) }
      if f.numeric then argv[#argv + 1] = "--numeric" end
      if f.reverse then argv[#argv + 1] = "--reverse" end
      argv[#argv + 1] = parts_dir
      return argv
    elseif f.op == "sort" then
      local argv = { kbin, "sort", "-o", out }
      if f.key then append(argv, { "--key", tostring(f.key) }) end
      if f.numeric then argv[#argv + 1] = "--numeric" end
      if f.reverse then argv[#argv + 1] = "--reverse" end
      if v.memory then append(argv, { "--memory", v.memory }) end
      argv[#argv + 1] = parts_dir
      return argv
    else
      local argv = { kbin, "topk", "-o", out, "--count", tostring(f.n or 10), "--key", tostring(f.key or 2) }
      if f.string then argv[#argv + 1] = "--string" end
      if f.smallest then argv[#argv + 1] = "--smallest" end
      argv[#argv + 1] = parts_dir
      return argv
    end
  end }
end

function DAG:mapreduce(id)
  if not is_dag(self) then fail(2, "use d:mapreduce \"id\" { ... } (with a colon)") end
  if not valid_id(id) then fail(2, "d:mapreduce: id %s is invalid", tostring(id)) end
  local d = self
  return function(spec)
    if type(spec) ~= "table" then fail(2, "d:mapreduce '%s': expected a table of fields", id) end
    for _, need in ipairs({ "kernel", "input", "output" }) do
      if spec[need] == nil then fail(2, "d:mapreduce '%s': %s is required", id, need) end
    end
    local S, P = spec.splits or 1, spec.partitions or 1
    local kbin = spec.kernel_path or "{{ kernel }}"
    local stages = {
      { suffix = "map", over = nil, cmd = function(v)
        local work = v.work or (v.output .. "/_work")
        local argv = { kbin, v.kernel, "map", "--split", "{{ item }}/" .. S, "--partitions", tostring(P), "-o", work }
        if v.memory then append(argv, { "--memory", v.memory }) end
        append(argv, v.map_args)
        argv[#argv + 1] = "--"
        return append(argv, v.input)
      end },
      { suffix = "reduce", over = nil, cmd = function(v)
        local work = v.work or (v.output .. "/_work")
        local argv = { kbin, v.kernel, "reduce", "--partition", "{{ item }}", "--partitions", tostring(P),
                       "--maps", tostring(S), "-o", v.output }
        if v.memory then append(argv, { "--memory", v.memory }) end
        append(argv, v.reduce_args)
        argv[#argv + 1] = "--"
        argv[#argv + 1] = work
        return argv
      end },
    }
    if math.type(S) ~= "integer" or S < 1 or S > 10000 then fail(2, "d:mapreduce '%s': splits must be 1..10000", id) end
    if math.type(P) ~= "integer" or P < 1 or P > 10000 then fail(2, "d:mapreduce '%s': partitions must be 1..10000", id) end
    stages[1].over = range_items(S)
    stages[2].over = range_items(P)
    if spec.final ~= nil then
      local fv = kcheck_final(spec.final)
      if fv then stages[3] = final_stage({ final = fv }, spec.output .. "/part-*.tsv", kbin) end
    end
    local _, last = kernel_group(d, id, spec, KERNEL_FIELDS, stages, 2, string.format("d:mapreduce '%s'", id))
    return last
  end
end

local SORT_FIELDS = {
  input = kcheck_inputs, output = check.string, splits = check.positive, memory = check.string,
  key = check.positive, numeric = check.bool, reverse = check.bool, delimiter = check.string,
  threads = check.positive, args = kcheck_args, kernel_path = check.string, work = check.string,
}

-- d:sort "s" { input = ..., output = "out/sorted", splits = 4, key = 2, numeric = true }:
-- `splits` sort tasks each sort a byte range of the input (bounded by memory, spilling to disk)
-- into WORK/part-TTTTT.tsv, then one merge task writes OUTPUT/part-00000.tsv.
function DAG:sort(id)
  if not is_dag(self) then fail(2, "use d:sort \"id\" { ... } (with a colon)") end
  if not valid_id(id) then fail(2, "d:sort: id %s is invalid", tostring(id)) end
  local d = self
  return function(spec)
    if type(spec) ~= "table" then fail(2, "d:sort '%s': expected a table of fields", id) end
    for _, need in ipairs({ "input", "output" }) do
      if spec[need] == nil then fail(2, "d:sort '%s': %s is required", id, need) end
    end
    local S = spec.splits or 1
    if math.type(S) ~= "integer" or S < 1 or S > 10000 then fail(2, "d:sort '%s': splits must be 1..10000", id) end
    local kbin = spec.kernel_path or "{{ kernel }}"
    local function keyargs(v)
      local a = {}
      if v.key then append(a, { "--key", tostring(v.key) }) end
      if v.delimiter then append(a, { "--delimiter", v.delimiter }) end
      if v.numeric then a[#a + 1] = "--numeric" end
      if v.reverse then a[#a + 1] = "--reverse" end
      return a
    end
    local stages = {
      { suffix = "sort", over = range_items(S), cmd = function(v)
        local argv = append({ kbin, "sort", "--split", "{{ item }}/" .. S, "-o", v.work or (v.output .. "/_work") }, keyargs(v))
        if v.memory then append(argv, { "--memory", v.memory }) end
        if v.threads then append(argv, { "--threads", tostring(v.threads) }) end
        append(argv, v.args)
        argv[#argv + 1] = "--"
        return append(argv, v.input)
      end },
      { suffix = "merge", cmd = function(v)
        local argv = append({ kbin, "merge", "-o", v.output }, keyargs(v))
        if v.memory then append(argv, { "--memory", v.memory }) end
        return append(argv, { "--", v.work or (v.output .. "/_work") })
      end },
    }
    local _, last = kernel_group(d, id, spec, SORT_FIELDS, stages, 2, string.format("d:sort '%s'", id))
    return last
  end
end

-- ---- d:groupby and d:join (K2; built on kernel_group above) ----------------------------------
-- d:groupby "g" { input = ..., output = "out/g", key = {"region", "day"}, agg = {"sum:amount", "count"},
--                 splits = 4, partitions = 2 }
-- `splits` map tasks (g.map: groupby map, the partial aggregates of a byte-range split, hash-
-- partitioned by key) and `partitions` reduce tasks (g.reduce: groupby reduce, one part per
-- partition in OUTPUT). d:join "j" { left = ..., right = ..., key = "id", type = "inner" } is a
-- broadcast join (j.join: `splits` tasks, each joining a split of LEFT against all of RIGHT) or,
-- with strategy = "partitioned", j.map_left + j.map_right (join map of each side) and j.reduce
-- (join reduce per partition). docs/kernels.md, "d:groupby and d:join".

local function kcheck_list_or_csv(v)
  if type(v) == "string" then
    if v == "" then return nil, "must not be empty" end
    return v
  end
  local out, err = check.strlist(v)
  if not out then return nil, err end
  if #out == 0 then return nil, "must not be empty" end
  for _, x in ipairs(out) do
    if x:find(",", 1, true) then return nil, string.format("'%s' holds a comma (give a list instead)", x) end
  end
  return table.concat(out, ",")
end

local function kcheck_enum(...)
  local allowed = { ... }
  return function(v)
    for _, a in ipairs(allowed) do if v == a then return v end end
    return nil, "must be one of \"" .. table.concat(allowed, "\", \"") .. "\""
  end
end

local AGG_KINDS = { sum = true, count = true, min = true, max = true, mean = true, first = true, last = true }

local function kcheck_aggs(v)
  local s, err = kcheck_list_or_csv(v)
  if not s then return nil, err end
  for item in s:gmatch("[^,]+") do
    local kind, col = item:match("^([a-z]+):?(.*)$")
    if not kind or not AGG_KINDS[kind] then
      return nil, string.format("'%s' is not an aggregate (sum, count, min, max, mean, first, last, as KIND:COLUMN)", item)
    end
    if col == "" and kind ~= "count" then return nil, string.format("'%s' needs a column (%s:COLUMN)", item, kind) end
  end
  return s
end

-- the options both kernels share: input format and the bad-row policy
local function kformat_args(v, argv)
  if v.format then append(argv, { "--format", v.format }) end
  if v.header ~= nil then append(argv, { "--header", v.header and "yes" or "no" }) end
  if v.bad_rows then append(argv, { "--bad-rows", v.bad_rows }) end
  return argv
end

local KFORMAT_FIELDS = {
  format = kcheck_enum("csv", "tsv"), header = check.bool, output_format = kcheck_enum("tsv", "csv"),
  bad_rows = function(v)
    if type(v) == "string" and (v == "fail" or v == "skip" or v:match("^skip:%d+$")) then return v end
    return nil, "must be \"fail\", \"skip\" or \"skip:LIMIT\""
  end,
}

local GROUPBY_FIELDS = {
  input = kcheck_inputs, output = check.string, work = check.string, key = kcheck_list_or_csv,
  agg = kcheck_aggs, types = kcheck_list_or_csv, splits = check.positive, partitions = check.positive,
  memory = check.string, map_args = kcheck_args, reduce_args = kcheck_args, kernel_path = check.string,
}
for k, f in pairs(KFORMAT_FIELDS) do GROUPBY_FIELDS[k] = f end

function DAG:groupby(id)
  if not is_dag(self) then fail(2, "use d:groupby \"id\" { ... } (with a colon)") end
  if not valid_id(id) then fail(2, "d:groupby: id %s is invalid", tostring(id)) end
  local d = self
  return function(spec)
    local what = string.format("d:groupby '%s'", id)
    if type(spec) ~= "table" then fail(2, "%s: expected a table of fields", what) end
    for _, need in ipairs({ "input", "output", "key", "agg" }) do
      if spec[need] == nil then fail(2, "%s: %s is required", what, need) end
    end
    local S, P = spec.splits or 1, spec.partitions or 1
    if math.type(S) ~= "integer" or S < 1 or S > 10000 then fail(2, "%s: splits must be 1..10000", what) end
    if math.type(P) ~= "integer" or P < 1 or P > 10000 then fail(2, "%s: partitions must be 1..10000", what) end
    local kbin = spec.kernel_path or "{{ kernel }}"
    local stages = {
      { suffix = "map", over = range_items(S), cmd = function(v)
        local argv = { kbin, "groupby", "map", "--split", "{{ item }}/" .. S, "--partitions", tostring(P),
                       "-o", v.work or (v.output .. "/_work"), "--key", v.key, "--agg", v.agg }
        if v.types then append(argv, { "--types", v.types }) end
        if v.memory then append(argv, { "--memory", v.memory }) end
        kformat_args(v, argv)
        append(argv, v.map_args)
        argv[#argv + 1] = "--"
        return append(argv, v.input)
      end },
      { suffix = "reduce", over = range_items(P), cmd = function(v)
        local argv = { kbin, "groupby", "reduce", "--partition", "{{ item }}", "--partitions", tostring(P),
                       "--maps", tostring(S), "-o", v.output }
        if v.output_format then append(argv, { "--output-format", v.output_format }) end
        if v.memory then append(argv, { "--memory", v.memory }) end
        append(argv, v.reduce_args)
        return append(argv, { "--", v.work or (v.output .. "/_work") })
      end },
    }
    local _, last = kernel_group(d, id, spec, GROUPBY_FIELDS, stages, 2, what)
    return last
  end
end

local JOIN_FIELDS = {
  left = kcheck_inputs, right = kcheck_inputs, output = check.string, work = check.string,
  key = check.string, left_key = check.string, right_key = check.string,
  type = kcheck_enum("inner", "left", "full"), strategy = kcheck_enum("broadcast", "partitioned"),
  splits = check.positive, partitions = check.positive, memory = check.string, args = kcheck_args,
  kernel_path = check.string, left_format = kcheck_enum("csv", "tsv"), right_format = kcheck_enum("csv", "tsv"),
}
for k, f in pairs(KFORMAT_FIELDS) do JOIN_FIELDS[k] = f end

function DAG:join(id)
  if not is_dag(self) then fail(2, "use d:join \"id\" { ... } (with a colon)") end
  if not valid_id(id) then fail(2, "d:join: id %s is invalid", tostring(id)) end
  local d = self
  return function(spec)
    local what = string.format("d:join '%s'", id)
    if type(spec) ~= "table" then fail(2, "%s: expected a table of fields", what) end
    for _, need in ipairs({ "left", "right", "output" }) do
      if spec[need] == nil then fail(2, "%s: %s is required", what, need) end
    end
    if spec.key == nil and (spec.left_key == nil or spec.right_key == nil) then
      fail(2, "%s: key (or left_key and right_key) is required", what)
    end
    local S, P = spec.splits or 1, spec.partitions or 1
    if math.type(S) ~= "integer" or S < 1 or S > 10000 then fail(2, "%s: splits must be 1..10000", what) end
    if math.type(P) ~= "integer" or P < 1 or P > 10000 then fail(2, "%s: partitions must be 1..10000", what) end
    local strategy = spec.strategy or "broadcast"
    if strategy == "broadcast" and spec.type == "full" and S > 1 then
      fail(2, "%s: a full join reads the whole left side in one task: use splits = 1 or strategy = \"partitioned\"", what)
    end
    local kbin = spec.kernel_path or "{{ kernel }}"
    local function keys(v, side)
      return (side == "left" and v.left_key or side == "right" and v.right_key) or v.key
    end
    local stages
    if strategy == "broadcast" then
      stages = { { suffix = "join", over = range_items(S), cmd = function(v)
        local argv = { kbin, "join", "run", "--split", "{{ item }}/" .. S, "-o", v.output,
                       "--left-key", keys(v, "left"), "--right-key", keys(v, "right"), "--type", v.type or "inner" }
        if v.memory then append(argv, { "--memory", v.memory }) end
        if v.output_format then append(argv, { "--output-format", v.output_format }) end
        kformat_args(v, argv)
        if v.left_format then append(argv, { "--left-format", v.left_format }) end
        if v.right_format then append(argv, { "--right-format", v.right_format }) end
        for _, r in ipairs(v.right) do append(argv, { "--right", r }) end
        append(argv, v.args)
        argv[#argv + 1] = "--"
        return append(argv, v.left)
      end } }
    else
      local function map_stage(side)
        return { suffix = "map_" .. side, over = range_items(S), cmd = function(v)
          local argv = { kbin, "join", "map", "--split", "{{ item }}/" .. S, "--partitions", tostring(P),
                         "-o", (v.work or (v.output .. "/_work")) .. "/" .. side, "--key", keys(v, side) }
          if v.memory then append(argv, { "--memory", v.memory }) end
          kformat_args(v, argv)
          if v[side .. "_format"] then append(argv, { "--format", v[side .. "_format"] }) end
          append(argv, v.args)
          argv[#argv + 1] = "--"
          return append(argv, v[side])
        end }
      end
      stages = { map_stage("left"), map_stage("right"), { suffix = "reduce", over = range_items(P), cmd = function(v)
        local work = v.work or (v.output .. "/_work")
        local argv = { kbin, "join", "reduce", "--partition", "{{ item }}", "--partitions", tostring(P),
                       "--maps", tostring(S), "-o", v.output, "--type", v.type or "inner" }
        if v.memory then append(argv, { "--memory", v.memory }) end
        if v.output_format then append(argv, { "--output-format", v.output_format }) end
        return append(argv, { "--", work .. "/left", work .. "/right" })
      end } }
    end
    local _, last = kernel_group(d, id, spec, JOIN_FIELDS, stages, 2, what)
    return last
  end
end

function DAG:flow(...)
  if not is_dag(self) then fail(2, "use d:flow(...) (with a colon)") end
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    for _, t in ipairs(as_tasks(v, 2)) do
      if t.dag ~= self then fail(2, "task '%s' belongs to DAG '%s', not '%s'", t.id, t.dag.id, self.id) end
    end
  end
  return self
end

function DAG:chain(...)
  if not is_dag(self) then fail(2, "use d:chain(...) (with a colon)") end
  local prev
  for i = 1, select("#", ...) do
    local cur = as_tasks(select(i, ...), 2)
    if prev then add_edges(prev, cur, 2) end
    prev = cur
  end
  return self
end

local function dag_ctor(spec)
  if type(spec) ~= "table" then fail(2, "dag expects a table: dag { id = \"...\", ... }") end
  local vals = check_fields(spec, DAG_FIELDS, "dag", 2)
  if vals.params then vals.param_specs = param_specs[vals.params] end
  if vals.id == nil then fail(2, "dag: id is required") end
  if not valid_id(vals.id) then
    fail(2, "dag id '%s' is invalid: use letters, digits, '_', '.' and '-' (not . or ..)", vals.id)
  end
  if vals.default_args then
    local da = {}
    for k, f in pairs(TASK_FIELDS) do if not TASK_ONLY[k] then da[k] = f end end
    vals.default_args = check_fields(vals.default_args, da, "dag: default_args", 2)
  end
  local d = setmetatable({ id = vals.id, vals = vals, tasks = {}, by_id = {}, edge_lines = {},
                           line = H.getline(2) }, DAG)
  dag_set[d] = true
  created[#created + 1] = d
  return d
end

-- Export ------------------------------------------------------------------------------------

-- A shared empty list: the upstream of every task without one (a wide DAG of 100,000 tasks would
-- otherwise hold 100,000 empty tables). Only read by the C conversion.
local NO_UPSTREAM = {}

-- The DAG as the C side reads it. Memory counts against the file's cap, so the export reuses what
-- it can: each task's own table becomes its entry (id, kind, line; vals and upstream replaced),
-- and a task's vals are copied only to merge default_args into them. Called once per DAG.
local function export_dag(d)
  if d.exported then return d.exported end
  local tasks = {}
  local index = {}
  for i, t in ipairs(d.tasks) do index[t] = i end
  local da = d.vals.default_args or {}
  local merge = next(da) ~= nil
  for i, t in ipairs(d.tasks) do
    local v = t.vals
    if merge then
      v = {}
      for k, x in pairs(da) do v[k] = x end
      for k, x in pairs(t.vals) do v[k] = x end
    end
    if da.k8s and t.vals.k8s then -- a task's k8s fields over default_args' (env merged too)
      local k = {}
      for n, x in pairs(da.k8s) do k[n] = x end
      for n, x in pairs(t.vals.k8s) do k[n] = x end
      if da.k8s.env and t.vals.k8s.env then
        local env = {}
        for n, x in pairs(da.k8s.env) do env[n] = x end
        for n, x in pairs(t.vals.k8s.env) do env[n] = x end
        k.env = env
      end
      v.k8s = k
    end
    if da.env and t.vals.env then
      local env = {}
      for k, x in pairs(da.env) do env[k] = x end
      for k, x in pairs(t.vals.env) do env[k] = x end
      v.env = env
    end
    local ups = {}
    for _, u in ipairs(rawget(t, "upstream") or NO_UPSTREAM) do ups[#ups + 1] = index[u] end
    for _, u in ipairs(v.after or {}) do
      if type(u) == "string" then
        local ut = d.by_id[u]
        if not ut then
          error(string.format("%s:%d: task '%s': unknown upstream task '%s'", H.chunkname, t.line, t.id, u), 0)
        end
        ups[#ups + 1] = index[ut]
      else
        if u.dag ~= d then
          error(string.format("%s:%d: task '%s': upstream '%s' belongs to another DAG", H.chunkname, t.line, t.id, u.id), 0)
        end
        ups[#ups + 1] = index[u]
      end
    end
    v.after = nil
    local exec = v.executor or "local"
    for k, backend in pairs(BACKEND_FIELDS) do
      if t.vals[k] ~= nil and backend ~= exec then
        error(string.format("%s:%d: task '%s': %s is for executor = \"%s\" (this task runs on \"%s\")",
          H.chunkname, t.line, t.id, k, backend, exec), 0)
      end
    end
    if BACKEND_OPTIONS[exec] then
      local opts, err = BACKEND_OPTIONS[exec](v, t.vals, da)
      if not opts then error(string.format("%s:%d: task '%s': %s", H.chunkname, t.line, t.id, err), 0) end
      v.exec_options = opts
    end
    for k in pairs(BACKEND_FIELDS) do v[k] = nil end
    if #ups == 0 then ups = NO_UPSTREAM end
    t.vals, t.upstream = v, ups
    tasks[i] = t
  end
  d.exported = { id = d.id, line = d.line, vals = d.vals, tasks = tasks }
  return d.exported
end

local function export(n, ...)
  local vals = { ... }
  local list = {}
  if n == 0 then
    if #created > 0 then
      error(string.format("%s:%d: DAG '%s' is created but the file does not return it (end the file with `return d`)",
        H.chunkname, created[1].line, created[1].id), 0)
    end
    error(string.format("%s:1: the file returns no DAG (end it with `return d`)", H.chunkname), 0)
  end
  for i = 1, n do
    local v = vals[i]
    if is_dag(v) then
      list[#list + 1] = v
    elseif type(v) == "table" and not is_task(v) and #v > 0 then
      for j, x in ipairs(v) do
        if not is_dag(x) then
          error(string.format("%s:1: element %d of the returned list is not a DAG", H.chunkname, j), 0)
        end
        list[#list + 1] = x
      end
    else
      error(string.format("%s:1: the file must return a DAG or a list of DAGs, not %s", H.chunkname,
        v == nil and "nil" or type(v)), 0)
    end
  end
  local out, seen = {}, {}
  for _, d in ipairs(list) do
    if seen[d.id] then
      error(string.format("%s:%d: duplicate DAG id '%s' in this file (also at line %d)", H.chunkname, d.line, d.id, seen[d.id].line), 0)
    end
    seen[d.id] = d
    out[#out + 1] = export_dag(d)
  end
  return out
end

return { dag = dag_ctor, param = param_ctor }, export
