-- wrk script for bench/run.py (the webhook ingest figure): cycles through pre-signed, unique webhook bodies.
-- The file named by WEBHOOK_BODIES holds one "signature<TAB>body" per line.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  bodies, signatures = {}, {}
  for line in io.lines(os.getenv("WEBHOOK_BODIES")) do
    local tab = line:find("\t")
    table.insert(signatures, line:sub(1, tab - 1))
    table.insert(bodies, line:sub(tab + 1))
  end
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  index = id + 1
end

request = function()
  local i = index
  index = index + nthreads
  if index > #bodies then index = id + 1 end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["X-Hub-Signature-256"] = signatures[i]}, bodies[i])
end
