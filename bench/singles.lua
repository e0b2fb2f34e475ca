-- wrk script for bench/run.py (single sends): each request is one `POST /api/v1/messages`
-- with its own recipient and Idempotency-Key; each wrk thread stops after PER_THREAD answers.
-- Environment: API_KEY, PER_THREAD, RUN (a prefix keeping keys unique across runs).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter, answered = 0, 0
  per_thread = tonumber(os.getenv("PER_THREAD"))
  run = os.getenv("RUN")
  auth = "Bearer " .. os.getenv("API_KEY")
end

local template = '{"to":"+49151%d%07d","template":{"name":"order_update","language":"en_US",' ..
  '"components":[{"type":"body","parameters":[{"type":"text","text":"Ana"},' ..
  '{"type":"text","text":"%s-%d-%d"}]}]}}'

request = function()
  counter = counter + 1
  local body = string.format(template, id, counter, run, id, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = auth,
                                  ["Idempotency-Key"] = run .. "-" .. id .. "-" .. counter},
                    body)
end

response = function(status, headers, body)
  answered = answered + 1
  if answered >= per_thread then wrk.thread:stop() end
end
