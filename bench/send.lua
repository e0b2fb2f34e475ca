-- wrk script: Meta-shaped template sends, each to a different recipient.
-- Used by bench/sandbox_bench.py; the path names the phone number id.
local counter = 0
local template = '{"messaging_product":"whatsapp","to":"+1555%07d","type":"template",' ..
  '"biz_opaque_callback_data":"bench-%d",' ..
  '"template":{"name":"order_update","language":{"code":"en_US"},"components":' ..
  '[{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"A-1"}]}]}}'

request = function()
  counter = counter + 1
  local body = string.format(template, counter % 10000000, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer bench"}, body)
end
