-- wrk script: send pre-built requests (each webhook with its own webhook-id and signature),
-- one stride of the file per wrk thread so no two requests repeat. Optional pacing: DELAY_MS.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("REQUESTS_FILE")
  local path = os.getenv("REQUEST_PATH")
  local stride = tonumber(os.getenv("WRK_THREADS") or "1")
  delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
  requests = {}
  local n = 0
  for line in io.lines(file) do
    if n % stride == id then
      local msg_id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {["Content-Type"] = "application/json"}
      if msg_id ~= "" then
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = sig
      end
      table.insert(requests, wrk.format("POST", path, headers, body))
    end
    n = n + 1
  end
  position = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1 -- only reached if a run outlasts the file; replays then count as duplicates
  end
  return requests[position]
end

function delay()
  return delay_ms
end

function done(summary, latency, requests_)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
